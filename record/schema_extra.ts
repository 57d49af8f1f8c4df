/**
 * Optional result fields the report reads when a run records them: raw per-iteration timing
 * samples, weight histograms (the paper's Fig. 6) and communication bytes (Table 4). Every
 * field is optional; the report works without them and shows what it can.
 *
 * To record them, spread {@linkcode ResultExtrasShape} into the run result's zod object
 * (`z.object({ ...existing, ...ResultExtrasShape })`), or the result schema's parse strips them.
 *
 * @module
 */
import { z } from "zod";

/**
 * Raw per-iteration timings in milliseconds, in iteration order. The first `warmup` entries of
 * every array are warm-up iterations: kept so the report can show the warm-up, excluded from
 * every statistic.
 */
export const TimingSamplesSchema = z.object({
  /** Leading entries of each array that are warm-up (0 when none were kept). */
  warmup: z.number().int().nonnegative(),
  /** Per-iteration ms of each phase (`scale`, `forward`, `backward`, `communication`, `update`). */
  phases: z.record(z.string(), z.array(z.number())),
  /** Per-iteration ms of the whole iteration (the sum of the phases when absent). */
  total: z.array(z.number()).optional(),
});

/** Raw per-iteration timings. */
export type TimingSamples = z.infer<typeof TimingSamplesSchema>;

/**
 * A histogram of one tensor's values at one point of training, with `counts.length` equal
 * bins from `min` to `max`.
 */
export const WeightHistogramSchema = z.object({
  /** Tensor, e.g. `"table 6"` or `"bot.0.weight"`. */
  tensor: z.string(),
  /** Training iterations done when it was taken (0 = at initialisation). */
  iteration: z.number().int().nonnegative(),
  /** Epochs done when it was taken. */
  epoch: z.number().nonnegative().optional(),
  /**
   * `weights`: the FP32 values (the shadow copy under QAT); `quantized`: the dequantized values
   * the forward pass uses.
   */
  kind: z.enum(["weights", "quantized"]),
  /** Bit width of a quantized histogram. */
  bits: z.number().int().positive().optional(),
  min: z.number(),
  max: z.number(),
  counts: z.array(z.number().nonnegative()).min(1),
});

/** One weight histogram. */
export type WeightHistogram = z.infer<typeof WeightHistogramSchema>;

/** Bytes one worker sends per iteration, by part (the paper's Table 4). */
export const CommunicationSchema = z.object({
  /** Data-parallel workers. */
  workers: z.number().int().positive(),
  bytesPerIteration: z.object({
    total: z.number().nonnegative(),
    embedding: z.number().nonnegative().optional(),
    mlp: z.number().nonnegative().optional(),
    scales: z.number().nonnegative().optional(),
  }),
  /** Short description of the compression, e.g. `"sparse + int8"`. */
  compression: z.string().optional(),
  /**
   * How the workers ran: `simulated` on one engine (the paper's Algorithm 1), `workers` as real
   * replicas, or `accounting` (bytes counted on the run's batches, nothing trained).
   */
  mode: z.enum(["simulated", "workers", "accounting"]).optional(),
  /** Real workers: every replica's parameter checksum at the end of the run, by rank. */
  replicaChecksums: z.array(z.string()).optional(),
  /** Real workers: whether every replica ended bit-identical. */
  replicasIdentical: z.boolean().optional(),
});

/** Communication accounting of a data-parallel run. */
export type Communication = z.infer<typeof CommunicationSchema>;

/**
 * What the raw input of a run on real Criteo data held (`bench --data`, from the cache's
 * manifest): lines read, samples kept, good negatives sub-sampled away, and the bad lines skipped,
 * by kind (only kinds found; `data/criteo/format.ts` lists them) with their first sites.
 */
export const InputLinesSchema = z.object({
  /** Lines read from the raw files (bad lines included, header lines not). */
  lines: z.number().int().nonnegative(),
  /** Samples kept in the cache (every split). */
  samples: z.number().int().nonnegative(),
  /** Good negative lines dropped by sub-sampling. */
  subsampled: z.number().int().nonnegative(),
  /** Bad lines skipped, all kinds. */
  bad: z.number().int().nonnegative(),
  /** Bad lines by kind: count and the first sites (`file`, 1-based `line`). */
  badLines: z.record(
    z.string(),
    z.object({
      count: z.number().int().positive(),
      first: z.array(z.object({ file: z.string(), line: z.number().int().positive() })),
    }),
  ),
});

/** What a run's raw Criteo input held. */
export type InputLines = z.infer<typeof InputLinesSchema>;

/** The optional fields, as a zod shape to spread into the run result's object. */
export const ResultExtrasShape = {
  /** Raw per-iteration timings (warm-up included, marked). */
  timingSamples: TimingSamplesSchema.optional(),
  /** Weight histograms at chosen iterations. */
  weightHistograms: z.array(WeightHistogramSchema).optional(),
  /** Communication bytes per iteration (data-parallel runs). */
  communication: CommunicationSchema.optional(),
  /** Runs on real Criteo data: lines read, samples kept, bad lines skipped by kind. */
  inputLines: InputLinesSchema.optional(),
};

/** Zod schema of the optional fields alone. */
export const ResultExtrasSchema = z.object(ResultExtrasShape);

/** The optional fields of a result. */
export type ResultExtras = z.infer<typeof ResultExtrasSchema>;

/**
 * Builds a histogram of `values` with `bins` equal bins over their range, as
 * {@linkcode WeightHistogramSchema} records it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { histogramOf } from "./schema_extra.ts";
 * const h = histogramOf([0, 0.5, 1, 1], 2, { tensor: "t", iteration: 0, kind: "weights" });
 * assert.deepEqual(h.counts, [1, 3]);
 * ```
 */
export function histogramOf(
  values: ArrayLike<number>,
  bins: number,
  label: Omit<WeightHistogram, "min" | "max" | "counts">,
): WeightHistogram {
  if (!Number.isInteger(bins) || bins < 1) {
    throw new RangeError(`Expected bins to be a positive integer but found ${bins}`);
  }
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < min) min = values[i];
    if (values[i] > max) max = values[i];
  }
  if (values.length === 0) min = max = 0;
  const counts = new Array<number>(bins).fill(0);
  const width = (max - min) / bins;
  for (let i = 0; i < values.length; i++) {
    const b = width > 0 ? Math.min(bins - 1, Math.floor((values[i] - min) / width)) : 0;
    counts[b]++;
  }
  return { ...label, min, max, counts };
}
