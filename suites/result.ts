/**
 * The one builder of a run's result record, for every way a run ends: trained (ok, failed
 * mid-training, over its time budget), never trained (over its memory budget, no engine for
 * it), or a communication accounting run. Fields a run did not measure get their empty values
 * here, once.
 *
 * @module
 */
import type { EngineInfo } from "../engine/engine.ts";
import { describeEnvironment } from "../engine/environment.ts";
import type { ClickMetrics } from "../engine/metrics.ts";
import { type ModelFileQuantization, modelFileSize } from "../engine/model_file.ts";
import { PHASES } from "../engine/phases.ts";
import { summarize } from "../record/stats.ts";
import { provenanceNow } from "../record/provenance.ts";
import { type ModelSpec, parameterCounts } from "../engine/spec.ts";
import {
  RESULT_SCHEMA_VERSION,
  type RunConfig,
  type RunResult,
  RunResultSchema,
} from "../record/schema.ts";
import type { Communication, WeightHistogram } from "../record/schema_extra.ts";
import type { TrainingTally } from "./training_loop.ts";

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

/** What a run's record is built from; what a run did not measure is left out. */
export interface RunRecordParts {
  /** Suite name recorded in the result. */
  suite: string;
  config: RunConfig;
  /** The spec trained (the data's table sizes for real data). */
  spec: ModelSpec;
  startedAt: string;
  status: RunResult["status"];
  /** Why the run failed or could not finish (recorded when defined, even empty). */
  error?: string;
  /** Iterations trained of the planned, for a run stopped by its time budget. */
  partial?: RunResult["partial"];
  /** The engine the run trained on, or would have. */
  engine: EngineInfo;
  /** Iterations trained (or counted, for accounting). */
  iterations: number;
  /** What training measured; absent for runs that trained nothing. */
  tally?: TrainingTally;
  /** Bytes the engine held. */
  engineBytes: number;
  /** Test-set evaluations (default: none). */
  curve?: RunResult["curve"];
  communication?: Communication;
  weightHistograms?: WeightHistogram[];
  /** The synthetic teacher's metrics on the test set. */
  ceiling?: ClickMetrics;
}

/** Builds and validates the result record of a run. */
export function buildRunResult(parts: RunRecordParts): RunResult {
  const { config, spec, tally, iterations } = parts;
  const counts = parameterCounts(spec);
  const curve = parts.curve ?? [];
  const last = curve.at(-1);
  // A run that trained nothing has the timings of an empty tally.
  const trainWallMs = tally?.trainWallMs ?? 0;
  const environment = describeEnvironment(parts.engine);
  const result: RunResult = {
    schemaVersion: RESULT_SCHEMA_VERSION,
    suite: parts.suite,
    provenance: provenanceNow(environment),
    config,
    spec,
    status: parts.status,
    ...(parts.error !== undefined ? { error: parts.error } : {}),
    ...(parts.partial ? { partial: parts.partial } : {}),
    startedAt: parts.startedAt,
    finishedAt: new Date().toISOString(),
    environment,
    iterations,
    timing: {
      phases: Object.fromEntries(
        PHASES.map((p) => [p, summarize(tally ? tally.phaseSamples[p] : [])]),
      ),
      total: summarize(tally ? tally.total : []),
      wallMsPerIteration: iterations && tally ? trainWallMs / iterations : 0,
      samplesPerSecond: trainWallMs ? (iterations * config.batchSize) / (trainWallMs / 1000) : 0,
    },
    memory: {
      // The peak training saw; a run that trained nothing records the process's rss now.
      peakRssBytes: tally?.peakRss ?? Deno.memoryUsage().rss,
      engineBytes: parts.engineBytes,
      parameterBytes: 4 * (counts.embedding + counts.mlp),
      modelFileBytes: modelFileSize(spec, modelQuantization(config)),
    },
    curve,
    ...(tally
      ? {
        timingSamples: {
          warmup: Math.min(config.warmupIterations, iterations),
          phases: tally.rawPhases,
        },
      }
      : {}),
    ...(parts.communication ? { communication: parts.communication } : {}),
    ...(parts.weightHistograms ? { weightHistograms: parts.weightHistograms } : {}),
    ...(last
      ? {
        final: { accuracy: last.accuracy, auc: last.auc, logLoss: last.logLoss },
        best: {
          accuracy: Math.max(...curve.map((c) => c.accuracy)),
          auc: Math.max(...curve.map((c) => c.auc)),
        },
      }
      : {}),
    ...(parts.ceiling ? { ceiling: parts.ceiling } : {}),
  };
  return RunResultSchema.parse(result);
}
