/**
 * Exact communication accounting: the bytes one worker sends per iteration, by part, as
 * {@linkcode WorkerGradients.bytes} counts them during training (tests check that the two
 * agree and that the communicator sent exactly that).
 *
 * What is counted, per worker and iteration (the message it contributes to each collective):
 * - embedding, dense: every table's gradient, `4 Σ n_t d`;
 * - embedding, sparse: the per-table counts (`4 T`), the unique row ids (`4 Σ u_t`) and their
 *   values (`Σ u_t d` × 4, 2 or 1 bytes): row ids are counted, which the paper does not;
 * - MLP: every weight and bias, `P` × 4, 2 or 1 bytes;
 * - scales: one FP32 per quantized tensor (per table, per weight matrix, per bias vector).
 *
 * @module
 */
import type { ModelSpec } from "../engine/spec.ts";
import {
  type ByteCount,
  byteCount,
  type Compression,
  CompressionSchema,
  planMlpTensors,
  scaleCount,
} from "./compression.ts";

/** Bytes one worker sends for one iteration whose local batch touched `uniqueRows[t]` rows. */
export function messageBytes(
  spec: ModelSpec,
  compression: Partial<Compression>,
  uniqueRows: readonly number[],
): ByteCount {
  const c = CompressionSchema.parse(compression);
  const d = spec.embeddingDim;
  const T = spec.tableRows.length;
  const u = uniqueRows.reduce((a, b) => a + b, 0);
  const valueBytes = c.embeddingBits ? c.embeddingBits / 8 : 4;
  const embedding = c.sparseEmbeddings
    ? 4 * (T + u) + u * d * valueBytes
    : 4 * spec.tableRows.reduce((a, n) => a + n * d, 0);
  const p = planMlpTensors(spec).reduce((a, t) => a + t.length, 0);
  const mlp = p * (c.mlpBits ? c.mlpBits / 8 : 4);
  return byteCount(embedding, mlp, 4 * scaleCount(spec, c));
}

/**
 * Mean bytes one worker sends per iteration, by part: `totals` are the bytes each worker sent
 * over the same `iterations` iterations (one entry per worker, or one entry for all of them
 * counted together), averaged over the workers and the iterations (`iterations` 0 counts as 1).
 * Each part is summed over the workers as `Σ totals[w][k] / (workers · iterations)`, in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { meanBytesPerIteration } from "./accounting.ts";
 * const w = { embedding: 40, mlp: 20, scales: 4, total: 64 };
 * assert.deepEqual(meanBytesPerIteration([w, w], 4), { embedding: 10, mlp: 5, scales: 1, total: 16 });
 * ```
 */
export function meanBytesPerIteration(
  totals: readonly ByteCount[],
  iterations: number,
): ByteCount {
  const bytes = byteCount(0, 0, 0);
  const per = totals.length * Math.max(iterations, 1);
  for (const b of totals) addBytesDivided(bytes, b, per);
  return bytes;
}

/** Adds `b / divisor` to every part of `sum` (one term of a mean over `divisor`). */
export function addBytesDivided(sum: ByteCount, b: ByteCount, divisor: number): void {
  for (const k of ["embedding", "mlp", "scales", "total"] as const) sum[k] += b[k] / divisor;
}

/** `b` with every part multiplied by `factor` (per-iteration bytes to a chunk's totals). */
export function bytesTimes(b: ByteCount, factor: number): ByteCount {
  return {
    embedding: b.embedding * factor,
    mlp: b.mlp * factor,
    scales: b.scales * factor,
    total: b.total * factor,
  };
}

/** The most rows a local batch of `localBatch` one-hot samples can touch: `min(b, n_t)`. */
export function maxUniqueRows(spec: ModelSpec, localBatch: number, bag = 1): number[] {
  return spec.tableRows.map((n) => Math.min(n, localBatch * bag));
}

/** The unique rows per table of samples `[s0, s0 + rows)` of a chunk's bags. */
export function uniqueRowsOf(
  chunk: { indices: Int32Array[]; offsets: Int32Array[] },
  s0: number,
  rows: number,
): number[] {
  return chunk.indices.map((idx, t) => {
    const off = chunk.offsets[t];
    return new Set(idx.subarray(off[s0], off[s0 + rows])).size;
  });
}

/** The paper's Table 4 (Kaggle, 4 workers): bytes per iteration of each setting. */
export const PAPER_TABLE4_KAGGLE = {
  uncompressed: 2.161e9,
  sparse: 2.010e6,
  sparseInt8: 0.509e6,
} as const;

/**
 * Table 4's three columns for `spec`, `workers` workers and global batch `globalBatch`, with
 * the most unique rows a local batch can touch (an upper bound of every iteration's count).
 */
export function table4Bytes(
  spec: ModelSpec,
  workers: number,
  globalBatch: number,
): { uncompressed: ByteCount; sparse: ByteCount; sparseInt8: ByteCount } {
  if (globalBatch % workers !== 0) {
    throw new RangeError(`Expected the global batch to be a multiple of ${workers} workers`);
  }
  const u = maxUniqueRows(spec, globalBatch / workers);
  return {
    uncompressed: messageBytes(spec, { sparseEmbeddings: false }, u),
    sparse: messageBytes(spec, { sparseEmbeddings: true }, u),
    sparseInt8: messageBytes(spec, { sparseEmbeddings: true, embeddingBits: 8, mlpBits: 8 }, u),
  };
}
