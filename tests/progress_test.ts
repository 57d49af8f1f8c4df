import assert from "node:assert/strict";
import { kaggleSuite, SuiteProgress } from "../suites/mod.ts";
import type { RunConfig, RunResult } from "../record/schema.ts";

const BENCH = new URL("../cli/bench.ts", import.meta.url).pathname;

Deno.test("SuiteProgress: run k of N, and an overall ETA capped by each run's budget", () => {
  const runs: RunConfig[] = kaggleSuite().runs.slice(0, 3).map((r) => ({
    ...r,
    budget: { seconds: 300, memoryBytes: 0 },
  }));
  let now = 0;
  const p = new SuiteProgress(runs, () => now);
  p.startRun(0);
  now = 20_000;
  const first = p.line({
    run: runs[0].name,
    stage: "train",
    epoch: 0.2,
    iteration: 1000,
    totalIterations: 5000,
    msPerIteration: 800, // 3,200 s left, but the 300 s budget stops it
  });
  assert.match(first, /^\[run 1 of 3 fp32\] train · it 1000\/5000/);
  assert.match(first, /ETA 4 min 40 s this run, 14 min 40 s all runs \(elapsed 20 s\)/);
  now = 310_000;
  p.endRun({ iterations: 5000, timing: { wallMsPerIteration: 60 } } as unknown as RunResult);
  p.startRun(1);
  now = 315_000;
  // Before its first chunk, a run is projected at the finished runs' pace.
  const init = p.line({
    run: runs[1].name,
    stage: "init",
    epoch: 0,
    iteration: 0,
    totalIterations: 5000,
  });
  assert.match(init, /^\[run 2 of 3 [^\]]+\] init · it 0\/5000 · building model and data · ETA/);
  now = 320_000;
  const second = p.line({
    run: runs[1].name,
    stage: "train",
    epoch: 0,
    iteration: 0,
    totalIterations: 5000,
    msPerIteration: 10,
  });
  // Overhead of the first run: 310 s − 300 s trained = 10 s. This run: 50 s + 10 s; the last
  // at the finished runs' pace (60 ms/it: over its budget, 300 s) + 10 s.
  assert.match(second, /^\[run 2 of 3 /);
  assert.match(second, /ETA 1 min 00 s this run, 6 min 10 s all runs \(elapsed 5 min 20 s\)/);
});

Deno.test("SuiteProgress: a run's evaluations still ahead count at their measured time", () => {
  // Two runs of 5,000 iterations in one epoch, evaluated every 1,000 and at the end.
  const runs: RunConfig[] = kaggleSuite().runs.slice(0, 2).map((r) => ({
    ...r,
    budget: { seconds: 3600, memoryBytes: 0 },
  }));
  assert.equal(runs[0].evalEvery, 1000);
  assert.equal(runs[0].epochs, 1);
  let now = 0;
  const p = new SuiteProgress(runs, () => now);
  p.startRun(0);
  const at = (stage: "train" | "eval", extra: object) =>
    p.line({
      run: "fp32",
      stage,
      epoch: 0.2,
      iteration: 1000,
      totalIterations: 5000,
      ...extra,
    });
  now = 10_000;
  // Before any evaluation: the training alone (4,000 iterations at 10 ms).
  assert.match(at("train", { msPerIteration: 10 }), /ETA 40 s this run, 1 min 30 s all runs/);
  at("eval", {});
  now = 13_000;
  // One evaluation took 3 s: 4 still ahead every 1,000 iterations and one at the end (4.8 by the
  // estimate, 14.4 s); the next run: 50 s of training and 6 evaluations (18 s).
  assert.match(
    at("eval", { accuracy: 0.7, auc: 0.75 }),
    /ETA 54 s this run, 2 min 02 s all runs \(elapsed 13 s\)/,
  );
});

Deno.test("bench prints run k of N and the overall ETA in its progress lines", async () => {
  const dir = await Deno.makeTempDir();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      BENCH,
      "kaggle",
      "--iterations",
      "300",
      "--scale",
      "0.0005",
      "--test-samples",
      "1000",
      "--threads",
      "1",
      "--run",
      "fp32",
      "--run",
      "dqrm-int4",
      "--out",
      dir,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.match(stderr, /\[run 1 of 2 fp32\] init/);
  assert.match(stderr, /\[run 2 of 2 dqrm-int4\] train · it \d+\/300 .* all runs/);
  assert.match(
    stderr,
    /\[run 2 of 2 dqrm-int4\] ok — [\d.]+ ms\/it phase sum .* samples\/s wall clock/,
  );
  await Deno.remove(dir, { recursive: true });
});
