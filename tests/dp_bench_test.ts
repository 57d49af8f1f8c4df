import assert from "node:assert/strict";
import { table4Bytes } from "../comm/accounting.ts";
import type { BatchChunk } from "../engine/batch.ts";
import { blasAvailable } from "../engine/cpu/blas_library.ts";
import { readModelFile } from "../engine/model_file.ts";
import type { Params } from "../engine/params.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { accountBatches } from "../suites/accounting_run.ts";
import { kaggleSuite, runTraining, withDataParallel, withOverrides } from "../suites/mod.ts";
import type { RunConfig } from "../record/schema.ts";
import { assertParamsClose } from "./test_models.ts";

const BLAS = blasAvailable();
const SKIP_BLAS = BLAS ? "" : " (skipped: libopenblas.so.0 (or DQRM_BLAS_LIB) cannot be opened)";

/** A tiny FP32 Kaggle run: 16 iterations of batch 32 on tables × 0.0005. */
function tiny(): RunConfig {
  const fp32 = kaggleSuite({ experiments: ["table3"] }).runs.find((r) => r.name === "fp32")!;
  return {
    ...fp32,
    tableScale: 0.0005,
    batchSize: 32,
    testBatchSize: 256,
    trainSamples: 16 * 32,
    testSamples: 512,
    evalEvery: 0,
    chunkIterations: 8,
    warmupIterations: 2,
    threads: 1,
  };
}

function flat(p: Params): Float32Array[] {
  return [...p.embeddings, ...[...p.bottom, ...p.top].flatMap((l) => [l.weight, l.bias])];
}

Deno.test("bench run on 2 real workers (no compression loss) trains the single-worker model", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const single = await runTraining(tiny(), { suite: "t", saveModelTo: `${dir}/one.model` });
    const config: RunConfig = {
      ...tiny(),
      dataParallel: { workers: 2, compression: "sparse", mode: "workers" },
    };
    const dp = await runTraining(config, { suite: "t", saveModelTo: `${dir}/dp.model` });
    assert.equal(dp.status, "ok", dp.error);
    assert.equal(dp.iterations, 16);
    assert.equal(dp.communication?.mode, "workers");
    assert.equal(dp.communication?.replicasIdentical, true);
    assert.equal(dp.communication?.replicaChecksums?.length, 2);
    assert.ok(dp.timing.phases.communication.median > 0);
    // Same model up to the order of float sums (each worker sums its half of the batch).
    const a = flat(readModelFile(await Deno.readFile(`${dir}/one.model`)).params);
    const b = flat(readModelFile(await Deno.readFile(`${dir}/dp.model`)).params);
    let worst = 0;
    a.forEach((x, i) => {
      for (let j = 0; j < x.length; j++) worst = Math.max(worst, Math.abs(x[j] - b[i][j]));
    });
    assert.ok(worst < 1e-5, `max |difference| ${worst}`);
    assert.ok(Math.abs(single.final!.logLoss - dp.final!.logLoss) < 1e-5);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: `bench run on 2 real workers with cpuKernels blas: recorded, within the golden tolerance ` +
    `of wasm${SKIP_BLAS}`,
  ignore: !BLAS,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const models: Record<string, Params> = {};
      for (const cpuKernels of ["wasm", "blas"] as const) {
        const config: RunConfig = {
          ...tiny(),
          cpuKernels,
          dataParallel: { workers: 2, compression: "sparse", mode: "workers" },
        };
        const file = `${dir}/${cpuKernels}.model`;
        const r = await runTraining(config, { suite: "t", saveModelTo: file });
        assert.equal(r.status, "ok", r.error);
        assert.equal(r.environment.engine.details.cpuKernels, cpuKernels);
        assert.equal(r.environment.engine.details.dataParallelWorkers, 2);
        assert.equal(r.communication?.replicasIdentical, true);
        models[cpuKernels] = readModelFile(await Deno.readFile(file)).params;
      }
      assertParamsClose("blas vs wasm", models.blas, models.wasm);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    `bench:dp --cpu-kernels blas: the one engine and the workers run BLAS and say so${SKIP_BLAS}`,
  ignore: !BLAS,
  fn: async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", new URL("../cli/bench_dp.ts", import.meta.url).pathname],
        ...["--workers", "2", "--batch-size", "64", "--iterations", "2", "--rounds", "1"],
        ...["--scale", "0.0005", "--compression", "sparse", "--cpu-kernels", "blas"],
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const line = JSON.parse(text.trim().split("\n").at(-1)!);
    assert.equal(line.preset, "sparse");
    assert.equal(line.cpuKernels, "blas");
    assert.match(line.kernels, /^blas: /);
  },
});

