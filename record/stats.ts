/**
 * Benchmark statistics: warm-up exclusion, median and median absolute deviation, a
 * distribution-free 95% confidence interval of the median, outlier flags, and the ratio of two
 * runs' medians with its interval. A comparison between two runs is a ratio with an interval,
 * never a difference of two single numbers.
 *
 * Also the robust summary every result records ({@linkcode summarize}), the plain medians the
 * benchmark tools print ({@linkcode upperMedian}) and the normal quantile
 * ({@linkcode normalQuantile}, from `engine/rng.ts`, where the synthetic data draws normals with
 * it): the one place these statistics are written.
 *
 * Every function is deterministic: the bootstrap draws from a seeded stream.
 *
 * @module
 */
import { normalQuantile, Rng } from "../engine/rng.ts";

export { normalQuantile };

/** Scales a median absolute deviation to a standard deviation for normal data. */
export const MAD_TO_SIGMA = 1.4826;

/** Default outlier threshold, in scaled MADs above the median (hyperfine uses 10). */
export const DEFAULT_OUTLIER_K = 5;

/** A confidence interval. */
export interface Interval {
  /** Lower bound. */
  lo: number;
  /** Upper bound. */
  hi: number;
  /** Nominal coverage asked for, e.g. 0.95. */
  level: number;
  /** Coverage actually achieved (order statistics of small samples cannot reach every level). */
  coverage: number;
  /** How it was computed. */
  method: "order-statistic" | "bootstrap" | "normal-approximation" | "none";
}

/** Everything the report shows about one timing sample. */
export interface SampleStats {
  /** Samples after warm-up exclusion. */
  n: number;
  /** Leading samples excluded as warm-up. */
  warmup: number;
  median: number;
  /** Median absolute deviation (unscaled). */
  mad: number;
  mean: number;
  min: number;
  max: number;
  p10: number;
  p90: number;
  /** 95% (or `level`) confidence interval of the median. */
  ci: Interval;
  /** Samples above the outlier threshold. */
  outliers: number;
  /** `median + k · 1.4826 · MAD`; `Infinity` when MAD is 0 (spread unknown). */
  outlierThreshold: number;
  /** Warnings that say what to do, hyperfine style. */
  warnings: string[];
}

/** Options of {@linkcode describeSample}. */
export interface DescribeOptions {
  /** Leading samples to drop as warm-up (default 0). */
  warmup?: number;
  /** Confidence level of the median's interval (default 0.95). */
  level?: number;
  /** Outlier threshold in scaled MADs (default {@linkcode DEFAULT_OUTLIER_K}). */
  outlierK?: number;
  /** Unit for warning texts (default "ms"). */
  unit?: string;
}

/**
 * Drops the first `warmup` samples.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { excludeWarmup } from "./stats.ts";
 * assert.deepEqual(Array.from(excludeWarmup([9, 8, 1, 2], 2)), [1, 2]);
 * ```
 */
export function excludeWarmup(values: ArrayLike<number>, warmup: number): Float64Array {
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new RangeError(`Expected warmup to be a non-negative integer but found ${warmup}`);
  }
  return Float64Array.from(Array.prototype.slice.call(values, Math.min(warmup, values.length)));
}

/** Sorted copy of a sample (NaN rejected). */
export function sorted(values: ArrayLike<number>): Float64Array {
  const s = Float64Array.from(values);
  for (let i = 0; i < s.length; i++) {
    if (Number.isNaN(s[i])) throw new RangeError(`Expected numbers but found NaN at index ${i}`);
  }
  return s.sort();
}

/** Quantile `p` in [0, 1] of a sorted sample, linear interpolation (NumPy's default). */
export function quantileSorted(sortedValues: ArrayLike<number>, p: number): number {
  const n = sortedValues.length;
  if (n === 0) return NaN;
  const x = p * (n - 1);
  const lo = Math.floor(x);
  const hi = Math.min(n - 1, lo + 1);
  return sortedValues[lo] + (sortedValues[hi] - sortedValues[lo]) * (x - lo);
}

