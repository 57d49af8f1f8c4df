/**
 * The GPU's gradient compression (`engine/gpu/grad_compress.ts`, kernels `grad_*.ts` on the
 * exact float32 arithmetic of `exact_f32.ts`) against `comm/compression.ts`, bit for bit: local
 * scales, INT8/INT16 messages and error-compensation residuals, on random gradients of several
 * workers over two iterations and on edge values (halves, clamps, subnormals, zeros, NaN).
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Compression, COMPRESSION_PRESETS, WorkerGradients } from "../comm/compression.ts";
import type { BatchChunk } from "../engine/batch.ts";
import { GpuMlpCompression, planGradientTensors } from "../engine/gpu/grad_compress.ts";
import { GpuRowCompression, rowMessageBytes } from "../engine/gpu/grad_compress_rows.ts";
import { hasOffscreenCanvas } from "../engine/gpu/canvas_readback.ts";
import {
  GpuGradientExchange,
  gpuLayoutAccess,
  type GpuReadback,
  packChunkInput,
} from "../engine/gpu/grad_exchange.ts";
import { largestBag } from "../engine/gpu/input.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { type GpuLayout, planGpuLayout } from "../engine/gpu/layout.ts";
import { Rng } from "../engine/rng.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { findTestAdapter, withChangedCanvasBytes } from "./gpu_setup.ts";
import { randomChunk, tinySpec } from "./test_models.ts";

const found = await findTestAdapter();
const ignore = found.adapter === null;

/** One sample touching row 0 of every table: what `collect` needs besides the MLP. */
function oneSample(spec: ModelSpec): BatchChunk {
  return {
    batchSize: 1,
    samples: 1,
    dense: new Float32Array(spec.denseFeatures),
    labels: new Float32Array(1),
    indices: spec.tableRows.map(() => new Int32Array(1)),
    offsets: spec.tableRows.map(() => Int32Array.from([0, 1])),
  };
}

const bitsOf = (f: number) => new Uint32Array(Float32Array.of(f).buffer)[0];

/** Equal floats, NaN equal to any NaN, -0 distinct from 0: with the index of the first miss. */
function assertSameFloats(got: Float32Array, want: Float32Array, what: string) {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]) && Number.isNaN(got[i])) continue;
    if (bitsOf(got[i]) !== bitsOf(want[i])) {
      assert.fail(
        `${what}[${i}]: got ${got[i]} (0x${bitsOf(got[i]).toString(16)}), ` +
          `want ${want[i]} (0x${bitsOf(want[i]).toString(16)})`,
      );
    }
  }
}

/** One worker's GPU compression over its own gradient buffer. */
function gpuWorker(h: KernelHarness, layout: GpuLayout, c: Compression) {
  const grad = h.storage(layout.floats);
  const binder = {
    bind: h.bind.bind(h),
    uniform: (_l: string, w: ArrayLike<number>) => h.uniform(Array.from(w)),
  };
  const scaleCount = planGradientTensors(layout, 0).tensors;
  const maxBits = h.storage(scaleCount), scales = h.storage(scaleCount);
  const mlp = new GpuMlpCompression({
    device: h.device,
    binder,
    layout,
    bits: c.mlpBits!,
    errorCompensation: c.errorCompensation,
    grad,
    firstScale: 0,
    maxBits,
    scales,
  });
  return { grad, mlp, maxBits, scales };
}

async function readBytes(h: KernelHarness, buffer: GPUBuffer, bytes: number) {
  const f = await h.read(buffer, Math.ceil(bytes / 4));
  return new Int8Array(f.buffer, 0, bytes);
}

/** The packed residual in the message's (compact) order. */
function compact(layout: GpuLayout, packed: Float32Array): Float32Array {
  const plan = planGradientTensors(layout, 0);
  const out = new Float32Array(plan.elements);
  for (let t = 0; t < plan.tensors; t++) {
    const [src, at, n] = plan.table.subarray(4 * t, 4 * t + 3);
    out.set(packed.subarray(src, src + n), at);
  }
  return out;
}

/** Random gradients with zero, tiny (< 1e-8), hot and subnormal tensors and NaN values. */
function randomGradients(layout: GpuLayout, rng: Rng, worker: number): Float32Array<ArrayBuffer> {
  const g = new Float32Array(layout.floats + layout.ldt);
  const plan = planGradientTensors(layout, 0);
  for (let t = 0; t < plan.tensors; t++) {
    const [src, , n] = plan.table.subarray(4 * t, 4 * t + 3);
    const kind = (t + worker) % 6;
    const amplitude = [0, 1e-9, 1e-3, 10, 1e-41, 0.05][kind];
    for (let i = 0; i < n; i++) {
      g[src + i] = (rng.next() - 0.5) * 2 * amplitude * (rng.next() < 0.05 ? 30 : 1);
    }
    if (kind === 5 && n > 2) g[src + 1] = NaN;
  }
  return g;
}

