/**
 * Runs one training configuration end to end: builds the model and the engine, streams
 * synthetic data through it a chunk at a time, evaluates on the test set, and returns the
 * result record.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { cpuModel, createCpuEngine } from "../engine/cpu/mod.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { COMPRESSION_PRESETS, compressionName } from "../comm/compression.ts";
import { type SimulatedChunkResult, SimulatedDataParallel } from "../comm/simulated.ts";
import { DataParallelEngine } from "../comm/dp_engine.ts";
import { ReplicaDivergenceError } from "../comm/replicas.ts";
import { runAccounting } from "./accounting_run.ts";
import type { Engine, TrainChunkResult } from "../engine/engine.ts";
import { describeEnvironment } from "../engine/environment.ts";
import { clickMetrics } from "../engine/metrics.ts";
import { type ModelFileQuantization, modelFileSize, writeModelFile } from "../engine/model_file.ts";
import { PHASES } from "../engine/phases.ts";
import { summarize } from "../record/stats.ts";
import { fakeQuantize, levels } from "../engine/quant.ts";
import { histogramOf, type WeightHistogram } from "../record/schema_extra.ts";
import { kaggleSpec, type ModelSpec, parameterCounts, terabyteSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { openCriteoRunData } from "../data/criteo/prepare.ts";
import type { BatchChunk } from "../engine/batch.ts";
import type { ClickMetrics } from "../engine/metrics.ts";
import {
  RESULT_SCHEMA_VERSION,
  type RunConfig,
  type RunResult,
  RunResultSchema,
} from "../record/schema.ts";

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
  /** Write the trained model's file here (quantized at the run's bits). */
  saveModelTo?: string;
}