/**
 * Median of a sorted sample as the mean of its two middle values, `(a + b) / 2`;
 * {@linkcode quantileSorted} at ½ computes `a + (b - a) / 2`, which can differ in the last bit.
 * The MAD of {@linkcode summarize} (what results record) is taken this way. `NaN` when empty.
 */
export function medianOfSorted(sortedValues: ArrayLike<number>): number {
  const n = sortedValues.length;
  if (n === 0) return NaN;
  return n % 2 ? sortedValues[(n - 1) / 2] : (sortedValues[n / 2 - 1] + sortedValues[n / 2]) / 2;
}

/**
 * The upper middle value of a sample, `sorted[n >> 1]` (no averaging of the two middle values):
 * the quick median the benchmark tools print. `NaN` when empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { upperMedian } from "./stats.ts";
 * assert.equal(upperMedian([4, 1, 3, 2]), 3);
 * ```
 */
export function upperMedian(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  return Float64Array.from(values).sort()[values.length >> 1];
}

/**
 * Median of a sample; `NaN` when empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { median } from "./stats.ts";
 * assert.equal(median([3, 1, 2, 10]), 2.5);
 * ```
 */
export function median(values: ArrayLike<number>): number {
  return quantileSorted(sorted(values), 0.5);
}

/** Median absolute deviation around `center` (default: the median), unscaled. */
export function medianAbsoluteDeviation(values: ArrayLike<number>, center?: number): number {
  const c = center ?? median(values);
  return median(Float64Array.from(values, (v) => Math.abs(v - c)));
}

/**
 * Distribution-free confidence interval of the median from order statistics: the interval
 * `[x(r), x(n-r+1)]` covers the median with probability `1 - 2·P(B <= r-1)`, B ~ Binomial(n, ½);
 * the largest `r` reaching `level` is taken. Below 6 samples no `r` reaches 95% and the
 * interval is the range, with its smaller coverage reported.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { medianInterval } from "./stats.ts";
 * const ci = medianInterval(Array.from({ length: 100 }, (_, i) => i));
 * assert.deepEqual([ci.lo, ci.hi], [39, 60]);
 * ```
 */
export function medianInterval(values: ArrayLike<number>, level = 0.95): Interval {
  checkLevel(level);
  const s = sorted(values);
  const n = s.length;
  if (n === 0) return { lo: NaN, hi: NaN, level, coverage: 0, method: "none" };
  // cdf[k] = P(B <= k), summed in log space so large n does not underflow to zero everywhere.
  const logHalfN = -n * Math.LN2;
  let logPmf = logHalfN;
  let cdf = 0;
  let r = 1;
  let coverage = 1 - 2 * Math.exp(logHalfN); // r = 1: P(B <= 0)
  if (n === 1) coverage = 0;
  for (let k = 0; k < Math.floor(n / 2); k++) {
    cdf += Math.exp(logPmf);
    const cov = 1 - 2 * cdf; // coverage of r = k + 1
    if (cov < level) break;
    r = k + 1;
    coverage = cov;
    logPmf += Math.log((n - k) / (k + 1));
  }
  return {
    lo: s[r - 1],
    hi: s[n - r],
    level,
    coverage: Math.max(0, coverage),
    method: "order-statistic",
  };
}

/**
 * Approximate confidence interval of a median known only by its summary (median, MAD, n):
 * `median ± z · 1.2533 · 1.4826 · MAD / √n` (the asymptotic standard error of a normal
 * sample's median). For results that recorded no raw samples.
 */