for (const bits of [8, 16] as const) {
  for (const errorCompensation of [false, true]) {
    Deno.test({
      name: `GPU MLP compression equals comm/compression.ts: int${bits}` +
        `${errorCompensation ? " + error compensation" : ""}, 3 workers, 2 iterations`,
      ignore,
      fn: async () => {
        const spec = tinySpec();
        const layout = planGpuLayout(spec);
        const c: Compression = {
          sparseEmbeddings: true,
          embeddingBits: null,
          mlpBits: bits,
          errorCompensation,
        };
        const h = await KernelHarness.create();
        h.setIterations([{ s0: 0, rows: 1 }]);
        const bindIteration = (p: GPUComputePassEncoder) => h.useIteration(p, 0);
        const rng = new Rng(7 + bits, errorCompensation ? 1 : 0);
        const workers = [0, 1, 2].map(() => ({
          cpu: new WorkerGradients(spec, c),
          gpu: gpuWorker(h, layout, c),
        }));
        try {
          for (let iteration = 0; iteration < 2; iteration++) {
            const local: Float32Array[] = [];
            for (const [k, w] of workers.entries()) {
              const g = randomGradients(layout, rng, k + iteration);
              w.cpu.collect(gpuLayoutAccess(spec, layout, g), oneSample(spec), 0, 1);
              h.device.queue.writeBuffer(w.gpu.grad, 0, g, 0, layout.floats);
              const encoder = h.device.createCommandEncoder();
              encoder.clearBuffer(w.gpu.maxBits);
              w.gpu.mlp.recordScales(encoder, bindIteration);
              h.device.queue.submit([encoder.finish()]);
              const want = Float32Array.from(w.cpu.localScales());
              const got = await h.read(w.gpu.scales, want.length);
              assertSameFloats(got, want, `iteration ${iteration} worker ${k} local scales`);
              local.push(want);
            }
            // The mean as the shared-memory communicator takes it: sum in rank order, / size.
            const shared = Float32Array.from(local[0]);
            for (const s of local.slice(1)) for (let i = 0; i < s.length; i++) shared[i] += s[i];
            for (let i = 0; i < shared.length; i++) shared[i] /= local.length;
            for (const [k, w] of workers.entries()) {
              w.cpu.quantize(shared);
              h.device.queue.writeBuffer(w.gpu.scales, 0, shared);
              const encoder = h.device.createCommandEncoder();
              w.gpu.mlp.recordQuantize(encoder, bindIteration);
              h.device.queue.submit([encoder.finish()]);
              const q = w.cpu.mlpQ!;
              const want = new Int8Array(q.buffer, q.byteOffset, q.byteLength);
              const got = await readBytes(h, w.gpu.mlp.message, w.gpu.mlp.messageBytes);
              assert.deepEqual(got, want, `iteration ${iteration} worker ${k} message`);
              if (errorCompensation) {
                const residual = await h.read(w.gpu.mlp.residual!, layout.floats);
                assertSameFloats(
                  compact(layout, residual),
                  w.cpu.residual!,
                  `iteration ${iteration} worker ${k} residual`,
                );
              }
            }
          }
        } finally {
          for (const w of workers) w.gpu.mlp.destroy();
          h.destroy();
        }
      },
    });
  }
}

/** Values at the quantizer's edges for scale `s` with `n` levels. */
function edgeValues(s: number, n: number): number[] {
  const halves = [0.5, 1.5, 2.5, 3.5, n - 0.5, n + 0.5, n + 1.5, 1000.5].flatMap((k) => [k, -k]);
  return [
    ...halves.map((k) => k * s),
    0,
    -0,
    NaN,
    1e30,
    -1e30,
    1e-44,
    -3e-39,
    s,
    -s,
    Math.fround(s * 0.49999997),
    Math.fround(s * 0.5000001),
    3.4e38,
  ];
}

