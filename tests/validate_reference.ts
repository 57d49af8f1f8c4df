/**
 * The chunk check of `validateChunk` as a plain per-element loop (every table's offsets and
 * indices, one compare each): what its fast scans must agree with, and the baseline they are
 * timed against (`deno bench tests/batch_validate_bench.ts`).
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";

/** The first problem `validateChunk` would name in the offsets and indices, or `undefined`. */
export function referenceProblem(
  chunk: BatchChunk,
  tableRows: readonly number[],
): string | undefined {
  const n = chunk.samples;
  for (let t = 0; t < tableRows.length; t++) {
    const off = chunk.offsets[t], idx = chunk.indices[t];
    for (let s = 0; s < n; s++) {
      if (off[s + 1] < off[s]) {
        return `Expected table ${t} offsets to be non-decreasing at sample ${s}`;
      }
    }
    for (let i = 0; i < off[n]; i++) {
      if (idx[i] < 0 || idx[i] >= tableRows[t]) {
        return `Expected table ${t} indices in [0, ${tableRows[t]}) but found ${
          idx[i]
        } at position ${i}`;
      }
    }
  }
  return undefined;
}
