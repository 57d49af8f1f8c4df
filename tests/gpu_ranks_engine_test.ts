/**
 * GPU ranks behind the engine interface (`comm/gpu_ranks_engine.ts`): a suite run on two GPU
 * ranks (`dataParallel.mode: "workers"`, engine gpu) trains, evaluates and writes the same model
 * file, bit for bit, as the same run with two workers simulated on one GPU engine, and records
 * the ranks' identical checksums.
 *
 * @module
 */
import assert from "node:assert/strict";
import { rankGpuIndex } from "../comm/gpu_ranks.ts";
import type { RunConfig } from "../record/schema.ts";
import { kaggleSuite, runTraining } from "../suites/mod.ts";
import { findTestAdapter } from "./gpu_setup.ts";

const found = await findTestAdapter();

/** Table 6's INT4 DQRM run on two workers under `preset`, tiny: 12 iterations of batch 32. */
function tiny(preset: "sparse" | "sparse-int8-ec", mode: "simulated" | "workers"): RunConfig {
  const t6 = kaggleSuite({ experiments: ["table6"] }).runs.find((r) =>
    r.name === `t6-dp2-${preset}`
  )!;
  return {
    ...t6,
    engine: "gpu",
    tableScale: 0.0005,
    batchSize: 32,
    testBatchSize: 256,
    trainSamples: 12 * 32,
    testSamples: 512,
    evalEvery: 6,
    chunkIterations: 6,
    warmupIterations: 2,
    dataParallel: { workers: 2, compression: preset, mode },
  };
}

for (const preset of ["sparse", "sparse-int8-ec"] as const) {
  Deno.test({
    name: `a run on two GPU ranks equals two workers simulated on one GPU engine: ${preset}`,
    ignore: found.adapter === null,
    fn: async () => {
      const dir = await Deno.makeTempDir();
      try {
        const simulated = await runTraining(tiny(preset, "simulated"), {
          suite: "t",
          saveModelTo: `${dir}/simulated.model`,
        });
        assert.equal(simulated.status, "ok", simulated.error);
        const ranks = await runTraining(tiny(preset, "workers"), {
          suite: "t",
          saveModelTo: `${dir}/ranks.model`,
          rankGpus: [0],
        });
        assert.equal(ranks.status, "ok", ranks.error);
        assert.equal(ranks.iterations, 12);
        assert.equal(ranks.environment.engine.details.dataParallelRanks, 2);
        assert.equal(ranks.communication?.mode, "workers");
        assert.equal(ranks.communication?.replicaChecksums?.length, 2);
        assert.equal(ranks.communication?.replicasIdentical, true);
        assert.deepEqual(
          ranks.communication?.bytesPerIteration,
          simulated.communication?.bytesPerIteration,
        );
        assert.deepEqual(ranks.curve.map((c) => c.auc), simulated.curve.map((c) => c.auc));
        assert.deepEqual(
          await Deno.readFile(`${dir}/ranks.model`),
          await Deno.readFile(`${dir}/simulated.model`),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test("a list of rank GPUs shorter than the ranks repeats its last; none is the default", () => {
  const gpuIndex = rankGpuIndex([2, 0])!;
  assert.deepEqual([0, 1, 2, 3].map(gpuIndex), [2, 0, 0, 0]);
  assert.deepEqual([0, 5].map(rankGpuIndex([1])!), [1, 1]);
  assert.equal(rankGpuIndex(undefined), undefined);
  assert.equal(rankGpuIndex(null), undefined);
  assert.equal(rankGpuIndex([]), undefined);
});
