/**
 * Test models and batches shared by the engine tests: a DLRM with odd widths everywhere and
 * seeded random one-hot or multi-hot batches.
 */
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import { Rng } from "../engine/rng.ts";
import { interactionWidth, type ModelSpec } from "../engine/spec.ts";

/** Odd widths everywhere: nothing is a multiple of 4, so every padding path runs. */
export const ODD: ModelSpec = (() => {
  const tableRows = [11, 3, 29, 7, 5];
  const embeddingDim = 5;
  return {
    denseFeatures: 13,
    tableRows,
    embeddingDim,
    bottomMlp: [13, 9, 7, 5],
    topMlp: [interactionWidth({ tableRows, embeddingDim }), 10, 6, 1],
  };
})();

/** Seeded random batches of `spec` (multi-hot bags of 0-3 rows, empty ones included). */
export function randomChunk(
  spec: ModelSpec,
  batch: number,
  samples: number,
  seed: number,
  multiHot = false,
) {
  const rng = new Rng(seed, 42);
  if (!multiHot) {
    const c = allocateOneHotChunk(spec, batch, samples);
    for (let i = 0; i < c.dense.length; i++) c.dense[i] = Math.log1p(rng.int(50));
    for (let s = 0; s < samples; s++) c.labels[s] = rng.next() < 0.3 ? 1 : 0;
    spec.tableRows.forEach((n, t) => {
      for (let s = 0; s < samples; s++) c.indices[t][s] = rng.int(n);
    });
    return c;
  }
  const indices: Int32Array[] = [], offsets: Int32Array[] = [];
  for (const n of spec.tableRows) {
    const off = new Int32Array(samples + 1);
    const idx: number[] = [];
    for (let s = 0; s < samples; s++) {
      const bag = rng.int(4); // empty bags included
      for (let j = 0; j < bag; j++) idx.push(rng.int(n));
      off[s + 1] = idx.length;
    }
    indices.push(Int32Array.from(idx));
    offsets.push(off);
  }
  const dense = Float32Array.from({ length: samples * spec.denseFeatures }, () => rng.next() * 3);
  const labels = Float32Array.from({ length: samples }, () => (rng.next() < 0.3 ? 1 : 0));
  return { batchSize: batch, samples, dense, labels, indices, offsets } satisfies BatchChunk;
}
