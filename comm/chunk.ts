/**
 * Splitting a chunk of global batches among data-parallel workers.
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";

/**
 * Worker `rank`'s share of every global batch of `chunk`: of global batch `i`, the contiguous
 * samples `[i·B + rank·b, i·B + (rank + 1)·b)` with `b = B / size` (the public code's
 * `get_my_slice`), as a chunk of batches of `b` (copied; multi-hot bags kept).
 */
export function sliceChunk(chunk: BatchChunk, rank: number, size: number): BatchChunk {
  const B = chunk.batchSize;
  if (B % size !== 0) {
    throw new RangeError(`Expected the global batch ${B} to be a multiple of ${size} workers`);
  }
  const b = B / size;
  const batches = Math.floor(chunk.samples / B);
  const n = batches * b;
  const sample = (s: number) => Math.floor(s / b) * B + rank * b + (s % b);
  const nd = chunk.dense.length / Math.max(chunk.samples, 1);
  const dense = new Float32Array(n * nd);
  const labels = new Float32Array(n);
  for (let s = 0; s < n; s++) {
    const g = sample(s);
    dense.set(chunk.dense.subarray(g * nd, (g + 1) * nd), s * nd);
    labels[s] = chunk.labels[g];
  }
  const offsetCache = new Map<Int32Array, Int32Array>();
  const indices: Int32Array[] = [];
  const offsets: Int32Array[] = [];
  chunk.indices.forEach((idx, t) => {
    const off = chunk.offsets[t];
    let total = 0;
    for (let s = 0; s < n; s++) total += off[sample(s) + 1] - off[sample(s)];
    const outIdx = new Int32Array(total);
    let outOff = offsetCache.get(off);
    const build = !outOff;
    if (build) outOff = new Int32Array(n + 1);
    let at = 0;
    for (let s = 0; s < n; s++) {
      const g = sample(s);
      outIdx.set(idx.subarray(off[g], off[g + 1]), at);
      at += off[g + 1] - off[g];
      if (build) outOff![s + 1] = at;
    }
    if (build) offsetCache.set(off, outOff!);
    indices.push(outIdx);
    offsets.push(outOff!);
  });
  return { batchSize: b, samples: n, dense, labels, indices, offsets };
}

/**
 * The loss of each iteration of a data-parallel chunk: the mean of the workers' local losses,
 * summed in rank order.
 */
export function meanWorkerLoss(losses: readonly ArrayLike<number>[], iterations: number) {
  const loss = new Float32Array(iterations);
  for (let i = 0; i < iterations; i++) {
    let sum = 0;
    for (const l of losses) sum += l[i];
    loss[i] = sum / losses.length;
  }
  return loss;
}
