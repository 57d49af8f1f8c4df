/**
 * Runs one training configuration end to end: builds the model and the engine, streams
 * synthetic data through it a chunk at a time, evaluates on the test set, and returns the
 * result record. The chunk loop is in `training_loop.ts`, the engines in `engines.ts`, the
 * result record in `result.ts`.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { COMPRESSION_PRESETS, compressionName } from "../comm/compression.ts";
import { ReplicaDivergenceError } from "../comm/replicas.ts";
import { runAccounting } from "./accounting_run.ts";
import type { Engine } from "../engine/engine.ts";
import { type ClickMetrics, clickMetrics } from "../engine/metrics.ts";
import { writeModelFile } from "../engine/model_file.ts";
import { archSpec, type ModelSpec, parameterCounts } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { openCriteoRunData } from "../data/criteo/prepare.ts";
import { FillPool, type FillSourceSpec } from "../data/fill_pool.ts";
import type { RunConfig, RunResult } from "../record/schema.ts";
import {
  chunkTrainerOf,
  createRunEngine,
  type EnginePlacement,
  plannedEngineInfo,
} from "./engines.ts";
import { WeightHistograms } from "./histograms.ts";
import { buildRunResult, modelQuantization } from "./result.ts";
import { type RunProgress, trainChunks, type TrainData, TrainingTally } from "./training_loop.ts";

export type { RunProgress } from "./training_loop.ts";
export { modelQuantization } from "./result.ts";

/** Options of {@linkcode runTraining}. */
export interface RunOptions extends EnginePlacement {
  /** Suite name recorded in the result. */
  suite: string;
  /** Called with progress after each chunk. */
  onProgress?: (p: RunProgress) => void;
  /** Write the trained model's file here (quantized at the run's bits). */
  saveModelTo?: string;
  /**
   * Workers that fill the training chunks (`data/fill_pool.ts`), overlapping the engine's work
   * on the chunk before; the data is the same bit for bit. Default 0: the main thread fills.
   */
  dataWorkers?: number;
}

/** Bytes a run's engine needs for its tables (twice for HAWQ's whole-table copies). */
export function estimateMemoryBytes(config: RunConfig, spec: ModelSpec): number {
  const tables = parameterCounts(spec).embedding * 4;
  const copies = config.quantization?.embeddingBits && !config.quantization.gatheredRowsOnly
    ? 2
    : 1;
  // Real data-parallel workers hold a replica each.
  const replicas = config.dataParallel?.mode === "workers" ? config.dataParallel.workers : 1;
  return tables * copies * replicas;
}

function memoryBudget(config: RunConfig): number {
  if (config.budget.memoryBytes > 0) return config.budget.memoryBytes;
  try {
    return Deno.systemMemoryInfo().total - 2 * 2 ** 30;
  } catch {
    return Infinity;
  }
}

/**
 * Trains and evaluates one configuration. A failure during training (diverged loss, lost
 * engine) is returned as a result with `status: "failed"` and the reason, keeping the curve
 * measured so far.
 */