export function medianIntervalFromSummary(
  summary: { median: number; mad: number; n: number },
  level = 0.95,
): Interval {
  checkLevel(level);
  if (summary.n < 2) {
    return { lo: NaN, hi: NaN, level, coverage: 0, method: "none" };
  }
  const half = normalQuantile(0.5 + level / 2) * 1.2533 * MAD_TO_SIGMA * summary.mad /
    Math.sqrt(summary.n);
  return {
    lo: summary.median - half,
    hi: summary.median + half,
    level,
    coverage: level,
    method: "normal-approximation",
  };
}

/** Result of {@linkcode flagOutliers}. */
export interface Outliers {
  /** Indices of the flagged samples. */
  indices: number[];
  /** Values above it are flagged. */
  threshold: number;
}

/**
 * Flags slow outliers of a timing sample: values above `median + k · 1.4826 · MAD` (one-sided:
 * a timing is never an outlier for being fast). With MAD = 0 nothing is flagged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flagOutliers } from "./stats.ts";
 * assert.deepEqual(flagOutliers([10, 11, 9, 10, 10.5, 9.5, 80]).indices, [6]);
 * ```
 */
export function flagOutliers(values: ArrayLike<number>, k = DEFAULT_OUTLIER_K): Outliers {
  if (!(k > 0)) throw new RangeError(`Expected k to be greater than 0 but found ${k}`);
  if (values.length === 0) return { indices: [], threshold: Infinity };
  const m = median(values);
  const mad = medianAbsoluteDeviation(values, m);
  const threshold = mad > 0 ? m + k * MAD_TO_SIGMA * mad : Infinity;
  const indices: number[] = [];
  for (let i = 0; i < values.length; i++) if (values[i] > threshold) indices.push(i);
  return { indices, threshold };
}

/**
 * Describes a timing sample: warm-up excluded, then median, MAD, mean, range, percentiles, the
 * median's confidence interval and outliers, with warnings that say what to do.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeSample } from "./stats.ts";
 * const s = describeSample([50, 40, 10, 11, 9, 10, 10, 11, 9, 10], { warmup: 2 });
 * assert.equal(s.n, 8);
 * assert.equal(s.median, 10);
 * ```
 */
export function describeSample(
  values: ArrayLike<number>,
  options: DescribeOptions = {},
): SampleStats {
  const warmup = Math.min(options.warmup ?? 0, values.length);
  const level = options.level ?? 0.95;
  const k = options.outlierK ?? DEFAULT_OUTLIER_K;
  const unit = options.unit ?? "ms";
  const x = excludeWarmup(values, warmup);
  const s = sorted(x);
  const n = s.length;
  if (n === 0) {
    return {
      n,
      warmup,
      median: NaN,
      mad: NaN,
      mean: NaN,
      min: NaN,
      max: NaN,
      p10: NaN,
      p90: NaN,
      ci: { lo: NaN, hi: NaN, level, coverage: 0, method: "none" },
      outliers: 0,
      outlierThreshold: Infinity,
      warnings: ["no samples"],
    };
  }
  const m = quantileSorted(s, 0.5);
  const mad = medianAbsoluteDeviation(s, m);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i];
  const out = flagOutliers(x, k);
  const warnings: string[] = [];
  if (out.indices.length > 0) {
    const pct = (100 * out.indices.length / n).toFixed(1);
    warnings.push(
      `${out.indices.length} of ${n} samples (${pct}%) are outliers above ${
        out.threshold.toFixed(3)
      } ${unit}: other work competed for the machine; rerun on a quiet machine or rely on the median`,
    );
    if (out.indices[0] === 0) {
      warnings.push(
        `the first timed sample is an outlier: raise the warm-up (${warmup} excluded)`,
      );
    }
  }
  const ci = medianInterval(s, level);
  if (ci.coverage < level) {
    warnings.push(
      `only ${n} samples: the median's interval covers ${(100 * ci.coverage).toFixed(1)}%, ` +
        `not ${(100 * level).toFixed(0)}%; run more iterations`,
    );
  }
  return {
    n,
    warmup,
    median: m,
    mad,
    mean: sum / n,
    min: s[0],
    max: s[n - 1],
    p10: quantileSorted(s, 0.1),
    p90: quantileSorted(s, 0.9),
    ci,
    outliers: out.indices.length,
    outlierThreshold: out.threshold,
    warnings,
  };
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

