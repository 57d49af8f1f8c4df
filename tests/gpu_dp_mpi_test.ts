/**
 * GPU data parallelism across MPI ranks (`cli/mpi_train.ts --engine gpu`): two ranks sharing the
 * local adapter (`--gpu-index 0`) train the model of two workers simulated on one GPU engine, bit
 * for bit, with equal replica checksums and the same bytes per worker; without `--gpu-index` each
 * rank opens its local rank's GPU, and on a one-adapter machine rank 1 fails with one line.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Compression, COMPRESSION_PRESETS } from "../comm/compression.ts";
import { SimulatedGpuDataParallel } from "../comm/gpu_replica.ts";
import { paramsChecksum } from "../comm/replicas.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import type { MpiTrainResult } from "../suites/mpi_train.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import { missing, mpiTrainTiny } from "./mpi_helpers.ts";
import { tinySpec } from "./test_models.ts";

const found = await findTestAdapter();
const ignore = missing !== null || found.adapter === null;
const BATCH = 24, ITERS = 4, SEED = 5, LR = 0.1;

function runRanks(preset: string, extra: string[]): Promise<MpiTrainResult> {
  const o = { batch: BATCH, iterations: ITERS, seed: SEED, lr: LR, preset };
  return mpiTrainTiny({ ...o, extra: ["--engine", "gpu", ...extra] });
}

for (const preset of ["sparse", "sparse-int8-ec"] as const) {
  Deno.test({
    name: `2 MPI GPU ranks on one adapter: two workers simulated on one GPU engine (${preset})`,
    ignore,
    async fn() {
      const result = await runRanks(preset, ["--gpu-index", "0"]);
      assert.ok(result.replicasAgree, `replica checksums ${result.replicaChecksums}`);
      const spec = tinySpec();
      const chunk = allocateOneHotChunk(spec, BATCH, BATCH * ITERS);
      new SyntheticCriteo(spec, { seed: SEED }).fill(chunk, "train", 0);
      const engine = await createGpuEngine({ spec, maxBatch: BATCH / 2, seed: SEED });
      const simulated = new SimulatedGpuDataParallel(
        engine,
        2,
        COMPRESSION_PRESETS[preset] as Compression,
      );
      try {
        const r = await simulated.trainChunk(chunk, { learningRate: LR });
        const params = await engine.readParams();
        assert.equal(result.checksum, paramsChecksum(params));
        // The JSON result holds the parameters as plain arrays.
        const plain = JSON.parse(
          JSON.stringify(
            params,
            (_k, v) => ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v,
          ),
        );
        assert.deepEqual(result.params, plain);
        assert.deepEqual(result.bytesPerIteration, r.bytesPerIteration);
      } finally {
        simulated.destroy();
        await engine.dispose();
      }
    },
  });
}

Deno.test({
  name: "2 MPI GPU ranks default to their local rank's GPU: one line naming the index",
  ignore,
  async fn() {
    await assert.rejects(
      () => runRanks("sparse", []),
      /mpi_train \(rank 1\): Expected a GPU index in \[0, 1\) but found 1: adapters found: \[0\]|mpi_train \(rank 1\): Expected GPU index 0 but found 1: adapters found: \[0\]/,
    );
  },
});
