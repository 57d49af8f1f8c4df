/**
 * The plan of a chunk's compute passes (`engine/gpu/timing.ts`): sampled iterations, stretches,
 * and the breaks where a chunk recorded on an idle GPU submits what it has. No GPU needed.
 */
import assert from "node:assert/strict";
import { earlySubmitBreaks, PASS_PHASES, planPasses } from "../engine/gpu/timing.ts";

Deno.test("earlySubmitBreaks doubles the pieces and stays inside the chunk", () => {
  assert.deepEqual(earlySubmitBreaks(1), []);
  assert.deepEqual(earlySubmitBreaks(2), [1]);
  assert.deepEqual(earlySubmitBreaks(16), [1, 3, 7, 15]);
  assert.deepEqual(earlySubmitBreaks(128), [1, 3, 7, 15, 31, 63, 127]);
});

Deno.test("planPasses covers every iteration once, sampling every nth and ending stretches at breaks", () => {
  const passes = planPasses(20, true, 8, earlySubmitBreaks(20));
  const shape = passes.map((p) => `${p.phase ?? "all"}:${p.first}+${p.count}`);
  const sampled = (i: number) => PASS_PHASES.map((ph) => `${ph}:${i}+1`);
  assert.deepEqual(shape, [
    ...sampled(0),
    "all:1+2",
    "all:3+4",
    "all:7+1",
    ...sampled(8),
    "all:9+6",
    "all:15+1",
    ...sampled(16),
    "all:17+3",
  ]);
  // Untimed, without breaks: one pass; with them, one per piece.
  assert.deepEqual(planPasses(20, false, 8), [{ phase: null, first: 0, count: 20 }]);
  const pieces = planPasses(20, false, 8, earlySubmitBreaks(20));
  assert.deepEqual(pieces.map((p) => [p.first, p.count]), [[0, 1], [1, 2], [3, 4], [7, 8], [
    15,
    5,
  ]]);
  // Every iteration in exactly one stretch or in one pass per phase.
  for (const plan of [passes, pieces]) {
    const seen = new Array(20).fill(0);
    for (const p of plan) for (let i = p.first; i < p.first + p.count; i++) seen[i]++;
    assert.ok(seen.every((n, i) => n === (plan === passes && i % 8 === 0 ? 4 : 1)));
  }
});
