/**
 * GPU data parallelism (`comm/gpu_replica.ts`): two GPU ranks (Workers, each with its own GPU
 * engine, exchanging through shared memory) train the same model, bit for bit, as two workers
 * simulated on one GPU engine; the simulated GPU workers agree with the simulated CPU workers
 * (`comm/simulated.ts`) within the golden tolerance; bytes per worker equal the CPU's.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Compression, COMPRESSION_PRESETS } from "../comm/compression.ts";
import { SimulatedGpuDataParallel } from "../comm/gpu_replica.ts";
import { GpuRanks } from "../comm/gpu_ranks.ts";
import { ReplicaDivergenceError } from "../comm/replicas.ts";
import { SimulatedDataParallel } from "../comm/simulated.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { hasOffscreenCanvas } from "../engine/gpu/canvas_readback.ts";
import type { GpuReadback } from "../engine/gpu/grad_exchange.ts";
import { workerThreads } from "../engine/gpu/worker_threads.ts";
import type { Params } from "../engine/params.ts";
import type { QuantConfig } from "../engine/quant.ts";
import { dqrm } from "../suites/experiments.ts";
import { kaggleSuite, withDataParallel } from "../suites/mod.ts";
import { engineKindOf } from "../suites/engines.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import { assertParamsClose, randomChunk, tinySpec } from "./test_models.ts";

const found = await findTestAdapter();
const ignore = found.adapter === null;

const spec = tinySpec();
const K = 2, B = 24, seed = 9, learningRate = 0.05;
const chunks = [0, 1].map((i) => randomChunk(spec, B, B * 3, 70 + i, true));

/** Every table and MLP tensor moved away from its initial values. */
function assertTrained(initial: Params, trained: Params) {
  trained.embeddings.forEach((t, i) => assert.notDeepEqual(t, initial.embeddings[i], `table ${i}`));
  for (const side of ["bottom", "top"] as const) {
    trained[side].forEach((l, i) => assert.notDeepEqual(l.weight, initial[side][i].weight));
  }
}

/** Two GPU ranks in Workers; their parameters (equal on every rank) and losses. */
async function trainRanks(
  compression: Compression,
  quantization: QuantConfig | null = null,
  readback?: GpuReadback,
) {
  const ranks = await GpuRanks.create({
    ranks: K,
    spec,
    batchSize: B,
    seed,
    compression,
    quantization,
    readback,
  });
  try {
    const losses: Float32Array[] = [];
    for (const c of chunks) losses.push((await ranks.trainChunk(c, learningRate))[0].loss);
    const params = await ranks.params();
    assert.deepEqual(params[1], params[0], "ranks agree");
    return { params: params[0], losses };
  } finally {
    await ranks.dispose();
  }
}

// `split`: the MLP message mapped on its own, the embedding message exchanged and applied first
// (what `auto` does with the full models' MLP messages).
for (
  const [preset, readback] of [
    ["sparse", undefined],
    ["sparse-int8-ec", undefined],
    ["sparse", "split"],
    ["sparse-int8-ec", "split"],
  ] as const
) {
  Deno.test({
    name: `two GPU ranks equal two workers simulated on one GPU engine: ${preset}` +
      (readback ? `, readback ${readback}` : ""),
    ignore: ignore || (readback !== undefined && !hasOffscreenCanvas()),
    fn: async () => {
      const compression = COMPRESSION_PRESETS[preset] as Compression;
      const engine = await createGpuEngine({ spec, maxBatch: B / K, seed });
      const initial = await engine.readParams();
      const simulated = new SimulatedGpuDataParallel(engine, K, compression);
      const losses: Float32Array[] = [];
      for (const c of chunks) losses.push((await simulated.trainChunk(c, { learningRate })).loss);
      const params = await engine.readParams();
      simulated.destroy();
      await engine.dispose();
      const ranks = await trainRanks(compression, null, readback);
      assert.deepEqual(ranks.params, params);
      assertTrained(initial, params);
      // A rank's losses are its own batches'; the simulated ones are the workers' mean.
      assert.equal(ranks.losses.length, losses.length);
    },
  });
}

Deno.test({
  name: "two workers simulated on one GPU engine find QAT scales every period global steps, " +
    "as two GPU ranks do",
  ignore,
  fn: async () => {
    // INT4 DQRM, scales found every 4 global steps over two chunks of 3: the ranks find them at
    // steps 0 and 4 (the second chunk's second); counting a worker's share as a step would find
    // them at 0, 2 and 4.
    const quantization = dqrm(4, 4, 4);
    const compression = COMPRESSION_PRESETS.sparse as Compression;
    const engine = await createGpuEngine({ spec, maxBatch: B / K, seed, quantization });
    const simulated = new SimulatedGpuDataParallel(engine, K, compression);
    for (const c of chunks) await simulated.trainChunk(c, { learningRate });
    const params = await engine.readParams();
    simulated.destroy();
    await engine.dispose();
    const ranks = await trainRanks(compression, quantization);
    assert.deepEqual(ranks.params, params);
  },
});

