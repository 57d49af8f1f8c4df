import assert from "node:assert/strict";
import { kaggleSuite, runTraining } from "../suites/mod.ts";
import type { RunConfig } from "../record/schema.ts";

/** A tiny Kaggle run of `name` with far more iterations than `seconds` of budget allow. */
function overBudget(name: string, seconds: number): RunConfig {
  const run = kaggleSuite({ experiments: ["table3"] }).runs.find((r) => r.name === name)!;
  return {
    ...run,
    tableScale: 0.001,
    batchSize: 64,
    testBatchSize: 512,
    trainSamples: 100_000 * 64,
    testSamples: 1024,
    evalEvery: 0,
    chunkIterations: 50,
    warmupIterations: 5,
    threads: 1,
    budget: { seconds, memoryBytes: 0 },
  };
}

Deno.test("a run over its time budget trains until the budget is spent, then is evaluated and marked partial", async () => {
  const seconds = 1.5;
  const r = await runTraining(overBudget("dqrm-int4", seconds), { suite: "t" });
  assert.equal(r.status, "could-not-finish");
  assert.deepEqual(r.partial, { iterations: r.iterations, of: 100_000 });
  assert.ok(r.iterations > 15 && r.iterations < 100_000, `${r.iterations} iterations`);
  assert.match(r.error!, /over the budget of 1.5 s; stopped after \d+ of 100000 iterations/);
  // The budget was used, not abandoned after the first chunk, and not overrun by a chunk.
  const trainedMs = r.iterations * r.timing.wallMsPerIteration;
  assert.ok(trainedMs > 0.6 * seconds * 1000, `trained ${trainedMs.toFixed(0)} ms`);
  assert.ok(trainedMs < 1.3 * seconds * 1000, `trained ${trainedMs.toFixed(0)} ms`);
  // The partly trained model is evaluated where it stopped.
  assert.equal(r.curve.at(-1)?.iteration, r.iterations);
  assert.ok(r.final && r.final.auc > 0.5, "final metrics recorded");
  assert.ok(r.best);
});

Deno.test("a PTQ run over its budget is quantized and evaluated after its partial training", async () => {
  const r = await runTraining(overBudget("ptq-int4", 1), { suite: "t" });
  assert.equal(r.status, "could-not-finish");
  assert.equal(r.partial?.iterations, r.iterations);
  const [fp32, quantized] = r.curve.slice(-2);
  assert.equal(fp32.iteration, r.iterations);
  assert.equal(quantized.iteration, r.iterations);
  assert.equal(r.final?.accuracy, quantized.accuracy);
});

Deno.test("a run within its budget is not partial", async () => {
  const config = { ...overBudget("fp32", 300), trainSamples: 20 * 64 };
  const r = await runTraining(config, { suite: "t" });
  assert.equal(r.status, "ok");
  assert.equal(r.partial, undefined);
  assert.equal(r.iterations, 20);
});
