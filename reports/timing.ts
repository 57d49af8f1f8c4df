/**
 * Timing statistics of runs for the report and the regression gate: for every phase and the
 * whole iteration, the median, spread and 95% confidence interval of the median — from the raw
 * per-iteration samples when the run recorded them (warm-up excluded, outliers flagged), else
 * from the recorded summary — and each run's ratio to a reference run with its interval.
 *
 * @module
 */
import { PHASES } from "../engine/phases.ts";
import type { ReportRun } from "./load.ts";
import {
  describeSample,
  type Interval,
  medianIntervalFromSummary,
  type Ratio,
  ratioFromIntervals,
  ratioFromSummaries,
  ratioOfMedians,
} from "../record/stats.ts";

/** Statistics of one phase (or `total`) of one run, in ms per iteration. */
export interface TimingStats {
  /** Samples after warm-up. */
  n: number;
  median: number;
  /** Median absolute deviation (unscaled). */
  mad: number;
  p10: number;
  p90: number;
  /** Confidence interval of the median. */
  ci: Interval;
  /** Flagged outliers; undefined without raw samples. */
  outliers?: number;
  /** `samples`: computed from raw per-iteration samples; `summary`: from the recorded summary. */
  source: "samples" | "summary";
  warnings: string[];
  /** Raw samples after warm-up (only with `source: "samples"`). */
  samples?: Float64Array;
}

/** Name of the whole-iteration row. */
export const TOTAL = "total";

/** Phases a run has (the engine's order first), then `total`. */
export function phasesOf(run: ReportRun): string[] {
  const keys = new Set([
    ...Object.keys(run.timing?.phases ?? {}),
    ...Object.keys(run.timingSamples?.phases ?? {}),
  ]);
  const known = (PHASES as readonly string[]).filter((p) => keys.has(p));
  const other = [...keys].filter((k) => !known.includes(k)).sort();
  return [...known, ...other, TOTAL];
}

/** Raw per-iteration samples of a phase or the total, warm-up included; undefined if absent. */
export function rawSamples(run: ReportRun, phase: string): number[] | undefined {
  const s = run.timingSamples;
  if (!s) return undefined;
  if (phase !== TOTAL) return s.phases[phase];
  if (s.total) return s.total;
  const arrays = Object.values(s.phases);
  if (arrays.length === 0) return undefined;
  const n = Math.min(...arrays.map((a) => a.length));
  return Array.from({ length: n }, (_, i) => arrays.reduce((sum, a) => sum + a[i], 0));
}

/** Timing statistics of one phase (or {@linkcode TOTAL}) of a run; undefined if not timed. */
export function timingStats(run: ReportRun, phase: string): TimingStats | undefined {
  const raw = rawSamples(run, phase);
  const warmup = run.timingSamples?.warmup ?? 0;
  if (raw && raw.length > warmup) {
    const d = describeSample(raw, { warmup });
    return {
      n: d.n,
      median: d.median,
      mad: d.mad,
      p10: d.p10,
      p90: d.p90,
      ci: d.ci,
      outliers: d.outliers,
      source: "samples",
      warnings: d.warnings,
      samples: Float64Array.from(raw.slice(warmup)),
    };
  }
  const s = phase === TOTAL ? run.timing?.total : run.timing?.phases[phase];
  if (!s || s.n === 0) return undefined;
  return {
    n: s.n,
    median: s.median,
    mad: s.mad,
    p10: s.p10,
    p90: s.p90,
    ci: medianIntervalFromSummary(s),
    source: "summary",
    warnings: [],
  };
}

/** Bootstrap only while resamples × samples stays below this (about 0.1 s). */
const BOOTSTRAP_BUDGET = 4e6;

/**
 * Ratio `median(a) / median(b)` of two runs' timings with its 95% interval: bootstrapped when
 * both have raw samples and are small enough, else from their medians' intervals.
 */
export function timingRatio(a: TimingStats, b: TimingStats): Ratio {
  if (a.samples && b.samples) {
    const resamples = 500;
    if (resamples * (a.samples.length + b.samples.length) <= BOOTSTRAP_BUDGET) {
      return ratioOfMedians(a.samples, b.samples, { resamples });
    }
    return ratioFromIntervals(a, b);
  }
  return ratioFromSummaries(a, b);
}
