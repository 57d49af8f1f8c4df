/**
 * `validateChunk`: every kind of bad input still raises the error that names it, with the fast
 * scans (offsets shared by tables checked once, the branch-free index scan).
 */
import assert from "node:assert/strict";
import { type BatchChunk, validateChunk } from "../engine/batch.ts";
import { Rng } from "../engine/rng.ts";
import { ODD, randomChunk } from "./test_models.ts";
import { referenceProblem } from "./validate_reference.ts";

function problemOf(chunk: BatchChunk, tableRows: readonly number[]): string | undefined {
  try {
    validateChunk(chunk, { denseFeatures: ODD.denseFeatures, tableRows });
    return undefined;
  } catch (e) {
    assert.ok(e instanceof RangeError);
    return e.message;
  }
}

Deno.test("out-of-range indices are found at their first position, whatever their value", () => {
  const values = [-1, -(2 ** 31), 2 ** 31 - 1, 29, 30, 1000];
  for (const multiHot of [false, true]) {
    for (const [k, value] of values.entries()) {
      const chunk = randomChunk(ODD, 4, 64, 7 + k, multiHot);
      const t = k % ODD.tableRows.length;
      const at = Math.max(0, chunk.offsets[t][64] - 3 - k);
      chunk.indices[t][at] = value;
      const want = value >= 0 && value < ODD.tableRows[t] ? undefined : referenceProblem(
        chunk,
        ODD.tableRows,
      );
      assert.equal(problemOf(chunk, ODD.tableRows), want);
      if (want) assert.match(want, new RegExp(`found ${value} at position ${at}$`));
    }
  }
});

Deno.test("indices at the ends of the range pass, huge tables included", () => {
  const chunk = randomChunk(ODD, 4, 16, 3);
  for (const [t, rows] of ODD.tableRows.entries()) {
    chunk.indices[t][0] = 0;
    chunk.indices[t][15] = rows - 1;
  }
  assert.equal(problemOf(chunk, ODD.tableRows), undefined);
  const big = [2 ** 31 - 1, 2 ** 31, 2 ** 32, 7, 5];
  chunk.indices[0][2] = 2 ** 31 - 1;
  assert.match(problemOf(chunk, big) ?? "", /table 0 indices in \[0, 2147483647\) but found/);
  chunk.indices[0][2] = 2 ** 31 - 2;
  chunk.indices[1][2] = 2 ** 31 - 1;
  chunk.indices[2][2] = 2 ** 31 - 1;
  assert.equal(problemOf(chunk, big), undefined);
  chunk.indices[2][9] = -1;
  assert.match(problemOf(chunk, big) ?? "", /table 2 indices in \[0, 4294967296\) but found -1/);
  assert.match(problemOf(chunk, [0, 3, 29, 7, 5]) ?? "", /table 0 indices in \[0, 0\)/);
});

Deno.test("decreasing offsets are named by the first table that uses them, shared or not", () => {
  // One-hot: every table shares one offsets array, so the first table is named.
  const shared = randomChunk(ODD, 4, 32, 5);
  shared.offsets[0][20] = 30;
  assert.equal(
    problemOf(shared, ODD.tableRows),
    "Expected table 0 offsets to be non-decreasing at sample 20",
  );
  // Multi-hot: a table's own offsets, after the tables before it passed.
  const own = randomChunk(ODD, 4, 32, 6, true);
  own.offsets[3][11] = own.offsets[3][12] + 1;
  assert.equal(problemOf(own, ODD.tableRows), referenceProblem(own, ODD.tableRows));
  assert.match(problemOf(own, ODD.tableRows) ?? "", /table 3 offsets .* at sample 11$/);
  // Two tables sharing an array, the second after a table with its own: still checked once, first.
  const mixed = randomChunk(ODD, 4, 32, 8);
  mixed.offsets[0] = Int32Array.from({ length: 33 }, (_, s) => s);
  mixed.offsets[2][5] = 7;
  assert.match(problemOf(mixed, ODD.tableRows) ?? "", /table 1 offsets .* at sample 5$/);
});

Deno.test("random corruptions raise what the plain loop raises", () => {
  const rng = new Rng(11, 1);
  for (let trial = 0; trial < 200; trial++) {
    const multiHot = trial % 2 === 1;
    const chunk = randomChunk(ODD, 4, 48, 100 + trial, multiHot);
    const t = rng.int(ODD.tableRows.length);
    if (rng.next() < 0.5) {
      const at = rng.int(Math.max(1, chunk.offsets[t][48]));
      chunk.indices[t][at] = rng.int(80) - 20;
    } else {
      const s = 1 + rng.int(47);
      chunk.offsets[t][s] = chunk.offsets[t][s] + rng.int(5) - 2;
      if (chunk.offsets[t][48] > chunk.indices[t].length) continue;
    }
    assert.equal(problemOf(chunk, ODD.tableRows), referenceProblem(chunk, ODD.tableRows));
  }
});