Deno.test({
  name: "GPU quantization equals comm/compression.ts on halves, clamps, subnormals, NaN",
  ignore,
  fn: async () => {
    const spec = tinySpec();
    const layout = planGpuLayout(spec);
    const h = await KernelHarness.create();
    h.setIterations([{ s0: 0, rows: 1 }]);
    const bindIteration = (p: GPUComputePassEncoder) => h.useIteration(p, 0);
    try {
      for (const bits of [8, 16] as const) {
        const c: Compression = {
          sparseEmbeddings: true,
          embeddingBits: null,
          mlpBits: bits,
          errorCompensation: true,
        };
        const n = 2 ** (bits - 1) - 1;
        const plan = planGradientTensors(layout, 0);
        // Exact powers of two make exact halves; the others round; the last is tiny.
        const scales = Float32Array.from(
          { length: plan.tensors },
          (_, t) => [2 ** -7, 0.01, 3e-5, 2 ** -20, 1e5, Math.fround(1e-8 / n)][t % 6],
        );
        const g = new Float32Array(layout.floats + layout.ldt);
        for (let t = 0; t < plan.tensors; t++) {
          const [src, , len] = plan.table.subarray(4 * t, 4 * t + 3);
          const values = edgeValues(scales[t], n);
          for (let i = 0; i < len; i++) g[src + i] = values[i % values.length];
        }
        const cpu = new WorkerGradients(spec, c);
        cpu.collect(gpuLayoutAccess(spec, layout, g), oneSample(spec), 0, 1);
        cpu.quantize(scales);
        const gpu = gpuWorker(h, layout, c);
        h.device.queue.writeBuffer(gpu.grad, 0, g, 0, layout.floats);
        // The local scales pass adds the (zero) residual, as collect does; then the chosen scales.
        const first = h.device.createCommandEncoder();
        gpu.mlp.recordScales(first, bindIteration);
        h.device.queue.submit([first.finish()]);
        h.device.queue.writeBuffer(gpu.scales, 0, scales);
        const encoder = h.device.createCommandEncoder();
        gpu.mlp.recordQuantize(encoder, bindIteration);
        h.device.queue.submit([encoder.finish()]);
        const q = cpu.mlpQ!;
        const got = await readBytes(h, gpu.mlp.message, gpu.mlp.messageBytes);
        assert.deepEqual(got, new Int8Array(q.buffer, q.byteOffset, q.byteLength), `int${bits}`);
        const clamped = Array.from(q).filter((v) => v === n || v === -n - 1).length;
        assert.ok(clamped > 0 && q.some((v) => v !== 0 && Math.abs(v) < 4), "edges reached");
        const residual = compact(layout, await h.read(gpu.mlp.residual!, layout.floats));
        assertSameFloats(residual, cpu.residual!, `int${bits} residual`);
        gpu.mlp.destroy();
      }
    } finally {
      h.destroy();
    }
  },
});

/** The chunk input as `engine/gpu/input.ts` uploads it (directory, indices, offsets). */
function uploadChunk(h: KernelHarness, chunk: BatchChunk) {
  const packed = packChunkInput(chunk);
  return {
    tableDirectory: h.storage(packed.directory),
    indices: h.storage(packed.indices),
    offsets: h.storage(packed.offsets),
  };
}

const ROW_CASES = [
  ...[null, 8, 16].flatMap((bits) =>
    [false, true].map((multiHot) => ({ bits, multiHot, rows: 37 }))
  ),
  // Over 2048 keys a table: the sort's global steps and the scan's carry over 256-key blocks.
  { bits: 8, multiHot: true, rows: 1500 },
] as { bits: 8 | 16 | null; multiHot: boolean; rows: number }[];