Deno.test({
  name: "two workers simulated on a GPU engine agree with two on a CPU engine (sparse FP32)",
  ignore,
  fn: async () => {
    const compression = COMPRESSION_PRESETS.sparse as Compression;
    const gpu = await createGpuEngine({ spec, maxBatch: B / K, seed });
    const cpu = await createCpuEngine({ spec, maxBatch: B / K, seed, threads: 1 });
    const initial = await gpu.readParams();
    const onGpu = new SimulatedGpuDataParallel(gpu, K, compression);
    const onCpu = new SimulatedDataParallel(cpu, K, compression);
    for (const c of chunks) {
      const a = await onGpu.trainChunk(c, { learningRate });
      const b = await onCpu.trainChunk(c, { learningRate });
      assert.deepEqual(a.bytesPerIteration, b.bytesPerIteration, "bytes per worker");
      assert.equal(a.iterations, b.iterations);
    }
    const trained = await gpu.readParams();
    assertTrained(initial, trained);
    assertParamsClose("after training", trained, await cpu.readParams());
    onGpu.destroy();
    await gpu.dispose();
    await cpu.dispose();
  },
});

Deno.test({
  name: "GPU ranks compare checksums after every chunk: a corrupted replica fails the next one",
  ignore,
  fn: async () => {
    const compression = COMPRESSION_PRESETS.sparse as Compression;
    const ranks = await GpuRanks.create({ ranks: K, spec, batchSize: B, seed, compression });
    try {
      // Equal replicas pass the check.
      await ranks.trainChunk(chunks[0], learningRate);
      // Rank 1 alone rounds its parameters to INT4: its replica no longer equals rank 0's.
      await ranks.quantizeInPlace({ embeddingBits: 4, mlpBits: 4, quantizeBias: false }, 1);
      await assert.rejects(
        () => ranks.trainChunk(chunks[1], learningRate),
        (e: Error) => {
          assert.ok(e instanceof ReplicaDivergenceError, String(e));
          assert.match(
            e.message,
            /^Data-parallel replicas diverged after chunk 1 \(ranks 1 differ from rank 0\): expected equal parameter checksums but found [0-9a-f]{16}, [0-9a-f]{16} \(by rank\)$/,
          );
          return true;
        },
      );
    } finally {
      await ranks.dispose();
    }
  },
});

Deno.test({
  name: "GPU ranks' dispose returns once their Worker threads have ended (exiting earlier " +
    "crashes NVIDIA's driver)",
  ignore: ignore || Deno.build.os !== "linux",
  fn: async () => {
    const compression = COMPRESSION_PRESETS.sparse as Compression;
    const ranks = await GpuRanks.create({ ranks: K, spec, batchSize: B, seed, compression });
    const threads = ranks.threads!;
    assert.equal(threads.size, K, `one thread per rank: ${[...threads.values()]}`);
    await ranks.trainChunk(chunks[0], learningRate);
    await ranks.dispose();
    const left = workerThreads()!;
    assert.deepEqual([...threads.keys()].filter((tid) => left.has(tid)), [], "threads left");
  },
});

Deno.test("GPU runs train data-parallel as simulated workers, sparse, without learned clips", () => {
  const t3 = kaggleSuite({ experiments: ["table3"] });
  const gpu = { ...t3, runs: t3.runs.map((r) => ({ ...r, engine: "gpu" as const })) };
  const { suite, skipped } = withDataParallel(gpu, { workers: 2, mode: "simulated" });
  assert.ok(
    skipped.includes("lsq-int4") && skipped.some((n) => n.startsWith("pact")),
    `${skipped}`,
  );
  const fp32 = suite.runs.find((r) => r.name === "fp32")!;
  assert.deepEqual(fp32.dataParallel, { workers: 2, compression: "sparse", mode: "simulated" });
  assert.throws(
    () => withDataParallel(gpu, { workers: 2, mode: "simulated", compression: "uncompressed" }),
    /Expected sparse embedding gradients for data parallelism on the GPU but found uncompressed/,
  );
  // GPU ranks (mode workers) take the same presets as simulated GPU workers.
  const ranks = withDataParallel(gpu, { workers: 2, mode: "workers" }).suite;
  assert.equal(engineKindOf(ranks.runs.find((r) => r.name === "fp32")!), "gpu-ranks");
  assert.throws(
    () => withDataParallel(gpu, { workers: 2, mode: "workers", compression: "uncompressed" }),
    /Expected sparse embedding gradients for data parallelism on the GPU but found uncompressed/,
  );
});
