/**
 * The pairwise-tree order of the embedding update (engine/cpu/sparse_sgd.ts): the streaming
 * counter against the tree's recursive definition, and the WebGPU engine's three update paths
 * (pairwise scan, sort + one lane per row, sort + tree passes) against the CPU engine's sparse SGD
 * bit for bit, and against a float64 reference, on hot rows with ragged run lengths. The GPU
 * tests need a WebGPU adapter; without one they are reported as ignored.
 */
import assert from "node:assert/strict";
import { pairwiseTreeSum, SparseSgd } from "../engine/cpu/sparse_sgd.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { type UpdateBatch, UpdateHarness } from "../engine/gpu/update_harness.ts";
import { Rng } from "../engine/rng.ts";
import { findTestAdapter } from "./gpu_setup.ts";

const ignore = (await findTestAdapter()).adapter === null;

/** The tree by definition: aligned power-of-two blocks, `left + right`, an empty right dropped. */
function treeByDefinition(x: Float32Array, lo: number, size: number): number {
  if (size === 1) return x[lo];
  const half = size / 2;
  const left = treeByDefinition(x, lo, half);
  if (lo + half >= x.length) return left;
  return Math.fround(left + treeByDefinition(x, lo + half, half));
}

/** Values of widely spread magnitudes, so that summation orders give different bits. */
function spread(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 2 ** (rng.next() * 24 - 12));
}

Deno.test("pairwise-tree sums equal the tree's recursive definition, and differ from a loop", () => {
  const rng = new Rng(4, 1);
  let differs = 0;
  for (let n = 1; n <= 140; n++) {
    const x = spread(rng, n);
    const size = 2 ** Math.ceil(Math.log2(n));
    const got = pairwiseTreeSum(x, 1)[0];
    assert.equal(got, treeByDefinition(x, 0, size), `n = ${n}`);
    let loop = 0;
    for (const v of x) loop = Math.fround(loop + v);
    if (loop !== got) differs++;
  }
  // The order matters for these values: a loop gives other bits most of the time.
  assert.ok(differs > 70, `only ${differs} of 140 loop sums differ`);
  // Vectors: each column is summed on its own.
  const v = spread(rng, 3 * 37);
  const sums = pairwiseTreeSum(v, 3);
  for (let q = 0; q < 3; q++) {
    const column = Float32Array.from({ length: 37 }, (_, i) => v[i * 3 + q]);
    assert.equal(sums[q], treeByDefinition(column, 0, 64));
  }
});

/** Run lengths of the hot rows: ragged, across the tree's 32-child passes. */
const RUNS = [1, 2, 3, 5, 7, 8, 9, 31, 32, 33, 64, 1000, 1024, 1025];

/**
 * Table 0: row i occurs RUNS[i] times, one-hot, shuffled over the batch; table 1: multi-hot bags
 * of 0 to 4 rows of 5 (repeats in a bag); table 2: uniform over 3000 rows.
 */
function hotBatch(seed: number, d: number): UpdateBatch {
  const rng = new Rng(seed, 3);
  const hot = RUNS.flatMap((n, row) => Array<number>(n).fill(row));
  for (let i = hot.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [hot[i], hot[j]] = [hot[j], hot[i]];
  }
  const samples = hot.length;
  const tableRows = [RUNS.length, 5, 3000];
  const indices: Int32Array[] = [Int32Array.from(hot)];
  const offsets: Int32Array[] = [Int32Array.from({ length: samples + 1 }, (_, s) => s)];
  const bags: number[] = [], off = [0];
  for (let s = 0; s < samples; s++) {
    const size = rng.int(5);
    for (let j = 0; j < size; j++) bags.push(rng.int(5));
    off.push(bags.length);
  }
  indices.push(Int32Array.from(bags), Int32Array.from({ length: samples }, () => rng.int(3000)));
  offsets.push(Int32Array.from(off), offsets[0]);
  const dt = spread(rng, samples * (tableRows.length + 1) * d);
  return { tableRows, d, samples, indices, offsets, dt };
}

