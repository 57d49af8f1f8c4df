/**
 * Training phases and their per-iteration timings.
 *
 * @module
 */

/**
 * The phases of one training iteration. `scale` (finding quantization scales) and
 * `communication` (gradient exchange between workers) stay at zero until quantization and data
 * parallelism fill them.
 */
export const PHASES = ["scale", "forward", "backward", "communication", "update"] as const;

/** One training phase. */
export type Phase = typeof PHASES[number];

/** Per-iteration milliseconds of each phase over a chunk or a run. */
export type PhaseSamples = Record<Phase, Float64Array>;

/** Allocates zeroed per-iteration sample arrays for `iterations` iterations. */
export function allocatePhaseSamples(iterations: number): PhaseSamples {
  return Object.fromEntries(PHASES.map((p) => [p, new Float64Array(iterations)])) as PhaseSamples;
}

/** Robust summary of a sample: median, median absolute deviation, 10th and 90th percentiles. */
export interface SampleSummary {
  /** Number of samples. */
  n: number;
  /** Median. */
  median: number;
  /** Median absolute deviation (unscaled). */
  mad: number;
  /** Mean. */
  mean: number;
  /** 10th percentile. */
  p10: number;
  /** 90th percentile. */
  p90: number;
}

/** Summarises a sample (empty samples give zeros). */
export function summarize(values: ArrayLike<number>): SampleSummary {
  const n = values.length;
  if (n === 0) return { n, median: 0, mad: 0, mean: 0, p10: 0, p90: 0 };
  const sorted = Float64Array.from(values).sort();
  const q = (p: number) => {
    const x = p * (n - 1);
    const lo = Math.floor(x);
    const hi = Math.min(n - 1, lo + 1);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
  };
  const median = q(0.5);
  const dev = Float64Array.from(sorted, (v) => Math.abs(v - median)).sort();
  const mad = n % 2 ? dev[(n - 1) / 2] : (dev[n / 2 - 1] + dev[n / 2]) / 2;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return { n, median, mad, mean: sum / n, p10: q(0.1), p90: q(0.9) };
}
