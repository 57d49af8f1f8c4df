/**
 * The global embedding update of data-parallel training applied on the GPU
 * (`engine/gpu/grad_apply.ts`) against `applyGlobalGradients` of `comm/compression.ts` on CPU
 * tables, bit for bit: three workers' real messages (FP32, INT8, INT16 values, hot rows), tables
 * split over several arenas and arena groups.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  applyGlobalGradients,
  type Compression,
  globalRowDeltas,
  WorkerGradients,
} from "../comm/compression.ts";
import { sumInOrder } from "../comm/communicator.ts";
import { GpuRowApply } from "../engine/gpu/grad_apply.ts";
import { gpuLayoutAccess } from "../engine/gpu/grad_exchange.ts";
import { largestBag } from "../engine/gpu/input.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { planGpuLayout } from "../engine/gpu/layout.ts";
import { planTables, segmentWords } from "../engine/gpu/table_plan.ts";
import { Rng } from "../engine/rng.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import { randomChunk, tinySpec } from "./test_models.ts";

const found = await findTestAdapter();

for (const bits of [null, 8, 16] as const) {
  Deno.test({
    name: `GPU global embedding update equals applyGlobalGradients: ` +
      `${bits ? `int${bits}` : "fp32"} values, 3 workers, split tables`,
    ignore: found.adapter === null,
    fn: async () => {
      const spec = tinySpec();
      const layout = planGpuLayout(spec);
      const d = spec.embeddingDim, T = spec.tableRows.length;
      const c: Compression = {
        sparseEmbeddings: true,
        embeddingBits: bits,
        mlpBits: null,
        errorCompensation: false,
      };
      const rows = 23, K = 3, lr = 0.1 + 1e-9;
      const chunk = randomChunk(spec, rows, rows * K, 41, true);
      const rng = new Rng(43, bits ?? 0);
      const tables = spec.tableRows.map((n) =>
        Float32Array.from({ length: n * d }, () => (rng.next() - 0.5) * 0.2)
      );
      // The workers' messages, their shared scales and the CPU's update.
      const workers = Array.from({ length: K }, (_, k) => {
        const memory = new Float32Array(layout.floats + rows * layout.ldt);
        for (let i = 0; i < memory.length; i++) memory[i] = (rng.next() - 0.5) * 3;
        const w = new WorkerGradients(spec, c);
        w.collect(gpuLayoutAccess(spec, layout, memory), chunk, k * rows, rows);
        w.localScales();
        return w;
      });
      const scales = new Float32Array(workers[0].scales.length);
      sumInOrder(workers.map((w) => w.scales), scales);
      for (let i = 0; i < scales.length; i++) scales[i] /= K;
      for (const w of workers) w.quantize(scales);
      const messages = workers.map((w) => w.message());
      const cpuTables = tables.map((t) => t.slice());
      const access = { ...gpuLayoutAccess(spec, layout, new Float32Array(layout.floats)) };
      access.tables = cpuTables;
      const mlpSum = new Float32Array(workers[0].mlp.length);
      applyGlobalGradients(access, workers[0], K, lr, scales, mlpSum, messages, null);
      const update = globalRowDeltas(workers[0], K, lr, scales, messages);
      // GPU: tables in arenas of 8 rows, 2 arenas a group.
      const plan = planTables(spec.tableRows, d, 8 * d * 4, 2);
      assert.ok(plan.groups > 1, "several arena groups");
      const h = await KernelHarness.create();
      try {
        const arenas = plan.arenaFloats.map((f) => h.storage(f));
        for (const s of plan.segments) {
          const from = tables[s.table].subarray(s.rowStart * d, s.rowEnd * d);
          h.device.queue.writeBuffer(arenas[s.arena], s.offset * 4, from);
        }
        const directory = new Uint32Array(4 * T);
        for (let t = 0; t < T; t++) {
          directory.set([0, 0, plan.firstSegment[t], plan.segmentCount[t]], 4 * t);
        }
        const filler = h.storage(4);
        const apply = new GpuRowApply({
          device: h.device,
          binder: {
            bind: h.bind.bind(h),
            uniform: (_l: string, w: ArrayLike<number>) => h.uniform(Array.from(w)),
          },
          embeddingDim: d,
          plan,
          tableDirectory: h.storage(directory),
          segments: h.storage(segmentWords(plan)),
          groupArenas: (g) => {
            const list = arenas.slice(g * plan.arenasPerGroup, (g + 1) * plan.arenasPerGroup);
            while (list.length < plan.arenasPerGroup) list.push(filler);
            return list;
          },
          maxRows: K * T * largestBag(chunk, rows),
        });
        apply.upload(update);
        h.setIterations([{ s0: 0, rows }]);
        const encoder = h.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        h.useIteration(pass, 0);
        apply.record(pass);
        pass.end();
        h.device.queue.submit([encoder.finish()]);
        let changed = 0;
        for (const s of plan.segments) {
          const got = await h.read(arenas[s.arena], (s.rowEnd - s.rowStart) * d, s.offset);
          const want = cpuTables[s.table].subarray(s.rowStart * d, s.rowEnd * d);
          const before = tables[s.table].subarray(s.rowStart * d, s.rowEnd * d);
          assert.deepEqual(got, want, `table ${s.table} rows ${s.rowStart}..${s.rowEnd}`);
          changed += want.filter((v, i) => v !== before[i]).length;
        }
        assert.ok(changed > update.rows, `${changed} values changed`);
        apply.destroy();
      } finally {
        h.destroy();
      }
    },
  });
}
