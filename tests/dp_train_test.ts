import assert from "node:assert/strict";
import { messageBytes, uniqueRowsOf } from "../comm/accounting.ts";
import { sliceChunk } from "../comm/chunk.ts";
import { COMPRESSION_PRESETS } from "../comm/compression.ts";
import { DataParallelTrainer } from "../comm/data_parallel.ts";
import { SimulatedDataParallel } from "../comm/simulated.ts";
import type { BatchChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import type { Params } from "../engine/params.ts";
import { Rng } from "../engine/rng.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { dqrm } from "../suites/experiments.ts";
import { tinySpec } from "./test_models.ts";

/** Odd widths (padding everywhere) and small tables (rows shared between workers). */
const SPEC: ModelSpec = tinySpec();

/** Multi-hot bags (0 to 3 rows, repeats and empty bags included). */
function chunkOf(batch: number, samples: number, seed: number): BatchChunk {
  const rng = new Rng(seed, 7);
  const indices: Int32Array[] = [], offsets: Int32Array[] = [];
  for (const n of SPEC.tableRows) {
    const off = new Int32Array(samples + 1);
    const idx: number[] = [];
    for (let s = 0; s < samples; s++) {
      const bag = rng.int(4);
      for (let j = 0; j < bag; j++) idx.push(rng.int(n));
      off[s + 1] = idx.length;
    }
    indices.push(Int32Array.from(idx));
    offsets.push(off);
  }
  const dense = Float32Array.from({ length: samples * 13 }, () => rng.next() * 3);
  const labels = Float32Array.from({ length: samples }, () => (rng.next() < 0.3 ? 1 : 0));
  return { batchSize: batch, samples, dense, labels, indices, offsets };
}

function flat(p: Params): Float32Array[] {
  return [...p.embeddings, ...[...p.bottom, ...p.top].flatMap((l) => [l.weight, l.bias])];
}

function maxDiff(a: Params, b: Params): number {
  const fa = flat(a), fb = flat(b);
  let worst = 0;
  fa.forEach((x, i) => {
    for (let j = 0; j < x.length; j++) worst = Math.max(worst, Math.abs(x[j] - fb[i][j]));
  });
  return worst;
}

const LR = 0.1, GLOBAL = 24, ITERS = 6, SEED = 3;

async function singleWorker(chunk: BatchChunk): Promise<Params> {
  const engine = await createCpuEngine({ spec: SPEC, maxBatch: GLOBAL, seed: SEED, threads: 1 });
  try {
    await engine.trainChunk(chunk, { learningRate: LR });
    return await engine.readParams();
  } finally {
    await engine.dispose();
  }
}

for (const [workers, preset] of [[2, "sparse"], [3, "uncompressed"]] as const) {
  Deno.test(`${workers} workers, ${preset}: the single-worker model, identical replicas`, async () => {
    const chunk = chunkOf(GLOBAL, GLOBAL * ITERS, 11);
    const want = await singleWorker(chunk);
    const dp = await DataParallelTrainer.create({
      spec: SPEC,
      workers,
      maxBatch: GLOBAL,
      seed: SEED,
      compression: COMPRESSION_PRESETS[preset],
    });
    try {
      const r = await dp.trainChunk(chunk, { learningRate: LR });
      assert.equal(r.iterations, ITERS);
      await dp.checkReplicas();
      const got = await dp.readParams();
      const diff = maxDiff(got, want);
      assert.ok(diff < 1e-5, `max |difference| ${diff}`);
      assert.ok(maxDiff(got, await dp.readParams(workers - 1)) === 0);
      // Every rank sent exactly what the accounting counts for its local batches.
      for (let rank = 0; rank < workers; rank++) {
        const local = sliceChunk(chunk, rank, workers);
        let bytes = 0;
        for (let i = 0; i < ITERS; i++) {
          const u = uniqueRowsOf(local, i * local.batchSize, local.batchSize);
          bytes += messageBytes(SPEC, COMPRESSION_PRESETS[preset], u).total;
        }
        assert.equal(r.bytesSent[rank], bytes);
      }
    } finally {
      dp.dispose();
    }
  });
}

Deno.test("simulated data parallelism equals real workers bit for bit (INT8 + EC)", async () => {
  const chunk = chunkOf(GLOBAL, GLOBAL * ITERS, 12);
  const config = COMPRESSION_PRESETS["sparse-int8-ec"];
  const engine = await createCpuEngine({ spec: SPEC, maxBatch: GLOBAL, seed: SEED, threads: 1 });
  const dp = await DataParallelTrainer.create({
    spec: SPEC,
    workers: 2,
    maxBatch: GLOBAL,
    seed: SEED,
    compression: config,
  });
  try {
    const sim = new SimulatedDataParallel(engine, 2, config);
    const a = await sim.trainChunk(chunk, { learningRate: LR });
    const b = await dp.trainChunk(chunk, { learningRate: LR });
    assert.deepEqual(Array.from(a.loss), Array.from(b.loss));
    assert.equal(maxDiff(await engine.readParams(), await dp.readParams()), 0);
    assert.equal(a.bytesPerIteration.total, b.bytesPerIteration.total);
    await dp.checkReplicas();
    // INT8 with error compensation stays close to FP32 training.
    const fp32 = await singleWorker(chunk);
    const diff = maxDiff(await dp.readParams(), fp32);
    assert.ok(diff > 0 && diff < 0.02, `max |difference| ${diff}`);
  } finally {
    dp.dispose();
    await engine.dispose();
  }
});

Deno.test(
  "simulated data parallelism refreshes QAT scales every period global steps, as real workers do",
  async () => {
    // Scales found every 4 global steps, trained over 3 + 4 steps: real workers find them at
    // steps 0 and 4 (the second chunk's second); counting a worker's share as a step would find
    // them at 0, 2, 4 and 6.
    const quantization = dqrm(4, 4, 4);
    const config = COMPRESSION_PRESETS["sparse-int8-ec"];
    const chunks = [3, 4].map((steps, i) => chunkOf(GLOBAL, GLOBAL * steps, 14 + i));
    const engine = await createCpuEngine({
      spec: SPEC,
      maxBatch: GLOBAL,
      seed: SEED,
      threads: 1,
      quantization,
    });
    const dp = await DataParallelTrainer.create({
      spec: SPEC,
      workers: 2,
      maxBatch: GLOBAL,
      seed: SEED,
      compression: config,
      quantization,
    });
    try {
      const sim = new SimulatedDataParallel(engine, 2, config);
      for (const chunk of chunks) {
        const a = await sim.trainChunk(chunk, { learningRate: LR });
        const b = await dp.trainChunk(chunk, { learningRate: LR });
        assert.deepEqual(Array.from(a.loss), Array.from(b.loss));
        assert.deepEqual(await engine.embeddingScales(), b.embeddingScales);
      }
      assert.equal(maxDiff(await engine.readParams(), await dp.readParams()), 0);
      await dp.checkReplicas();
    } finally {
      dp.dispose();
      await engine.dispose();
    }
  },
);

Deno.test("simulated data parallelism without compression equals one worker", async () => {
  const chunk = chunkOf(GLOBAL, GLOBAL * ITERS, 13);
  const engine = await createCpuEngine({ spec: SPEC, maxBatch: GLOBAL, seed: SEED, threads: 1 });
  try {
    const sim = new SimulatedDataParallel(engine, 4, COMPRESSION_PRESETS.sparse);
    const r = await sim.trainChunk(chunk, { learningRate: LR });
    assert.equal(r.iterations, ITERS);
    const diff = maxDiff(await engine.readParams(), await singleWorker(chunk));
    assert.ok(diff < 1e-5, `max |difference| ${diff}`);
  } finally {
    await engine.dispose();
  }
});
