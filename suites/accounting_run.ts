/**
 * Communication accounting runs (`dataParallel.mode: "accounting"`, the paper's Table 4): the
 * exact bytes each data-parallel worker sends per iteration under a compression preset,
 * counted on the run's own training batches (each worker's slice of every global batch, its
 * unique rows per table) with {@linkcode messageBytes}, without training. The uncompressed
 * (dense) setting is computed the same way, so no 2 GB all-reduce is ever run.
 *
 * @module
 */
import { messageBytes, uniqueRowsOf } from "../comm/accounting.ts";
import { COMPRESSION_PRESETS, compressionName } from "../comm/compression.ts";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { cpuModel } from "../engine/cpu/mod.ts";
import type { ClickMetrics } from "../engine/metrics.ts";
import type { ModelSpec } from "../engine/spec.ts";
import type { RunConfig, RunResult } from "../record/schema.ts";
import { buildRunResult } from "./result.ts";
import type { TrainData } from "./training_loop.ts";

/** Bytes per iteration of one worker, by part, as {@linkcode messageBytes} counts them. */
export interface AccountedBytes {
  embedding: number;
  mlp: number;
  scales: number;
  total: number;
}

/**
 * The mean bytes a worker sends per iteration over the first `iterations` global batches of
 * `data` (global batch `batchSize`, `workers` contiguous slices), under `preset`.
 */
export function accountBatches(
  spec: ModelSpec,
  data: TrainData,
  options: {
    batchSize: number;
    workers: number;
    iterations: number;
    compression: keyof typeof COMPRESSION_PRESETS;
    chunkIterations?: number;
  },
): AccountedBytes {
  const { batchSize: B, workers, iterations } = options;
  if (B % workers !== 0) {
    throw new RangeError(`Expected the batch size ${B} to be a multiple of ${workers} workers`);
  }
  const per = Math.max(1, Math.min(options.chunkIterations ?? 250, iterations));
  const chunk = allocateOneHotChunk(spec, B, per * B, true);
  const c = COMPRESSION_PRESETS[options.compression];
  const b = B / workers;
  const sum: AccountedBytes = { embedding: 0, mlp: 0, scales: 0, total: 0 };
  for (let it = 0; it < iterations; it += per) {
    const n = Math.min(per, iterations - it);
    const view = n === per ? chunk : { ...chunk, samples: n * B };
    data.fill(view, "train", it * B);
    for (let i = 0; i < n; i++) {
      for (let rank = 0; rank < workers; rank++) {
        const m = messageBytes(spec, c, uniqueRowsOf(view, i * B + rank * b, b));
        sum.embedding += m.embedding;
        sum.mlp += m.mlp;
        sum.scales += m.scales;
        sum.total += m.total;
      }
    }
  }
  const count = Math.max(1, iterations * workers);
  return {
    embedding: sum.embedding / count,
    mlp: sum.mlp / count,
    scales: sum.scales / count,
    total: sum.total / count,
  };
}

/** The result record of an accounting run (no training: no curve, no timings). */
export function runAccounting(run: {
  config: RunConfig;
  spec: ModelSpec;
  data: TrainData;
  startedAt: string;
  /** Suite name recorded in the result. */
  suite: string;
  /** The synthetic teacher's metrics on the test set, when the data has a teacher. */
  ceiling?: ClickMetrics;
}): RunResult {
  const { config, spec } = run;
  const dp = config.dataParallel!;
  const iterations = Math.floor(config.trainSamples / config.batchSize);
  const bytes = accountBatches(spec, run.data, {
    batchSize: config.batchSize,
    workers: dp.workers,
    iterations,
    compression: dp.compression,
    chunkIterations: config.chunkIterations,
  });
  return buildRunResult({
    suite: run.suite,
    config,
    spec,
    status: "ok",
    startedAt: run.startedAt,
    engine: {
      name: "accounting",
      device: cpuModel(),
      threads: 1,
      details: { note: "bytes counted on the run's batches; nothing trained" },
    },
    iterations,
    engineBytes: 0,
    communication: {
      workers: dp.workers,
      bytesPerIteration: bytes,
      compression: compressionName(COMPRESSION_PRESETS[dp.compression]),
      mode: "accounting",
    },
    ceiling: run.ceiling,
  });
}