/**
 * Summarises a sample as a result's timing records it (`SummarySchema`); empty samples give
 * zeros. The median and percentiles are {@linkcode quantileSorted}'s, the MAD the
 * {@linkcode medianOfSorted} of the sorted absolute deviations.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summarize } from "./stats.ts";
 * const s = summarize([3, 1, 2, 10]);
 * assert.deepEqual([s.median, s.mad, s.mean], [2.5, 1, 4]);
 * ```
 */
export function summarize(values: ArrayLike<number>): SampleSummary {
  const n = values.length;
  if (n === 0) return { n, median: 0, mad: 0, mean: 0, p10: 0, p90: 0 };
  const s = Float64Array.from(values).sort();
  const median = quantileSorted(s, 0.5);
  const mad = medianOfSorted(Float64Array.from(s, (v) => Math.abs(v - median)).sort());
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i];
  return {
    n,
    median,
    mad,
    mean: sum / n,
    p10: quantileSorted(s, 0.1),
    p90: quantileSorted(s, 0.9),
  };
}

/** A ratio of two medians with its confidence interval. */
export interface Ratio extends Interval {
  /** `median(a) / median(b)`. */
  ratio: number;
}

/** Options of {@linkcode ratioOfMedians}. */
export interface RatioOptions {
  /** Confidence level (default 0.95). */
  level?: number;
  /** Bootstrap resamples (default 1000). */
  resamples?: number;
  /** Seed of the bootstrap stream (default 1). */
  seed?: number;
}

/**
 * Ratio of two independent samples' medians, `median(a) / median(b)`, with a percentile
 * bootstrap interval (each sample resampled with replacement, seeded, so the interval is
 * reproducible). `NaN` bounds when a median is 0 or a sample is empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ratioOfMedians } from "./stats.ts";
 * const a = Array.from({ length: 200 }, (_, i) => 20 + (i % 7));
 * const b = Array.from({ length: 200 }, (_, i) => 10 + (i % 5) / 2);
 * const r = ratioOfMedians(a, b);
 * assert.ok(r.lo <= r.ratio && r.ratio <= r.hi && r.lo > 1.5);
 * ```
 */
export function ratioOfMedians(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  options: RatioOptions = {},
): Ratio {
  const level = options.level ?? 0.95;
  checkLevel(level);
  const resamples = options.resamples ?? 1000;
  const ma = median(a), mb = median(b);
  const ratio = ma / mb;
  if (a.length === 0 || b.length === 0 || !(mb !== 0) || !Number.isFinite(ratio)) {
    return { ratio: NaN, lo: NaN, hi: NaN, level, coverage: 0, method: "none" };
  }
  const rng = new Rng(options.seed ?? 1, 0x7a710);
  const xa = Float64Array.from(a), xb = Float64Array.from(b);
  const ba = new Float64Array(xa.length), bb = new Float64Array(xb.length);
  const ratios = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < xa.length; i++) ba[i] = xa[rng.int(xa.length)];
    for (let i = 0; i < xb.length; i++) bb[i] = xb[rng.int(xb.length)];
    ratios[r] = selectMedian(ba) / selectMedian(bb);
  }
  ratios.sort();
  const tail = (1 - level) / 2;
  return {
    ratio,
    lo: quantileSorted(ratios, tail),
    hi: quantileSorted(ratios, 1 - tail),
    level,
    coverage: level,
    method: "bootstrap",
  };
}

/** A ratio without an interval (the inputs cannot give one). */
function noRatio(ratio: number, level: number): Ratio {
  return {
    ratio: Number.isFinite(ratio) ? ratio : NaN,
    lo: NaN,
    hi: NaN,
    level,
    coverage: 0,
    method: "none",
  };
}