for (const { bits, multiHot, rows } of ROW_CASES) {
  Deno.test({
    name: `GPU sparse embedding message equals comm/compression.ts: ` +
      `${bits ? `int${bits}` : "fp32"} values, ${multiHot ? "multi-hot" : "one-hot"}, ` +
      `2 workers of ${rows} samples`,
    ignore,
    fn: async () => {
      const spec = tinySpec();
      const layout = planGpuLayout(spec);
      const T = spec.tableRows.length, d = spec.embeddingDim;
      const c: Compression = {
        sparseEmbeddings: true,
        embeddingBits: bits,
        mlpBits: null,
        errorCompensation: false,
      };
      const workers = 2;
      const chunk = randomChunk(spec, rows, rows * workers, 3 + (bits ?? 0), multiHot);
      const entries = largestBag(chunk, rows);
      const rng = new Rng(19, bits ?? 1);
      const h = await KernelHarness.create();
      h.setIterations([0, 1].map((k) => ({ s0: k * rows, rows })));
      try {
        const input = uploadChunk(h, chunk);
        const binder = {
          bind: h.bind.bind(h),
          uniform: (_l: string, w: ArrayLike<number>) => h.uniform(Array.from(w)),
        };
        const side = [0, 1].map((k) => {
          const dT = new Float32Array(rows * layout.ldt);
          for (let i = 0; i < dT.length; i++) {
            dT[i] = (rng.next() - 0.5) * (rng.next() < 0.1 ? 100 : 1e-3);
          }
          dT[layout.ldt + d] = NaN; // sample 1, table 0, column 0
          const memory = new Float32Array(layout.floats + dT.length);
          memory.set(dT, layout.floats);
          const cpu = new WorkerGradients(spec, c);
          cpu.collect(gpuLayoutAccess(spec, layout, memory), chunk, k * rows, rows);
          const maxBits = h.storage(T), scales = h.storage(T);
          const gpu = new GpuRowCompression({
            device: h.device,
            binder,
            tables: T,
            embeddingDim: d,
            ldt: layout.ldt,
            bits,
            entries,
            input,
            dT: h.storage(dT),
            maxBits,
            scales,
          });
          return { cpu, gpu, maxBits, scales };
        });
        const local: Float32Array[] = [];
        for (const [k, w] of side.entries()) {
          const encoder = h.device.createCommandEncoder();
          encoder.clearBuffer(w.maxBits);
          const pass = encoder.beginComputePass();
          w.gpu.recordSums(pass, (p) => h.useIteration(p, k));
          pass.end();
          h.device.queue.submit([encoder.finish()]);
          const want = Float32Array.from(w.cpu.localScales());
          if (bits) assertSameFloats(await h.read(w.scales, T), want, `worker ${k} scales`);
          local.push(want);
        }
        const shared = local[0].map((s, i) => (s + local[1][i]) / 2);
        for (const [k, w] of side.entries()) {
          w.cpu.quantize(shared);
          if (bits) h.device.queue.writeBuffer(w.scales, 0, shared);
          const encoder = h.device.createCommandEncoder();
          const pass = encoder.beginComputePass();
          w.gpu.recordMessage(pass, (p) => h.useIteration(p, k));
          pass.end();
          h.device.queue.submit([encoder.finish()]);
          const all = await readBytes(h, w.gpu.message, w.gpu.capacityBytes);
          const counts = new Uint32Array(all.buffer, 0, T);
          const got = all.subarray(0, rowMessageBytes(counts, d, bits));
          const want = w.cpu.message();
          assert.equal(got.length, want.length, `worker ${k} message bytes`);
          assert.deepEqual(got, want, `worker ${k} message`);
          assert.ok(w.cpu.uniqueRows < entries * T, "some rows repeat");
          w.gpu.destroy();
        }
      } finally {
        h.destroy();
      }
    },
  });
}

// The third entry: `canvasMaxBytes` under `auto` (0: the counts through the canvas, then every
// message mapped; the default: these small messages through the canvas; -1: the MLP message's
// bytes, so that both messages are too large for the canvas but the embedding message is not,
// and the MLP message is mapped on its own: "split"); the fourth: a canvas that changes a byte
// (the exchange's check fails and every readback maps).
const EXCHANGE_CASES: [GpuPresetName, GpuReadback, number?, boolean?][] = [
  ["sparse", "map"],
  ["sparse-emb8", "map"],
  ["sparse-int8", "map"],
  ["sparse-int8-ec", "map"],
  ["sparse", "canvas"],
  ["sparse-int8-ec", "canvas-scales"],
  ["sparse", "canvas-scales"],
  ["sparse-int8", "canvas"],
  ["sparse", "auto"],
  ["sparse", "auto", 0],
  ["sparse-int8", "auto", 0],
  ["sparse", "auto", -1],
  ["sparse-int8-ec", "split"],
  ["sparse-int8", "split"],
  ["sparse", "canvas", undefined, true],
  ["sparse-int8", "auto", undefined, true],
];
type GpuPresetName = "sparse" | "sparse-emb8" | "sparse-int8" | "sparse-int8-ec";

for (const [preset, readback, canvasMaxBytes, changed = false] of EXCHANGE_CASES) {
  Deno.test({
    name: `GpuGradientExchange sends what WorkerGradients sends: ${preset}, 2 workers, 2 steps, ` +
      `readback ${readback}${
        canvasMaxBytes === undefined
          ? ""
          : canvasMaxBytes === -1
          ? " (canvas to the MLP message's bytes)"
          : ` (canvas to ${canvasMaxBytes} B)`
      }${changed ? ", a canvas that changes a byte" : ""}`,
    ignore: ignore || (readback !== "map" && !hasOffscreenCanvas()),
    fn: () => {
      const run = () => exchangeCase(preset, readback, canvasMaxBytes, changed);
      return changed ? withChangedCanvasBytes(1, run) : run();
    },
  });
}