export async function runTraining(config: RunConfig, options: RunOptions): Promise<RunResult> {
  // Earlier runs' engines are garbage now: collect them (when the process exposes gc, as
  // `deno task bench` does), so that this run's peak memory is its own.
  collectGarbage();
  const startedAt = new Date().toISOString();
  // Real data: the tables have the data's sizes.
  const criteo = config.data.kind === "criteo"
    ? await openCriteoRunData(config.data, config.seed)
    : undefined;
  const paperSpec = archSpec(config.arch, config.tableScale);
  const spec = criteo ? { ...paperSpec, tableRows: [...criteo.tableRows] } : paperSpec;
  const report = options.onProgress ?? (() => {});
  const itersPerEpoch = Math.floor(config.trainSamples / config.batchSize);
  if (itersPerEpoch < 1) {
    throw new RangeError(
      `Expected at least one batch of ${config.batchSize} samples per epoch but found ${config.trainSamples} samples`,
    );
  }
  const totalIterations = itersPerEpoch * config.epochs;
  report({ run: config.name, stage: "init", epoch: 0, iteration: 0, totalIterations });

  const test = allocateOneHotChunk(spec, config.testBatchSize, config.testSamples, true);
  let data: TrainData;
  let ceiling: ClickMetrics | undefined;
  let fillSource: FillSourceSpec;
  if (config.data.kind === "synthetic") {
    const syntheticOptions = { seed: config.seed, clickRate: config.data.clickRate };
    const synthetic = new SyntheticCriteo(spec, syntheticOptions);
    fillSource = { kind: "synthetic", shape: spec, options: syntheticOptions };
    const teacher = new Float32Array(config.testSamples);
    synthetic.fill(test, "test", 0, teacher);
    ceiling = clickMetrics(test.labels, teacher);
    data = synthetic;
  } else {
    criteo!.fill(test, "test", 0);
    data = criteo!;
    fillSource = { kind: "criteo", dir: criteo!.train.dir, options: criteo!.train.options };
  }

  if (config.dataParallel?.mode === "accounting") {
    const result = runAccounting({ config, spec, data, startedAt, suite: options.suite, ceiling });
    report({ run: config.name, stage: "done", epoch: 0, iteration: 0, totalIterations });
    return result;
  }
  const needed = estimateMemoryBytes(config, spec);
  /** The result of a run that never trained: over its memory budget, or no engine for it. */
  const notRun = (status: RunResult["status"], error: string): RunResult => {
    report({ run: config.name, stage: "done", epoch: 0, iteration: 0, totalIterations });
    return buildRunResult({
      suite: options.suite,
      config,
      spec,
      status,
      error,
      startedAt,
      engine: plannedEngineInfo(config),
      iterations: 0,
      engineBytes: needed,
      ceiling,
    });
  };
  if (needed > memoryBudget(config)) {
    const gb = (b: number) => (b / 1e9).toFixed(2);
    return notRun(
      "could-not-finish",
      `needs ${gb(needed)} GB for its tables, over the memory budget of ${
        gb(memoryBudget(config))
      } GB`,
    );
  }

  // The data workers build their sources while the engine is made.
  const dataWorkers = options.dataWorkers ?? 0;
  const starting = dataWorkers > 0 ? FillPool.start(fillSource, dataWorkers) : undefined;
  starting?.catch(() => {}); // awaited below, or closed when the engine fails first
  let engine: Engine;
  let pool: FillPool | undefined;
  try {
    engine = await createRunEngine(config, spec, options);
  } catch (e) {
    starting?.then((p) => p.close(), () => {});
    // An engine that cannot run this method (or no GPU) fails this run; the suite goes on.
    return notRun("failed", e instanceof Error ? e.message : String(e));
  }
  const engineInfo = engine.info;
  const dp = config.dataParallel;
  const trainer = chunkTrainerOf(config, engine);
  let replicaChecksums: string[] | undefined;
  const tally = new TrainingTally();
  const histograms = new WeightHistograms(spec);
  const recordHistograms = (epoch: number, quantizedBits: number | null) =>
    histograms.record(engine, tally.iteration, epoch, quantizedBits);
  const minmaxBits = config.quantization?.quantizer === "minmax"
    ? config.quantization.embeddingBits
    : null;
  const curve: RunResult["curve"] = [];
  let error: string | undefined;
  let status: RunResult["status"] = "ok";
  let engineBytes = 0;
  let partial: RunResult["partial"];

  const evaluate = async (epoch: number) => {
    const iteration = tally.iteration;
    report({ run: config.name, stage: "eval", epoch, iteration, totalIterations });
    const probabilities = await engine.predict(test);
    const m = clickMetrics(test.labels, probabilities);
    curve.push({ iteration, epoch, ...m, trainLoss: tally.takeMeanLoss() });
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
    await recordHistograms(0, null);
    pool = await starting;
    const stoppedBecause = await trainChunks({
      config,
      spec,
      engine,
      trainer,
      data: pool ?? data,
      itersPerEpoch,
      totalIterations,
      report,
      evaluate,
      endEpoch: (epoch) =>
        recordHistograms(epoch + 1, epoch >= config.qatFromEpoch ? minmaxBits : null),
    }, tally);
    if (stoppedBecause !== undefined) {
      // Over its time budget: the model trained so far is evaluated and recorded as partial.
      status = "could-not-finish";
      error =
        `${stoppedBecause}; stopped after ${tally.iteration} of ${totalIterations} iterations`;
      partial = { iterations: tally.iteration, of: totalIterations };
      if (curve.at(-1)?.iteration !== tally.iteration) {
        await evaluate(tally.iteration / itersPerEpoch);
      }
    }
    if ((status === "ok" || partial) && config.postTraining) {
      engine.quantizeInPlace(config.postTraining);
      await evaluate(partial ? tally.iteration / itersPerEpoch : config.epochs);
      const bits = config.postTraining.embeddingBits;
      if (bits !== null) {
        await histograms.recordQuantizedInPlace(engine, tally.iteration, config.epochs, bits);
      }
    }
    if (status === "ok" && options.saveModelTo && config.quantization?.quantizer === "dorefa") {
      throw new Error(
        "Model files of DoReFa (pact) runs are not supported yet: their levels are not symmetric",
      );
    }
    if (status === "ok" && options.saveModelTo) {
      const file = writeModelFile(
        spec,
        await engine.readParams(),
        modelQuantization(config),
        await engine.embeddingScales(),
      );
      await Deno.writeFile(options.saveModelTo, file);
    }
    // Engines holding several replicas: they must end bit-identical, or the run failed.
    replicaChecksums = await engine.replicaChecksums?.();
    if (replicaChecksums?.some((c) => c !== replicaChecksums![0])) {
      throw new ReplicaDivergenceError(replicaChecksums);
    }
  } catch (e) {
    status = "failed";
    error = e instanceof Error ? e.message : String(e);
  } finally {
    tally.sampleRss();
    engineBytes = engine.memoryBytes(); // before dispose frees it
    await engine.dispose();
    pool?.close();
    starting?.then((p) => p.close(), () => {});
  }

  const iteration = tally.iteration;
  const result = buildRunResult({
    suite: options.suite,
    config,
    spec,
    status,
    // A failure without a message records none.
    error: error || undefined,
    ...(partial && status === "could-not-finish" ? { partial } : {}),
    startedAt,
    engine: engineInfo,
    iterations: iteration,
    tally,
    engineBytes,
    curve,
    ...(dp && iteration > 0
      ? {
        communication: {
          workers: dp.workers,
          bytesPerIteration: tally.bytesPerIteration(),
          compression: compressionName(COMPRESSION_PRESETS[dp.compression]),
          mode: dp.mode,
          ...(replicaChecksums
            ? {
              replicaChecksums,
              replicasIdentical: replicaChecksums.every((c) => c === replicaChecksums![0]),
            }
            : {}),
        },
      }
      : {}),
    weightHistograms: histograms.records,
    ceiling,
  });
  report({ run: config.name, stage: "done", epoch: config.epochs, iteration, totalIterations });
  return result;
}

function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
