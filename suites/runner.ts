/**
 * Runs one training configuration end to end: builds the model and the engine, streams
 * synthetic data through it a chunk at a time, evaluates on the test set, and returns the
 * result record.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import type { Engine } from "../engine/engine.ts";
import { describeEnvironment } from "../engine/environment.ts";
import { clickMetrics } from "../engine/metrics.ts";
import { PHASES, summarize } from "../engine/phases.ts";
import { kaggleSpec, type ModelSpec, parameterCounts, terabyteSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import {
  RESULT_SCHEMA_VERSION,
  type RunConfig,
  type RunResult,
  RunResultSchema,
} from "../reports/schema.ts";

/** Progress of a run, reported after every chunk and evaluation. */
export interface RunProgress {
  run: string;
  stage: "init" | "train" | "eval" | "done";
  epoch: number;
  iteration: number;
  totalIterations: number;
  /** Mean training loss of the last chunk. */
  trainLoss?: number;
  /** Median ms per iteration so far. */
  msPerIteration?: number;
  /** Latest test metrics. */
  accuracy?: number;
  auc?: number;
}

/** Options of {@linkcode runTraining}. */
export interface RunOptions {
  /** Suite name recorded in the result. */
  suite: string;
  /** Called with progress after each chunk. */
  onProgress?: (p: RunProgress) => void;
}

/** The model spec of a run's architecture and table scale. */
export function specOf(config: RunConfig): ModelSpec {
  return config.arch === "kaggle" ? kaggleSpec(config.tableScale) : terabyteSpec(config.tableScale);
}

async function createEngine(config: RunConfig, spec: ModelSpec): Promise<Engine> {
  if (config.engine === "gpu") {
    throw new Error(
      "The WebGPU engine is not available yet in this version; run with --engine cpu",
    );
  }
  return await createCpuEngine({
    spec,
    maxBatch: Math.max(config.batchSize, config.testBatchSize),
    seed: config.seed,
    threads: config.threads === 0 ? undefined : config.threads,
  });
}

/**
 * Trains and evaluates one configuration. A failure during training (diverged loss, lost
 * engine) is returned as a result with `status: "failed"` and the reason, keeping the curve
 * measured so far.
 */
export async function runTraining(config: RunConfig, options: RunOptions): Promise<RunResult> {
  const startedAt = new Date().toISOString();
  const spec = specOf(config);
  const report = options.onProgress ?? (() => {});
  const itersPerEpoch = Math.floor(config.trainSamples / config.batchSize);
  if (itersPerEpoch < 1) {
    throw new RangeError(
      `Expected at least one batch of ${config.batchSize} samples per epoch but found ${config.trainSamples} samples`,
    );
  }
  const totalIterations = itersPerEpoch * config.epochs;
  report({ run: config.name, stage: "init", epoch: 0, iteration: 0, totalIterations });

  const data = new SyntheticCriteo(spec, { seed: config.seed, clickRate: config.data.clickRate });
  const test = allocateOneHotChunk(spec, config.testBatchSize, config.testSamples, true);
  const teacher = new Float32Array(config.testSamples);
  data.fill(test, "test", 0, teacher);
  const ceiling = clickMetrics(test.labels, teacher);

  const engine = await createEngine(config, spec);
  const environment = describeEnvironment(engine.info);
  const chunk = allocateOneHotChunk(
    spec,
    config.batchSize,
    config.chunkIterations * config.batchSize,
    true,
  );
  const phaseSamples = Object.fromEntries(PHASES.map((p) => [p, [] as number[]]));
  const total: number[] = [];
  const curve: RunResult["curve"] = [];
  let peakRss = Deno.memoryUsage().rss;
  let iteration = 0;
  let lossSum = 0, lossCount = 0;
  let trainWallMs = 0;
  let error: string | undefined;

  const evaluate = async (epoch: number) => {
    report({ run: config.name, stage: "eval", epoch, iteration, totalIterations });
    const probabilities = await engine.predict(test);
    const m = clickMetrics(test.labels, probabilities);
    curve.push({ iteration, epoch, ...m, trainLoss: lossCount ? lossSum / lossCount : NaN });
    lossSum = 0, lossCount = 0;
    report({
      run: config.name,
      stage: "eval",
      epoch,
      iteration,
      totalIterations,
      accuracy: m.accuracy,
      auc: m.auc,
    });
  };

  try {
    for (let epoch = 0; epoch < config.epochs; epoch++) {
      // Every epoch sees the same training samples in the same order, as DLRM's loader does.
      for (let it = 0; it < itersPerEpoch;) {
        // Chunks end at evaluation points, so the curve is sampled where asked.
        const toEval = config.evalEvery > 0
          ? config.evalEvery - (iteration % config.evalEvery)
          : Infinity;
        const n = Math.min(config.chunkIterations, itersPerEpoch - it, toEval);
        const t0 = performance.now();
        const view = n === config.chunkIterations
          ? chunk
          : { ...chunk, samples: n * config.batchSize };
        data.fill(view, "train", it * config.batchSize);
        const r = await engine.trainChunk(view, { learningRate: config.learningRate });
        trainWallMs += performance.now() - t0;
        let chunkLoss = 0;
        for (let i = 0; i < r.iterations; i++) {
          chunkLoss += r.loss[i];
          if (iteration + i < config.warmupIterations) continue;
          let sum = 0;
          for (const p of PHASES) {
            phaseSamples[p].push(r.phases[p][i]);
            sum += r.phases[p][i];
          }
          total.push(sum);
        }
        lossSum += chunkLoss;
        lossCount += r.iterations;
        it += n;
        iteration += n;
        peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
        report({
          run: config.name,
          stage: "train",
          epoch: epoch + it / itersPerEpoch,
          iteration,
          totalIterations,
          trainLoss: chunkLoss / r.iterations,
          msPerIteration: total.length ? summarize(total).median : r.wallMs / r.iterations,
        });
        if (config.evalEvery > 0 && iteration % config.evalEvery === 0 && it < itersPerEpoch) {
          await evaluate(epoch + it / itersPerEpoch);
        }
      }
      await evaluate(epoch + 1);
    }
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  } finally {
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
    await engine.dispose();
  }

  const counts = parameterCounts(spec);
  const last = curve.at(-1);
  const result: RunResult = {
    schemaVersion: RESULT_SCHEMA_VERSION,
    suite: options.suite,
    config,
    spec,
    status: error ? "failed" : "ok",
    ...(error ? { error } : {}),
    startedAt,
    finishedAt: new Date().toISOString(),
    environment,
    iterations: iteration,
    timing: {
      phases: Object.fromEntries(PHASES.map((p) => [p, summarize(phaseSamples[p])])),
      total: summarize(total),
      wallMsPerIteration: iteration ? trainWallMs / iteration : 0,
      samplesPerSecond: trainWallMs ? (iteration * config.batchSize) / (trainWallMs / 1000) : 0,
    },
    memory: {
      peakRssBytes: peakRss,
      engineBytes: engine.memoryBytes(),
      parameterBytes: 4 * (counts.embedding + counts.mlp),
    },
    curve,
    ...(last
      ? {
        final: { accuracy: last.accuracy, auc: last.auc, logLoss: last.logLoss },
        best: {
          accuracy: Math.max(...curve.map((c) => c.accuracy)),
          auc: Math.max(...curve.map((c) => c.auc)),
        },
      }
      : {}),
    ceiling,
  };
  report({ run: config.name, stage: "done", epoch: config.epochs, iteration, totalIterations });
  return RunResultSchema.parse(result);
}