/** One case of `EXCHANGE_CASES`: two workers' messages over two steps against the CPU's. */
async function exchangeCase(
  preset: GpuPresetName,
  readback: GpuReadback,
  canvasMaxBytes: number | undefined,
  changed: boolean,
): Promise<void> {
  const spec = tinySpec();
  const layout = planGpuLayout(spec);
  const c = COMPRESSION_PRESETS[preset] as Compression;
  const rows = 29, workers = 2, steps = 2;
  const chunk = randomChunk(spec, rows, rows * workers * steps, 23, true);
  const entries = largestBag(chunk, rows);
  const rng = new Rng(29, 2);
  const h = await KernelHarness.create();
  h.setIterations(Array.from({ length: workers * steps }, (_, k) => ({ s0: k * rows, rows })));
  const binder = {
    bind: h.bind.bind(h),
    uniform: (_l: string, w: ArrayLike<number>) => h.uniform(Array.from(w)),
  };
  const input = uploadChunk(h, chunk);
  const side = [0, 1].map(() => {
    const grad = h.storage(layout.floats), dT = h.storage(rows * layout.ldt);
    const options = { device: h.device, binder, spec, layout, compression: c, entries };
    return {
      grad,
      dT,
      cpu: new WorkerGradients(spec, c),
      gpu: new GpuGradientExchange({
        ...options,
        input,
        dT,
        grad,
        readback,
        canvasMaxBytes: canvasMaxBytes === -1 ? layout.floats * 4 : canvasMaxBytes,
      }),
    };
  });
  try {
    for (let step = 0; step < steps; step++) {
      const local: Float32Array[] = [];
      for (const [k, w] of side.entries()) {
        const memory = new Float32Array(layout.floats + rows * layout.ldt);
        for (let i = 0; i < memory.length; i++) memory[i] = (rng.next() - 0.5) * 0.01;
        const iteration = step * workers + k;
        w.cpu.collect(gpuLayoutAccess(spec, layout, memory), chunk, iteration * rows, rows);
        h.device.queue.writeBuffer(w.grad, 0, memory, 0, layout.floats);
        h.device.queue.writeBuffer(w.dT, 0, memory, layout.floats);
        const want = Float32Array.from(w.cpu.localScales());
        w.gpu.collect((p) => h.useIteration(p, iteration));
        if (w.gpu.scaleCount) {
          const got = await w.gpu.readLocalScales();
          assertSameFloats(got, want, `step ${step} worker ${k} scales`);
        }
        local.push(want);
      }
      const shared = local[0].map((s, i) => (s + local[1][i]) / 2);
      for (const [k, w] of side.entries()) {
        w.cpu.quantize(shared);
        const iteration = step * workers + k;
        // Both ways in turn: the parts (the embedding message first) and the whole.
        const got = step % 2 === 0
          ? await w.gpu.messages(shared, (p) => h.useIteration(p, iteration))
          : await w.gpu.messageParts(shared, (p) => h.useIteration(p, iteration))
            .then(async (m) => ({ embedding: m.embedding, mlp: await m.mlp }));
        assert.deepEqual(got.embedding, w.cpu.message(), `step ${step} worker ${k} embedding`);
        const mlp = w.cpu.mlpQ ?? w.cpu.mlp;
        assert.deepEqual(got.mlp, mlp, `step ${step} worker ${k} mlp`);
        const mapped = readback === "map" || changed;
        const via = mapped
          ? "map"
          : readback === "split" || (readback === "auto" && canvasMaxBytes === -1)
          ? "split"
          : readback === "canvas" || (readback === "auto" && canvasMaxBytes !== 0)
          ? "canvas"
          : "map";
        assert.equal(w.gpu.canvasChecked, !mapped, `step ${step} worker ${k} canvas checked`);
        assert.equal(w.gpu.messagesVia, via, `step ${step} worker ${k} messages read via`);
        if (!mapped || w.gpu.scaleCount) {
          // The counts read first: only the message's bytes used come back.
          const four = (n: number) => Math.ceil(n / 4) * 4;
          const small = 4 * (w.gpu.scaleCount + spec.tableRows.length);
          const mlpRead = c.mlpBits ? four(got.mlp.byteLength) : layout.floats * 4;
          const want = small + mlpRead + four(got.embedding.byteLength);
          assert.equal(w.gpu.readbackBytes, want, `step ${step} worker ${k} bytes read`);
        }
      }
    }
  } finally {
    for (const w of side) w.gpu.destroy();
    h.destroy();
  }
}