/** How the finished model of a run is stored: its bits. */
export function modelQuantization(config: RunConfig): ModelFileQuantization {
  const q = config.quantization ?? config.postTraining;
  return {
    embeddingBits: q?.embeddingBits ?? null,
    mlpBits: q?.mlpBits ?? null,
    mlpGranularity: config.quantization?.mlpGranularity ?? "channel",
    quantizeBias: q?.quantizeBias ?? false,
  };
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

/** The model spec of a run's architecture and table scale. */
export function specOf(config: RunConfig): ModelSpec {
  return config.arch === "kaggle" ? kaggleSpec(config.tableScale) : terabyteSpec(config.tableScale);
}

async function createEngine(config: RunConfig, spec: ModelSpec): Promise<Engine> {
  const dp = config.dataParallel;
  if (dp?.mode === "workers") {
    return await DataParallelEngine.create({
      spec,
      workers: dp.workers,
      maxBatch: config.batchSize,
      predictBatch: config.testBatchSize,
      seed: config.seed,
      quantization: config.quantization,
      compression: COMPRESSION_PRESETS[dp.compression],
    });
  }
  if (config.engine === "gpu") {
    return await createGpuEngine({
      spec,
      maxBatch: Math.max(config.batchSize, config.testBatchSize),
      seed: config.seed,
      quantization: config.quantization,
    });
  }
  return await createCpuEngine({
    spec,
    maxBatch: Math.max(config.batchSize, config.testBatchSize),
    seed: config.seed,
    // Simulated data parallelism exchanges gradients between steps on one thread.
    threads: config.dataParallel ? 1 : config.threads === 0 ? undefined : config.threads,
    quantization: config.quantization,
  });
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
  const spec = criteo ? { ...specOf(config), tableRows: [...criteo.tableRows] } : specOf(config);
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
  let data: { fill(chunk: BatchChunk, stream: "train", firstSample: number): void };
  let ceiling: ClickMetrics | undefined;
  if (config.data.kind === "synthetic") {
    const synthetic = new SyntheticCriteo(spec, {
      seed: config.seed,
      clickRate: config.data.clickRate,
    });
    const teacher = new Float32Array(config.testSamples);
    synthetic.fill(test, "test", 0, teacher);
    ceiling = clickMetrics(test.labels, teacher);
    data = synthetic;
  } else {
    criteo!.fill(test, "test", 0);
    data = criteo!;
  }

  if (config.dataParallel?.mode === "accounting") {
    const q = modelQuantization(config);
    const result = runAccounting(config, spec, data, startedAt, options.suite, q);
    report({ run: config.name, stage: "done", epoch: 0, iteration: 0, totalIterations });
    return { ...result, ...(ceiling ? { ceiling } : {}) };
  }
  const counts = parameterCounts(spec);
  const needed = estimateMemoryBytes(config, spec);
  /** The result of a run that never trained: over its memory budget, or no engine for it. */
  const notRun = (status: RunResult["status"], error: string): RunResult => {
    report({ run: config.name, stage: "done", epoch: 0, iteration: 0, totalIterations });
    return RunResultSchema.parse({
      schemaVersion: RESULT_SCHEMA_VERSION,
      suite: options.suite,
      config,
      spec,
      status,
      error,
      startedAt,
      finishedAt: new Date().toISOString(),
      environment: describeEnvironment({
        name: config.engine,
        device: config.engine === "cpu" ? cpuModel() : "WebGPU",
        threads: config.threads || navigator.hardwareConcurrency,
        details: {},
      }),
      iterations: 0,
      timing: {
        phases: Object.fromEntries(PHASES.map((p) => [p, summarize([])])),
        total: summarize([]),
        wallMsPerIteration: 0,
        samplesPerSecond: 0,
      },
      memory: {
        peakRssBytes: Deno.memoryUsage().rss,
        engineBytes: needed,
        parameterBytes: 4 * (counts.embedding + counts.mlp),
        modelFileBytes: modelFileSize(spec, modelQuantization(config)),
      },
      curve: [],
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

  let engine: Engine;
  try {
    engine = await createEngine(config, spec);
  } catch (e) {
    // An engine that cannot run this method (or no GPU) fails this run; the suite goes on.
    return notRun("failed", e instanceof Error ? e.message : String(e));
  }
  const environment = describeEnvironment(engine.info);
  const dp = config.dataParallel;
  const compression = dp ? COMPRESSION_PRESETS[dp.compression] : null;
  const trainer = dp?.mode === "simulated"
    ? new SimulatedDataParallel(engine, dp.workers, compression!)
    : engine;
  let replicaChecksums: string[] | undefined;
  const bytes = { embedding: 0, mlp: 0, scales: 0, total: 0 };
  const chunk = allocateOneHotChunk(
    spec,
    config.batchSize,
    config.chunkIterations * config.batchSize,
    true,
  );
  const phaseSamples = Object.fromEntries(PHASES.map((p) => [p, [] as number[]]));
  // Every iteration's phases, warm-up included (the report marks it), to 0.1 us.
  const rawPhases = Object.fromEntries(PHASES.map((p) => [p, [] as number[]]));
  const histograms: WeightHistogram[] = [];
  // The paper's Fig. 6 shows one table's weights: table 6 here (12,517 rows in Kaggle).
  const histogramTable = Math.min(6, spec.tableRows.length - 1);
  const recordHistograms = async (epoch: number, quantizedBits: number | null) => {
    const values = await engine.readTable(histogramTable);
    const tensor = `table ${histogramTable}`;
    histograms.push(histogramOf(values, 64, { tensor, iteration, epoch, kind: "weights" }));
    if (quantizedBits === null) return;
    const s = (await engine.embeddingScales())[histogramTable];
    if (!(s > 0)) return;
    const n = levels(quantizedBits);
    const q = values.map((v) => fakeQuantize(v, s, n));
    histograms.push(
      histogramOf(q, 64, { tensor, iteration, epoch, kind: "quantized", bits: quantizedBits }),
    );
  };
  const minmaxBits = config.quantization?.quantizer === "minmax"
    ? config.quantization.embeddingBits
    : null;
  const total: number[] = [];
  const curve: RunResult["curve"] = [];
  let peakRss = Deno.memoryUsage().rss;
  let iteration = 0;
  let lossSum = 0, lossCount = 0;
  let trainWallMs = 0;
  let error: string | undefined;
  let status: RunResult["status"] = "ok";
  let engineBytes = 0;

  const evaluate = async (epoch: number) => {
    report({ run: config.name, stage: "eval", epoch, iteration, totalIterations });
    const probabilities = await engine.predict(test);
    const m = clickMetrics(test.labels, probabilities);
    curve.push({ iteration, epoch, ...m, trainLoss: lossCount ? lossSum / lossCount : null });
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
    await recordHistograms(0, null);
    // Chunk lengths: chunks end at evaluation points, so the curve is sampled where asked, and
    // the first chunk is short (the warm-up and a few timed iterations), so that a run over its
    // time budget is found out quickly.
    const chunkLength = (globalIteration: number, epochIteration: number) => {
      const toEval = config.evalEvery > 0
        ? config.evalEvery - (globalIteration % config.evalEvery)
        : Infinity;
      const limit = globalIteration === 0
        ? Math.min(config.warmupIterations + 10, config.chunkIterations)
        : config.chunkIterations;
      return Math.min(limit, itersPerEpoch - epochIteration, toEval);
    };
    // Two chunk buffers: the engine trains on one while the next is filled into the other.
    const buffers = [
      chunk,
      allocateOneHotChunk(spec, config.batchSize, config.chunkIterations * config.batchSize, true),
    ];
    const viewOf = (buffer: typeof chunk, n: number) =>
      n === config.chunkIterations ? buffer : { ...buffer, samples: n * config.batchSize };
    let current = 0;
    let prefilled: { it: number; n: number } | null = null;
    // The GPU engine copies a chunk's input when it records it, so the next chunk can be recorded
    // and submitted while this one trains: the GPU never idles while the host encodes. Only within
    // an epoch and not across an evaluation (a prediction must see exactly the chunks before it).
    const lookahead = config.engine === "gpu" && !dp;
    let ahead: { it: number; n: number; pending: Promise<TrainChunkResult> } | null = null;
    training: for (let epoch = 0; epoch < config.epochs; epoch++) {
      engine.setQuantizationActive(epoch >= config.qatFromEpoch);
      // Every epoch sees the same training samples in the same order, as DLRM's loader does.
      for (let it = 0; it < itersPerEpoch;) {
        const n: number = chunkLength(iteration, it);
        const t0 = performance.now();
        const view = viewOf(buffers[current], n);
        let pending: Promise<TrainChunkResult>;
        if (ahead) {
          if (ahead.it !== it || ahead.n !== n) {
            throw new Error("Expected the chunk submitted ahead");
          }
          pending = ahead.pending;
          ahead = null;
        } else {
          if (prefilled?.it !== it || prefilled.n !== n) {
            data.fill(view, "train", it * config.batchSize);
          }
          pending = trainer.trainChunk(view, { learningRate: config.learningRate });
        }
        // Fill the next chunk into the other buffer while the engine works (a GPU engine is busy
        // until its promise settles; the CPU engine has finished by the time it returns one).
        const nextIt: number = it + n < itersPerEpoch ? it + n : 0; // every epoch restarts at sample 0
        const nextN: number = iteration + n < totalIterations
          ? chunkLength(iteration + n, nextIt)
          : 0;
        prefilled = null;
        if (nextN > 0) {
          const next = viewOf(buffers[1 - current], nextN);
          data.fill(next, "train", nextIt * config.batchSize);
          prefilled = { it: nextIt, n: nextN };
          const evaluatesAfter = config.evalEvery > 0 && (iteration + n) % config.evalEvery === 0;
          if (lookahead && nextIt !== 0 && !evaluatesAfter) {
            ahead = {
              it: nextIt,
              n: nextN,
              pending: trainer.trainChunk(next, { learningRate: config.learningRate }),
            };
            // Settled by the next turn of the loop, or by the cleanup when this one fails.
            ahead.pending.catch(() => {});
          }
        }
        const r = await pending;
        current = 1 - current;
        const sent = (r as Partial<SimulatedChunkResult>).bytesPerIteration;
        if (sent) {
          for (const k of ["embedding", "mlp", "scales", "total"] as const) {
            bytes[k] += sent[k] * r.iterations;
          }
        }
        trainWallMs += performance.now() - t0;
        let chunkLoss = 0;
        for (let i = 0; i < r.iterations; i++) {
          chunkLoss += r.loss[i];
          for (const p of PHASES) rawPhases[p].push(Math.round(r.phases[p][i] * 1e4) / 1e4);
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
        // Projected from warmed-up iterations only (cold ones run the JIT and fault in pages),
        // unless the time spent alone is already over the budget.
        const perIteration = total.length ? summarize(total).median : r.wallMs / r.iterations;
        const projected = trainWallMs + perIteration * (totalIterations - iteration);
        const budgetMs = config.budget.seconds * 1000;
        if ((total.length > 0 || trainWallMs > budgetMs) && projected > budgetMs) {
          status = "could-not-finish";
          error = `projected ${(projected / 1000).toFixed(0)} s of training at ${
            perIteration.toFixed(1)
          } ms/it, over the budget of ${config.budget.seconds} s`;
          // A chunk submitted ahead still trains; let it finish before the engine is disposed.
          await ahead?.pending.catch(() => {});
          break training;
        }
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
      await recordHistograms(epoch + 1, epoch >= config.qatFromEpoch ? minmaxBits : null);
    }
    if (status === "ok" && config.postTraining) {
      engine.quantizeInPlace(config.postTraining);
      await evaluate(config.epochs);
      const bits = config.postTraining.embeddingBits;
      if (bits !== null) {
        const values = await engine.readTable(histogramTable);
        histograms.push(histogramOf(values, 64, {
          tensor: `table ${histogramTable}`,
          iteration,
          epoch: config.epochs,
          kind: "quantized",
          bits,
        }));
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
    if (engine instanceof DataParallelEngine) {
      // The replicas must end bit-identical: a run whose replicas diverged failed.
      replicaChecksums = await engine.trainer.checksums();
      if (replicaChecksums.some((c) => c !== replicaChecksums![0])) {
        throw new ReplicaDivergenceError(replicaChecksums);
      }
    }
  } catch (e) {
    status = "failed";
    error = e instanceof Error ? e.message : String(e);
  } finally {
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
    engineBytes = engine.memoryBytes(); // before dispose frees it
    await engine.dispose();
  }

  const last = curve.at(-1);
  const result: RunResult = {
    schemaVersion: RESULT_SCHEMA_VERSION,
    suite: options.suite,
    config,
    spec,
    status,
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
      engineBytes,
      parameterBytes: 4 * (counts.embedding + counts.mlp),
      modelFileBytes: modelFileSize(spec, modelQuantization(config)),
    },
    curve,
    timingSamples: { warmup: Math.min(config.warmupIterations, iteration), phases: rawPhases },
    ...(dp && iteration > 0
      ? {
        communication: {
          workers: dp.workers,
          bytesPerIteration: {
            total: bytes.total / iteration,
            embedding: bytes.embedding / iteration,
            mlp: bytes.mlp / iteration,
            scales: bytes.scales / iteration,
          },
          compression: compressionName(compression!),
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
    weightHistograms: histograms,
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

function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