Deno.test("Table 4 accounting, Kaggle, 4 workers, global batch 128: equals table4Bytes", () => {
  const spec = kaggleSpec(1);
  // Row s % n of every table: each worker's 32 consecutive samples touch min(n, 32) rows, the
  // bound table4Bytes assumes.
  const distinct = {
    fill(chunk: BatchChunk, _stream: "train", first: number) {
      chunk.indices.forEach((idx, t) => {
        for (let s = 0; s < chunk.samples; s++) idx[s] = (first + s) % spec.tableRows[t];
      });
    },
  };
  const want = table4Bytes(spec, 4, 128);
  const options = { batchSize: 128, workers: 4, iterations: 3 };
  for (
    const [preset, key] of [["uncompressed", "uncompressed"], ["sparse", "sparse"], [
      "sparse-int8",
      "sparseInt8",
    ]] as const
  ) {
    const got = accountBatches(spec, distinct, { ...options, compression: preset });
    assert.deepEqual(got, want[key], preset);
  }
  // The suite's Table 4 runs: three settings at 2, 4 and 8 workers, accounting only.
  const runs = kaggleSuite({ experiments: ["table4"] }).runs;
  assert.deepEqual(
    runs.map((r) => `${r.dataParallel!.workers}:${r.dataParallel!.compression}`),
    ["2:uncompressed", "2:sparse", "2:sparse-int8", "4:uncompressed", "4:sparse"]
      .concat(["4:sparse-int8", "8:uncompressed", "8:sparse", "8:sparse-int8"]),
  );
  assert.ok(runs.every((r) => r.dataParallel!.mode === "accounting"));
});

Deno.test("data-parallel settings: errors name what was expected and what was found", () => {
  const suite = { name: "t", description: "t", runs: [{ ...tiny(), batchSize: 30 }] };
  assert.throws(
    () => withDataParallel(suite, { workers: 4 }),
    /dataParallel\.workers: Expected the batch size 30 to be a multiple of the 4 data-parallel workers/,
  );
  const gpu = { ...suite, runs: [{ ...tiny(), engine: "gpu" as const }] };
  // GPU ranks exchange sparse embedding gradients only (dense ones are the accounting baseline).
  assert.throws(
    () => withDataParallel(gpu, { workers: 2, compression: "uncompressed" }),
    /Expected sparse embedding gradients for data parallelism on the GPU but found uncompressed/,
  );
  // LSQ runs stay on one engine and are named; Table 6 runs keep their own workers.
  const t3 = kaggleSuite({ experiments: ["table3", "table6"] });
  const { suite: out, skipped } = withDataParallel(t3, { workers: 2, mode: "workers" });
  assert.deepEqual(skipped, ["lsq-int4", "lsq-emb4"]);
  assert.equal(out.runs.find((r) => r.name === "fp32")!.dataParallel?.workers, 2);
  assert.equal(out.runs.find((r) => r.name === "t6-dp8-sparse")!.dataParallel?.workers, 8);
  assert.equal(out.runs.find((r) => r.name === "t6-dp8-sparse")!.dataParallel?.mode, "workers");
  // On the GPU, PACT's learned clips have no exchange either (pact-emb4 learns none).
  const gpuT3 = withOverrides(kaggleSuite({ experiments: ["table3"] }), { engine: "gpu" });
  assert.deepEqual(withDataParallel(gpuT3, { workers: 2 }).skipped, [
    "lsq-int4",
    "lsq-emb4",
    "pact-int4",
  ]);
});
