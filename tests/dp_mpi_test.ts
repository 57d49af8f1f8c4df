import assert from "node:assert/strict";
import { messageBytes, uniqueRowsOf } from "../comm/accounting.ts";
import { sliceChunk } from "../comm/chunk.ts";
import { COMPRESSION_PRESETS } from "../comm/compression.ts";
import { DataParallelTrainer } from "../comm/data_parallel.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { blasAvailable } from "../engine/cpu/blas_library.ts";
import { type CpuKernelChoice, createCpuEngine } from "../engine/cpu/mod.ts";
import type { Params } from "../engine/params.ts";
import type { CompressionPresetName } from "../record/presets.ts";
import type { MpiTrainResult } from "../suites/mpi_train.ts";
import { expectedCommBytes, expectedCommScript } from "./dp_comm_script.ts";
import { missing, mpirun, mpiTrainTiny } from "./mpi_helpers.ts";
import { assertParamsClose, tinySpec } from "./test_models.ts";

const BLAS = blasAvailable();
const SKIP_BLAS = BLAS ? "" : " (skipped: libopenblas.so.0 (or DQRM_BLAS_LIB) cannot be opened)";

Deno.test({
  name: "MPI communicator: in-rank-order float sums, exact integer sums, gathers, bytes",
  ignore: missing !== null,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // 3 ranks: float sums in another order than rank order would differ.
      // Open MPI's ring all-reduce (algorithm 4) adds 3 ranks' floats out of rank order: a float
      // sum through MPI_Allreduce would fail here.
      await mpirun("./dp_mpi_rank.ts", [dir], 3, {
        OMPI_MCA_coll_tuned_use_dynamic_rules: "1",
        OMPI_MCA_coll_tuned_allreduce_algorithm: "4",
      });
      const want = expectedCommScript(3);
      assert.deepEqual(want.order, [0, 0, 1]);
      for (const rank of [0, 1, 2]) {
        const r = JSON.parse(await Deno.readTextFile(`${dir}/rank${rank}.json`));
        const { bytesSent, ...got } = r;
        assert.deepEqual(got, want); // bit-identical to the shared-memory communicator's sums
        assert.equal(bytesSent, expectedCommBytes(rank));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const BATCH = 24, ITERS = 6, SEED = 3, LR = 0.1;

function flat(p: Params): number[] {
  return [...p.embeddings, ...[...p.bottom, ...p.top].flatMap((l) => [l.weight, l.bias])]
    .flatMap((a) => Array.from(a));
}

/**
 * Trains the tiny model on 2 MPI ranks with `kernels`; checks it against 2 in-process workers on
 * the same kernels bit for bit, and that the result records the kernels that ran.
 */
async function checkAgainstInProcess(
  preset: CompressionPresetName,
  kernels: Exclude<CpuKernelChoice, "auto">,
): Promise<MpiTrainResult> {
  const result = await mpiTrainTiny({
    batch: BATCH,
    iterations: ITERS,
    seed: SEED,
    lr: LR,
    preset,
    extra: ["--cpu-kernels", kernels],
  });
  assert.equal(result.config.cpuKernels, kernels);
  assert.equal(result.environment.engine.details.cpuKernels, kernels);
  // (b) replicas identical across ranks.
  assert.equal(result.ranks, 2);
  assert.ok(result.replicasAgree, `replica checksums ${result.replicaChecksums}`);
  assert.equal(result.replicaChecksums[1], result.checksum);
  assert.equal(result.losses.length, ITERS);
  // The same run in one process: 2 Workers over shared memory.
  const spec = tinySpec();
  const chunk = allocateOneHotChunk(spec, BATCH, BATCH * ITERS);
  new SyntheticCriteo(spec, { seed: SEED }).fill(chunk, "train", 0);
  const dp = await DataParallelTrainer.create({
    spec,
    workers: 2,
    maxBatch: BATCH,
    seed: SEED,
    compression: COMPRESSION_PRESETS[preset],
    kernels,
  });
  try {
    assert.equal(dp.kernels.cpuKernels, kernels);
    const r = await dp.trainChunk(chunk, { learningRate: LR });
    assert.deepEqual(result.losses, Array.from(r.loss));
    assert.deepEqual(await dp.checksums(), result.replicaChecksums);
    assert.deepEqual(flat(result.params!), flat(await dp.readParams()));
    assert.deepEqual(result.bytesPerIteration, r.bytesPerIteration);
    assert.deepEqual(result.bytesSent, r.bytesSent);
  } finally {
    dp.dispose();
  }
  // Every rank sent exactly what the accounting counts for its local batches.
  for (let rank = 0; rank < 2; rank++) {
    const local = sliceChunk(chunk, rank, 2);
    let bytes = 0;
    for (let i = 0; i < ITERS; i++) {
      const u = uniqueRowsOf(local, i * local.batchSize, local.batchSize);
      bytes += messageBytes(spec, COMPRESSION_PRESETS[preset], u).total;
    }
    // Training sends the accounted bytes; the result gather afterwards is not counted.
    assert.equal(result.bytesSent[rank], bytes);
  }
  return result;
}

Deno.test({
  name: "2 MPI ranks, uncompressed: the in-process 2-worker model bit for bit, near one worker",
  ignore: missing !== null,
  async fn() {
    const result = await checkAgainstInProcess("uncompressed", "wasm");
    const spec = tinySpec();
    const chunk = allocateOneHotChunk(spec, BATCH, BATCH * ITERS);
    new SyntheticCriteo(spec, { seed: SEED }).fill(chunk, "train", 0);
    const engine = await createCpuEngine({ spec, maxBatch: BATCH, seed: SEED, threads: 1 });
    try {
      await engine.trainChunk(chunk, { learningRate: LR });
      const want = flat(await engine.readParams()), got = flat(result.params!);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - got[i]));
      assert.ok(worst < 1e-5, `max |difference| from one worker ${worst}`);
    } finally {
      await engine.dispose();
    }
  },
});

Deno.test({
  name: "2 MPI ranks, sparse INT8 + EC: the in-process model, bytes as accounted",
  ignore: missing !== null,
  async fn() {
    const result = await checkAgainstInProcess("sparse-int8-ec", "wasm");
    assert.ok(result.bytesPerIteration.scales > 0 && result.bytesPerIteration.mlp > 0);
  },
});

Deno.test({
  name: "2 MPI ranks, --cpu-kernels blas: replicas agree, within the golden tolerance of wasm" +
    SKIP_BLAS,
  ignore: missing !== null || !BLAS,
  async fn() {
    const blas = await checkAgainstInProcess("sparse", "blas");
    const wasm = await mpiTrainTiny({
      batch: BATCH,
      iterations: ITERS,
      seed: SEED,
      lr: LR,
      preset: "sparse",
      extra: ["--cpu-kernels", "wasm"],
    });
    assert.equal(wasm.environment.engine.details.cpuKernels, "wasm");
    assertParamsClose("blas vs wasm parameters", blas.params!, wasm.params!);
  },
});

Deno.test({
  name: "bench:mpi --cpu-kernels blas: the exchange trains on BLAS and records it" +
    SKIP_BLAS,
  ignore: missing !== null || !BLAS,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/bench.json`;
      const out = await mpirun("../cli/bench_mpi.ts", [
        ...["--sizes", "16", "--iterations", "3", "--scale", "0.001", "--batch-size", "32"],
        ...["--cpu-kernels", "blas", "--out", file],
      ]);
      assert.match(out, /2 ranks, blas: /);
      const figures = JSON.parse(await Deno.readTextFile(file));
      assert.equal(figures.exchange.config.cpuKernels, "blas");
      assert.equal(figures.exchange.cpuKernels, "blas");
      assert.equal(figures.environment.engine.details.cpuKernels, "blas");
      assert.ok(figures.exchange.replicasAgree);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "2 MPI ranks whose kernels differ (auto, BLAS on rank 0 only) stop before training" +
    SKIP_BLAS,
  ignore: missing !== null || !BLAS,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const specFile = `${dir}/spec.json`;
      await Deno.writeTextFile(specFile, JSON.stringify(tinySpec()));
      await assert.rejects(
        mpirun("./dp_mpi_kernels_rank.ts", [
          ...["--spec", specFile, "--batch-size", "8", "--iterations", "1"],
          ...["--cpu-kernels", "auto"],
        ]),
        /Expected every rank to run the same matrix kernels but found rank 0: blas: .*; rank 1: wasm/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
