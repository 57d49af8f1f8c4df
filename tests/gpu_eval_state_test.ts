/**
 * An evaluation never changes training: INT4 DQRM (minmax, scales found every 3 steps) trained
 * with a prediction before the first chunk and after every chunk ends with the parameters, bit
 * for bit, of the same training without them, on the CPU engine (alone and with two simulated
 * workers), on one GPU engine, on two workers simulated on one GPU engine and on two GPU ranks
 * (Workers; rank 0 alone predicts, as `GpuRanks.predict` does); data-parallel workers exchange
 * sparse embedding gradients and INT8 MLP gradients with error compensation.
 *
 * The test chunk holds more samples and indices than a training chunk, so the first prediction
 * of all of it (after the first chunk; the one before training takes a few samples) grows the
 * engine's input buffers mid-training: a GPU exchange rebuilt for them once restarted its
 * error-compensation residuals at zero, and an evaluation changed the model.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Compression, COMPRESSION_PRESETS } from "../comm/compression.ts";
import { SimulatedGpuDataParallel } from "../comm/gpu_replica.ts";
import { GpuRanks } from "../comm/gpu_ranks.ts";
import { SimulatedDataParallel } from "../comm/simulated.ts";
import type { BatchChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import type { Engine } from "../engine/engine.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import type { Params } from "../engine/params.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { dqrm } from "../suites/experiments.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import { randomChunk } from "./test_models.ts";

const found = await findTestAdapter();
const ignore = found.adapter === null;

const spec = kaggleSpec(0.0005);
const quantization = dqrm(4, 4, 3);
// Sparse + INT8 with error compensation: the residuals are the exchange's state across chunks
// (sparse FP32 has none, and the same row and MLP paths otherwise).
const compression = COMPRESSION_PRESETS["sparse-int8-ec"] as Compression;
// Small batches: the Kaggle MLP takes lavapipe about half a second per step.
const B = 16, K = 2, seed = 5, learningRate = 0.1, testBatch = 40;
/** Three chunks of two global batches: scales found at steps 0 (a chunk's first) and 3. */
const chunks = [0, 1, 2].map((i) => randomChunk(spec, B, 2 * B, 40 + i));
/** Two test batches, each larger than a training batch. */
const test = randomChunk(spec, testBatch, 2 * testBatch, 99);

/**
 * Trains `chunks` through `train`; when `evaluate`, predicts the first samples of `test` before
 * and all of it after each chunk.
 */
async function trainAll(
  train: (chunk: BatchChunk) => Promise<unknown>,
  predict: (chunk: BatchChunk) => Promise<Float32Array>,
  evaluate: boolean,
): Promise<Float32Array[]> {
  const predictions: Float32Array[] = [];
  if (evaluate) predictions.push(await predict({ ...test, samples: B }));
  for (const c of chunks) {
    await train(c);
    if (evaluate) predictions.push(await predict(test));
  }
  return predictions;
}

/** One engine's training with and without evaluations; its parameters and last predictions. */
async function withAndWithout(
  create: () => Promise<Engine>,
  trainer: (engine: Engine) => {
    train: (chunk: BatchChunk) => Promise<unknown>;
    destroy?: () => void;
  },
): Promise<{ plain: Params; evaluated: Params; initial: Params; last: Float32Array }> {
  const runs = [];
  for (const evaluate of [false, true]) {
    const engine = await create();
    try {
      const initial = await engine.readParams();
      const t = trainer(engine);
      const predictions = await trainAll(t.train, (c) => engine.predict(c), evaluate);
      t.destroy?.();
      runs.push({ params: await engine.readParams(), initial, predictions });
    } finally {
      await engine.dispose();
    }
  }
  const [plain, evaluated] = runs;
  return {
    plain: plain.params,
    evaluated: evaluated.params,
    initial: plain.initial,
    last: evaluated.predictions.at(-1)!,
  };
}

/** Every tensor of `params` by name. */
function tensors(params: Params): [string, Float32Array][] {
  return [
    ...params.embeddings.map((t, i) => [`table ${i}`, t] as [string, Float32Array]),
    ...(["bottom", "top"] as const).flatMap((side) =>
      params[side].flatMap((l, i) => [
        [`${side}[${i}].weight`, l.weight] as [string, Float32Array],
        [`${side}[${i}].bias`, l.bias] as [string, Float32Array],
      ])
    ),
  ];
}

