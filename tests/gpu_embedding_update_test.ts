/**
 * The two embedding-update paths of the WebGPU engine, the pairwise scan and the sort by row,
 * against each other (bit for bit: both sum each row's gradients in the same order) and
 * against the CPU engine (explicit tolerance), on duplicate-heavy batches: tiny tables, a skewed
 * table, multi-hot bags with repeats, and batches big enough that the sort needs its global
 * steps (more than 2048 keys per table). Needs a WebGPU adapter; without one the tests are
 * reported as ignored.
 */
import assert from "node:assert/strict";
import type { BatchChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import type { Engine } from "../engine/engine.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { EMBEDDING_SORT_LOCAL } from "../engine/gpu/kernels/embedding_sort_local.ts";
import { EMBEDDING_SORT_STEP } from "../engine/gpu/kernels/embedding_sort_step.ts";
import { sortDispatches, sortSegment } from "../engine/gpu/sort_plan.ts";
import { Rng } from "../engine/rng.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { testSpec } from "./test_models.ts";

const ignore = (await findTestAdapter()).adapter === null;

const SPEC: ModelSpec = testSpec([3, 1000, 7, 40], 5, [13, 9, 5], [6, 1]);

/** Batches with bags of 0 to `maxBag` rows (1: one-hot), table 1 skewed towards row 0. */
function duplicateChunk(batch: number, samples: number, seed: number, maxBag: number): BatchChunk {
  const rng = new Rng(seed, 9);
  const indices: Int32Array[] = [], offsets: Int32Array[] = [];
  for (const [t, n] of SPEC.tableRows.entries()) {
    const off = new Int32Array(samples + 1);
    const idx: number[] = [];
    for (let s = 0; s < samples; s++) {
      const bag = maxBag === 1 ? 1 : rng.int(maxBag + 1);
      for (let j = 0; j < bag; j++) {
        idx.push(t === 1 ? Math.floor(n * rng.next() ** 4) : rng.int(n));
      }
      off[s + 1] = idx.length;
    }
    indices.push(Int32Array.from(idx));
    offsets.push(off);
  }
  const dense = Float32Array.from({ length: samples * SPEC.denseFeatures }, () => rng.next() * 3);
  const labels = Float32Array.from({ length: samples }, () => (rng.next() < 0.3 ? 1 : 0));
  return { batchSize: batch, samples, dense, labels, indices, offsets };
}

/** Asserts |got - want| <= atol + rtol |want| everywhere. */
function assertClose(
  name: string,
  got: Float32Array,
  want: Float32Array,
  atol = 2e-5,
  rtol = 2e-3,
) {
  assert.equal(got.length, want.length, `${name}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]),
      `${name}: value ${i} is ${got[i]}, expected ${want[i]}`,
    );
  }
}

for (
  const [what, batch, maxBag, split] of [
    ["one-hot batch 64", 64, 1, false],
    ["multi-hot batch 40, tables split across arenas", 40, 3, true],
    ["multi-hot batch 700 (over 2048 keys a table: global sort steps)", 700, 7, false],
  ] as const
) {
  Deno.test({
    name:
      `GPU sorted embedding update equals the pairwise one and matches the CPU engine (${what})`,
    ignore,
    sanitizeResources: false,
    fn: async () => {
      const extra = split ? { arenaBytes: 60, arenasPerGroup: 2 } : {};
      const engines: Engine[] = [];
      try {
        const cpu = await createCpuEngine({ spec: SPEC, maxBatch: batch, seed: 3, threads: 1 });
        engines.push(cpu);
        const gpus = [];
        for (const sortedUpdateFrom of [0, Infinity]) {
          const e = await createGpuEngine({
            spec: SPEC,
            maxBatch: batch,
            seed: 3,
            sortedUpdateFrom,
            ...extra,
          });
          engines.push(e);
          gpus.push(e);
        }
        const chunk = duplicateChunk(batch, 3 * batch, 11, maxBag);
        // Duplicate-heavy indeed: the big batch repeats rows of the skewed table many times.
        if (batch === 700) {
          const idx = chunk.indices[1].subarray(0, chunk.offsets[1][batch]);
          assert.ok(idx.length > 2048, `only ${idx.length} keys`);
          assert.ok(idx.filter((r) => r === 0).length > 100);
        }
        const results = [];
        for (const e of engines) {
          const r = await e.trainChunk(chunk, { learningRate: 0.5 });
          results.push({ loss: r.loss, params: await e.readParams() });
        }
        const [want, sorted, pairwise] = results;
        SPEC.tableRows.forEach((_, t) => {
          assert.deepEqual(
            sorted.params.embeddings[t],
            pairwise.params.embeddings[t],
            `table ${t}: sorted and pairwise updates differ`,
          );
          assertClose(`table ${t}`, sorted.params.embeddings[t], want.params.embeddings[t]);
        });
        assertClose("losses", sorted.loss, want.loss, 1e-5, 2e-3);
        // The update moved the tables (a test that a no-op update cannot pass).
        const initial = (await (await createCpuEngine({
          spec: SPEC,
          maxBatch: batch,
          seed: 3,
          threads: 1,
        }).then((e) => (engines.push(e), e))).readParams()).embeddings;
        assert.notDeepEqual(sorted.params.embeddings[0], initial[0]);
        // A traced step takes the same paths.
        const step = duplicateChunk(batch, batch, 12, maxBag);
        await gpus[0].traceStep(step, { learningRate: 0.5 });
        await gpus[1].traceStep(step, { learningRate: 0.5 });
        const [a, b] = [await gpus[0].readParams(), await gpus[1].readParams()];
        SPEC.tableRows.forEach((_, t) => assert.deepEqual(a.embeddings[t], b.embeddings[t]));
      } finally {
        for (const e of engines) await e.dispose();
      }
    },
  });
}

/**
 * The sort kernels alone: every table's keys must come out as the CPU's sort of (row, bag), then
 * sentinels. (On lavapipe, which runs workgroups one after another, an update from a badly sorted
 * batch can still come out right; this checks the order itself.)
 */
for (const entries of [[0, 3, 700, 1], [1, 5000, 9000]]) {
  Deno.test({
    name: `GPU bitonic sort of embedding keys matches a CPU sort (${entries.join(", ")} keys)`,
    ignore,
    sanitizeResources: false,
    fn: async () => {
      const h = await KernelHarness.create();
      try {
        const rng = new Rng(entries.length, 5);
        const tables = entries.length;
        const s0 = 2, rows = 300;
        const dir = new Uint32Array(tables * 4);
        const allIdx: number[] = [], allOff: number[] = [];
        const want: number[][] = [];
        entries.forEach((n, t) => {
          // Bag sizes of rows samples adding up to n (samples before s0 hold 4 rows each).
          const sizes = Array.from({ length: rows }, (_, s) =>
            Math.floor(((s + 1) * n) / rows) -
            Math.floor((s * n) / rows));
          dir[4 * t] = allIdx.length;
          dir[4 * t + 1] = allOff.length;
          const off = [0];
          for (let s = 0; s < s0; s++) off.push(off[off.length - 1] + 4);
          for (const z of sizes) off.push(off[off.length - 1] + z);
          const idx = Array.from({ length: off[off.length - 1] }, () => rng.int(t === 1 ? 5 : 900));
          allIdx.push(...idx);
          allOff.push(...off);
          const keys: [number, number][] = [];
          for (let s = 0; s < rows; s++) {
            for (let j = off[s0 + s]; j < off[s0 + s + 1]; j++) keys.push([idx[j], s]);
          }
          keys.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          want.push(keys.flat());
        });
        const p = sortSegment(Math.max(...entries));
        const keys = h.storage(tables * p * 2);
        const dirB = h.storage(dir), idxB = h.storage(Uint32Array.from(allIdx));
        const offB = h.storage(Uint32Array.from(allOff));
        h.setIterations([{ s0, rows }]);
        const encoder = h.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        h.useIteration(pass, 0);
        const plan = sortDispatches(tables, p);
        if (p > 2048) assert.ok(plan.some((d) => d.kind === "step"));
        // Both kinds of global step: two distances a dispatch, and one alone.
        if (p >= 8192) {
          assert.ok(plan.some((d) => d.kind === "step" && d.words[4] === 2));
          assert.ok(plan.some((d) => d.kind === "step" && d.words[4] === 1));
        }
        for (const d of plan) {
          const u = h.uniform(d.words);
          const k = d.kind === "local"
            ? h.bind(EMBEDDING_SORT_LOCAL, [u, dirB, idxB, offB, keys])
            : h.bind(EMBEDDING_SORT_STEP, [u, keys]);
          h.dispatch(pass, k, d.x);
        }
        pass.end();
        h.device.queue.submit([encoder.finish()]);
        const got = new Uint32Array((await h.read(keys, tables * p * 2)).buffer);
        entries.forEach((n, t) => {
          const seg = Array.from(got.subarray(t * p * 2, (t + 1) * p * 2));
          assert.deepEqual(seg.slice(0, 2 * n), want[t], `table ${t}: keys out of order`);
          assert.ok(seg.slice(2 * n).every((v) => v === 0xffffffff), `table ${t}: sentinels`);
        });
      } finally {
        h.destroy();
      }
    },
  });
}
