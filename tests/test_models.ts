/**
 * Test models and batches shared by the engine tests: a DLRM with odd widths everywhere and
 * seeded random one-hot or multi-hot batches.
 */
import assert from "node:assert/strict";
import { GOLDEN_TOLERANCE, type GoldenFixture, parseFixture, runGolden } from "../engine/golden.ts";
import type { Params } from "../engine/params.ts";
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import { Rng } from "../engine/rng.ts";
import { interactionWidth, type ModelSpec } from "../engine/spec.ts";

/**
 * A DLRM of 13 dense features: `topMlp` is the interaction width followed by `topHidden`.
 */
export function testSpec(
  tableRows: number[],
  embeddingDim: number,
  bottomMlp: number[],
  topHidden: number[],
): ModelSpec {
  return {
    denseFeatures: 13,
    tableRows,
    embeddingDim,
    bottomMlp,
    topMlp: [interactionWidth({ tableRows, embeddingDim }), ...topHidden],
  };
}

/** Odd widths everywhere: nothing is a multiple of 4, so every padding path runs. */
export const ODD: ModelSpec = testSpec([11, 3, 29, 7, 5], 5, [13, 9, 7, 5], [10, 6, 1]);

/**
 * A small DLRM with odd widths and small tables (rows shared between data-parallel workers and
 * ranks): the data-parallel and MPI tests' model.
 */
export function tinySpec(): ModelSpec {
  return testSpec([11, 3, 29, 7, 50], 5, [13, 9, 7, 5], [10, 6, 1]);
}

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

/** A tolerance: |got - want| <= atol + rtol |want|. */
export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Asserts |got - want| <= atol + rtol |want| everywhere (default: the golden tolerance). */
export function assertClose(
  name: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: Tolerance = GOLDEN_TOLERANCE,
) {
  assert.equal(got.length, want.length, `${name}: length`);
  let worst = -Infinity, at = -1;
  for (let i = 0; i < want.length; i++) {
    const excess = Math.abs(got[i] - want[i]) - (tol.atol + tol.rtol * Math.abs(want[i]));
    if (!(excess <= worst)) [worst, at] = [Number.isNaN(excess) ? Infinity : excess, i];
  }
  assert.ok(
    want.length === 0 || worst <= 0,
    `${name}: value ${at} is ${got[at]}, expected ${want[at]} (atol ${tol.atol}, rtol ${tol.rtol})`,
  );
}

/** {@linkcode assertClose} over every tensor of two parameter sets. */
export function assertParamsClose(
  prefix: string,
  got: Params,
  want: Params,
  tol: Tolerance = GOLDEN_TOLERANCE,
) {
  want.embeddings.forEach((w, t) => assertClose(`${prefix} table ${t}`, got.embeddings[t], w, tol));
  for (const part of ["bottom", "top"] as const) {
    want[part].forEach((w, l) => {
      assertClose(`${prefix} ${part}[${l}].weight`, got[part][l].weight, w.weight, tol);
      assertClose(`${prefix} ${part}[${l}].bias`, got[part][l].bias, w.bias, tol);
    });
  }
}

/** The golden fixtures under tests/fixtures/ that both engines replay. */
export const GOLDEN_FIXTURES = [
  "dlrm-fp32-onehot.json",
  "dlrm-fp32-multihot.json",
  "dlrm-int4-embeddings.json",
  "dlrm-int4-all.json",
  "dlrm-int8-all.json",
];

/** Reads and parses the golden fixture `file` of tests/fixtures/. */
export async function loadFixture(file: string): Promise<GoldenFixture> {
  return parseFixture(await Deno.readTextFile(new URL(`./fixtures/${file}`, import.meta.url)));
}

/** Replays the golden fixture `file` on `makeEngine`'s engine and asserts every step passes. */
export async function assertMatchesGolden(
  file: string,
  makeEngine: Parameters<typeof runGolden>[1],
) {
  const rows = await runGolden(await loadFixture(file), makeEngine);
  assert.ok(rows.length > 10);
  const failed = rows.filter((r) => !r.pass);
  assert.deepEqual(
    failed.map((r) => `step ${r.step} ${r.tensor}: max error ${r.maxAbsError}`),
    [],
  );
}