/**
 * Asserts `got` equals `want` bit for bit, naming the first value that differs (assert's
 * deepEqual would diff some 700,000 floats in its message).
 */
function assertParamsIdentical(got: Params, want: Params, what: string): void {
  const a = tensors(got), b = tensors(want);
  assert.equal(a.length, b.length, `${what}: tensors`);
  for (const [k, [name, x]] of a.entries()) {
    const y = b[k][1];
    assert.equal(x.length, y.length, `${what}: ${name} length`);
    const bx = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const by = new Uint32Array(y.buffer, y.byteOffset, y.length);
    const i = bx.findIndex((v, j) => v !== by[j]);
    assert.ok(i < 0, `${what}: ${name} value ${i} is ${x[i]}, expected ${y[i]}`);
  }
}

/** The trained parameters equal, bit for bit, and moved away from the initial ones. */
function assertUnchangedByEvaluation(r: { plain: Params; evaluated: Params; initial: Params }) {
  const initial = tensors(r.initial);
  for (const [k, [name, t]] of tensors(r.plain).entries()) {
    assert.ok(t.some((v, i) => v !== initial[k][1][i]), `training changes ${name}`);
  }
  assertParamsIdentical(r.evaluated, r.plain, "trained with evaluations");
}

const cpu = () => createCpuEngine({ spec, maxBatch: testBatch, seed, quantization, threads: 1 });
const gpu = () => createGpuEngine({ spec, maxBatch: testBatch, seed, quantization });
const single = (engine: Engine) => ({
  train: (c: BatchChunk) => engine.trainChunk(c, { learningRate }),
});

Deno.test("an evaluation does not change INT4 DQRM training on the CPU engine", async () => {
  const r = await withAndWithout(cpu, single);
  assertUnchangedByEvaluation(r);
  assert.equal(r.last.length, test.samples);
});

Deno.test(
  "an evaluation does not change INT4 DQRM training of two workers simulated on the CPU engine",
  async () => {
    assertUnchangedByEvaluation(
      await withAndWithout(cpu, (engine) => {
        const dp = new SimulatedDataParallel(engine, K, compression);
        return { train: (c) => dp.trainChunk(c, { learningRate }) };
      }),
    );
  },
);

Deno.test({
  name: "an evaluation does not change INT4 DQRM training on one GPU engine",
  ignore,
  fn: async () => {
    const r = await withAndWithout(gpu, single);
    assertUnchangedByEvaluation(r);
    assert.equal(r.last.length, test.samples);
  },
});

Deno.test({
  name: "an evaluation does not change INT4 DQRM training of two workers simulated on one GPU " +
    "engine (sparse, INT8, error compensation)",
  ignore,
  fn: async () => {
    assertUnchangedByEvaluation(
      await withAndWithout(gpu, (engine) => {
        const dp = new SimulatedGpuDataParallel(engine, K, compression);
        return { train: (c) => dp.trainChunk(c, { learningRate }), destroy: () => dp.destroy() };
      }),
    );
  },
});

Deno.test({
  name: "an evaluation does not change INT4 DQRM training on two GPU ranks (sparse, INT8, " +
    "error compensation)",
  ignore,
  fn: async () => {
    const runs: Params[] = [];
    for (const evaluate of [false, true]) {
      const ranks = await GpuRanks.create({
        ranks: K,
        spec,
        batchSize: B,
        seed,
        quantization,
        compression,
        predictBatch: testBatch,
      });
      try {
        // Every chunk ends with the ranks' checksums compared: rank 0's predictions must not
        // set it apart from rank 1.
        await trainAll((c) => ranks.trainChunk(c, learningRate), (c) => ranks.predict(c), evaluate);
        const params = await ranks.params();
        assertParamsIdentical(params[1], params[0], "rank 1");
        runs.push(params[0]);
      } finally {
        await ranks.dispose();
      }
    }
    assertParamsIdentical(runs[1], runs[0], "trained with evaluations");
  },
});
