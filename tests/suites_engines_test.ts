import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import type { Engine, TrainChunkResult } from "../engine/engine.ts";
import { PHASES } from "../engine/phases.ts";
import { kaggleSpec } from "../engine/spec.ts";
import type { RunConfig } from "../record/schema.ts";
import {
  chunkTrainerOf,
  type EngineKind,
  engineKindOf,
  plannedEngineInfo,
} from "../suites/engines.ts";
import { kaggleSuite, terabyteSuite } from "../suites/mod.ts";
import { buildRunResult } from "../suites/result.ts";

function fp32(): RunConfig {
  const run = kaggleSuite({ experiments: ["table3"] }).runs.find((r) => r.name === "fp32")!;
  return { ...run, tableScale: 0.0005, batchSize: 32, testBatchSize: 256, threads: 1 };
}

const dp = (mode: "workers" | "simulated" | "accounting") => ({
  ...fp32(),
  dataParallel: { workers: 2, compression: "sparse" as const, mode },
});

Deno.test("the engine kind of a run: its engine, or data-parallel for real replicas only", () => {
  const cases: [RunConfig, EngineKind, string][] = [
    [fp32(), "cpu", "cpu"],
    [{ ...fp32(), engine: "gpu" }, "gpu", "gpu"],
    [dp("workers"), "data-parallel", "cpu"],
    [dp("simulated"), "cpu", "cpu"],
  ];
  for (const [config, kind, name] of cases) {
    assert.equal(engineKindOf(config), kind);
    assert.equal(plannedEngineInfo(config).name, name);
  }
  assert.equal(plannedEngineInfo({ ...fp32(), engine: "gpu" }).device, "WebGPU");
});

Deno.test("chunks overlap only when the engine declares it and trains them itself", async () => {
  const calls: number[] = [];
  const overlapping = {
    capabilities: { overlapsChunks: true },
    trainChunk: (chunk: { samples: number }) => {
      calls.push(chunk.samples);
      return Promise.resolve({ iterations: 0 } as unknown as TrainChunkResult);
    },
  } as unknown as Engine;
  const direct = chunkTrainerOf(fp32(), overlapping);
  assert.equal(direct.overlapsChunks, true);
  await direct.trainChunk({ samples: 7 } as never, { learningRate: 0.1 });
  assert.deepEqual(calls, [7]);

  const spec = kaggleSpec(0.0005);
  const cpu = await createCpuEngine({ spec, maxBatch: 256, seed: 1, threads: 1 });
  try {
    assert.equal(chunkTrainerOf(fp32(), cpu).overlapsChunks, false);
    // Simulated workers wrap the engine: never overlapped, whatever the engine declares.
    assert.equal(chunkTrainerOf(dp("simulated"), cpu).overlapsChunks, false);
  } finally {
    await cpu.dispose();
  }
});

Deno.test("a run that trained nothing gets empty timings and no timing samples", () => {
  const config = fp32();
  const result = buildRunResult({
    suite: "t",
    config,
    spec: kaggleSpec(config.tableScale),
    status: "failed",
    error: "",
    startedAt: new Date(0).toISOString(),
    engine: plannedEngineInfo(config),
    iterations: 0,
    engineBytes: 5,
  });
  assert.equal(result.error, "");
  assert.equal(result.timing.wallMsPerIteration, 0);
  assert.equal(result.timing.samplesPerSecond, 0);
  assert.deepEqual(Object.keys(result.timing.phases), [...PHASES]);
  assert.equal(result.timing.total.n, 0);
  assert.equal(result.memory.engineBytes, 5);
  assert.deepEqual(result.curve, []);
  for (const absent of ["timingSamples", "communication", "final", "best", "ceiling"] as const) {
    assert.equal(result[absent], undefined, absent);
  }
});

Deno.test("at the paper's scale both suites score the test set as the paper's scripts do", () => {
  for (
    const [suite, testSamples, small] of [[kaggleSuite, 3_274_330, 4096], [
      terabyteSuite,
      10_000_000,
      2048,
    ]] as const
  ) {
    const paper = suite({ paperScale: true }).runs.find((r) => r.name === "fp32")!;
    assert.equal(paper.testBatchSize, 16_384);
    assert.equal(paper.testSamples, testSamples);
    assert.equal(paper.evalEvery, 10_240);
    assert.equal(suite().runs.find((r) => r.name === "fp32")!.testBatchSize, small);
  }
});