/** The CPU engine's sparse SGD of every table of `batch` from `initial`. */
function cpuUpdate(batch: UpdateBatch, initial: Float32Array[], lr: number): Float32Array[] {
  const sgd = new SparseSgd(batch.d);
  const ld = (batch.tableRows.length + 1) * batch.d;
  return initial.map((table, t) => {
    const out = table.slice();
    const grads = { grads: batch.dt, base: (t + 1) * batch.d, ld };
    sgd.apply(out, batch.indices[t], batch.offsets[t], 0, batch.samples, grads, lr);
    return out;
  });
}

/**
 * Float64: w - lr * (the sum of the row's gradients), and the size its float32 error is measured
 * against: |w| + lr * (the sum of their magnitudes).
 */
function float64Update(
  batch: UpdateBatch,
  initial: Float32Array[],
  lr: number,
): { exact: Float64Array; scale: Float64Array }[] {
  const { d, samples } = batch;
  const ld = (batch.tableRows.length + 1) * d;
  return initial.map((table, t) => {
    const sums = new Float64Array(table.length), mags = new Float64Array(table.length);
    const off = batch.offsets[t];
    for (let s = 0; s < samples; s++) {
      for (let j = off[s]; j < off[s + 1]; j++) {
        for (let q = 0; q < d; q++) {
          const g = batch.dt[s * ld + (t + 1) * d + q];
          sums[batch.indices[t][j] * d + q] += g;
          mags[batch.indices[t][j] * d + q] += Math.abs(g);
        }
      }
    }
    return {
      exact: Float64Array.from(table, (w, i) => w - lr * sums[i]),
      scale: Float64Array.from(table, (w, i) => Math.abs(w) + lr * mags[i]),
    };
  });
}

for (const [d, arenaBytes] of [[4, Infinity], [3, 40 * 3 * 4]] as const) {
  Deno.test({
    name: `GPU update paths equal the CPU engine's sparse SGD bit for bit on hot rows (d = ${d}${
      arenaBytes < Infinity ? ", tables split across arenas" : ""
    })`,
    ignore,
    sanitizeResources: false,
    fn: async () => {
      const h = await KernelHarness.create();
      try {
        const lr = 0.37;
        const batch = hotBatch(d, d);
        const rng = new Rng(9, 2);
        const initial = batch.tableRows.map((rows) => spread(rng, rows * d));
        const want = cpuUpdate(batch, initial, lr);
        const exact = float64Update(batch, initial, lr);
        const paths = [["pairwise"], ["lane"], ["tree"], ["tree", 2], ["tree", 4]] as const;
        for (const [path, fan] of paths) {
          const u = UpdateHarness.create(h, batch, lr, initial, arenaBytes);
          u.run(path, fan);
          const got = await u.readTables();
          got.forEach((table, t) => {
            assert.deepEqual(table, want[t], `${path}: table ${t} differs from the CPU engine`);
            // A tree of n adds errs by at most about log2(n) float32 roundings of the magnitudes.
            const { exact: e, scale } = exact[t];
            for (let i = 0; i < table.length; i++) {
              assert.ok(
                Math.abs(table[i] - e[i]) <= 2e-6 * scale[i],
                `${path}: table ${t} value ${i} is ${table[i]}, float64 gives ${e[i]}`,
              );
            }
          });
        }
        // Every row moved (a no-op update cannot pass), the hot ones by their whole sums.
        want[0].forEach((v, i) => assert.notEqual(v, initial[0][i], `table 0 value ${i}`));
        // Subtracting occurrence by occurrence would give other bits on the hot rows.
        const sequential = initial[0].slice();
        for (let s = 0; s < batch.samples; s++) {
          const row = batch.indices[0][s];
          for (let q = 0; q < d; q++) {
            sequential[row * d + q] -= Math.fround(
              Math.fround(lr) * batch.dt[s * (batch.tableRows.length + 1) * d + d + q],
            );
          }
        }
        assert.notDeepEqual(sequential, want[0]);
      } finally {
        h.destroy();
      }
    },
  });
}