/** A ratio's log-normal interval from the two estimates' relative standard errors. */
function logNormalRatio(ratio: number, seA: number, seB: number, level: number): Ratio {
  const half = normalQuantile(0.5 + level / 2) * Math.hypot(seA, seB);
  return {
    ratio,
    lo: ratio * Math.exp(-half),
    hi: ratio * Math.exp(half),
    level,
    coverage: level,
    method: "normal-approximation",
  };
}

/**
 * Ratio of two medians known only by their summaries (median, MAD, n), with a log-normal
 * interval: the medians' approximate standard errors (see
 * {@linkcode medianIntervalFromSummary}) combined on the log scale.
 */
export function ratioFromSummaries(
  a: { median: number; mad: number; n: number },
  b: { median: number; mad: number; n: number },
  level = 0.95,
): Ratio {
  checkLevel(level);
  const ratio = a.median / b.median;
  if (!(a.median > 0 && b.median > 0) || a.n < 2 || b.n < 2) {
    return noRatio(ratio, level);
  }
  const se = (s: { median: number; mad: number; n: number }) =>
    1.2533 * MAD_TO_SIGMA * s.mad / Math.sqrt(s.n) / s.median;
  return logNormalRatio(ratio, se(a), se(b), level);
}

/**
 * Ratio of two medians from their confidence intervals, for samples too large to bootstrap
 * cheaply: each interval's half-width on the log scale gives a standard error, combined as
 * for independent estimates.
 */
export function ratioFromIntervals(
  a: { median: number; ci: Interval },
  b: { median: number; ci: Interval },
  level = 0.95,
): Ratio {
  checkLevel(level);
  const ratio = a.median / b.median;
  const ok = (x: { median: number; ci: Interval }) =>
    x.median > 0 && x.ci.lo > 0 && x.ci.hi > 0 && Number.isFinite(x.ci.hi);
  if (!ok(a) || !ok(b)) {
    return noRatio(ratio, level);
  }
  const z = (x: { ci: Interval }) => normalQuantile(0.5 + x.ci.level / 2);
  const se = (x: { ci: Interval }) => Math.log(x.ci.hi / x.ci.lo) / (2 * z(x));
  return logNormalRatio(ratio, se(a), se(b), level);
}

/** Mean, sample standard deviation, min and max of repeated figures (e.g. one per seed). */
export interface Spread {
  n: number;
  mean: number;
  /** Sample standard deviation (0 for one value). */
  sd: number;
  min: number;
  max: number;
}

/** Mean and spread of repeated figures; undefined entries are skipped. */
export function spreadOf(values: readonly (number | undefined)[]): Spread | undefined {
  const x = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  if (x.length === 0) return undefined;
  const mean = x.reduce((s, v) => s + v, 0) / x.length;
  const sd = x.length > 1
    ? Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / (x.length - 1))
    : 0;
  return { n: x.length, mean, sd, min: Math.min(...x), max: Math.max(...x) };
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) {
    throw new RangeError(`Expected level in (0, 1) but found ${level}`);
  }
}

/** Median by quickselect, in place (reorders `x`). */
function selectMedian(x: Float64Array): number {
  const n = x.length;
  const hi = select(x, n >> 1);
  if (n % 2) return hi;
  // The lower middle is the largest value left of position n/2 after selection.
  let lo = -Infinity;
  for (let i = 0; i < n >> 1; i++) if (x[i] > lo) lo = x[i];
  return (lo + hi) / 2;
}

function select(x: Float64Array, k: number): number {
  let left = 0, right = x.length - 1;
  while (right > left) {
    const pivot = x[(left + right) >> 1];
    let i = left, j = right;
    while (i <= j) {
      while (x[i] < pivot) i++;
      while (x[j] > pivot) j--;
      if (i <= j) {
        const t = x[i];
        x[i] = x[j];
        x[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else break;
  }
  return x[k];
}
