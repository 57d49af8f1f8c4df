/**
 * Step detection in a benchmark's history, as airspeed velocity does it: the series is fitted by
 * a piecewise-constant function minimising the sum of absolute deviations from each segment's
 * median plus a penalty per segment (exact, by dynamic programming), so noise stays inside
 * segments and a lasting change of level starts a new one.
 *
 * @module
 */
import { median } from "../record/stats.ts";

/** A change of level between two segments of a series. */
export interface Step {
  /** Index of the first point of the new level. */
  at: number;
  /** Median of the segment before and of the new one. */
  before: number;
  after: number;
  /** `after / before` (Infinity or NaN when `before` is 0). */
  ratio: number;
}

/** Options of {@linkcode detectSteps}. */
export interface StepOptions {
  /**
   * Noise of one point (a standard deviation, in the series' unit), e.g. from the points' own
   * confidence intervals; 0 when unknown.
   */
  noise?: number;
  /** Smallest relative change reported, as asv's 5% default threshold (default 0.05). */
  minRelative?: number;
}

/**
 * Steps of `values` (in order): the change points of the best piecewise-constant L1 fit with a
 * penalty per segment of `max(3·noise, minRelative·|median|)`, keeping only changes of at least
 * `minRelative` of the level before.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectSteps } from "./steps.ts";
 * const steps = detectSteps([10, 10.2, 9.9, 20, 20.1, 19.8]);
 * assert.deepEqual(steps.map((s) => s.at), [3]);
 * assert.equal(detectSteps([10, 10.2, 9.9, 10.1]).length, 0);
 * ```
 */
export function detectSteps(values: readonly number[], options: StepOptions = {}): Step[] {
  const y = values.filter((v) => Number.isFinite(v));
  if (y.length !== values.length) {
    throw new RangeError(`Expected finite values but found ${values.length - y.length} others`);
  }
  const n = y.length;
  if (n < 2) return [];
  const minRelative = options.minRelative ?? 0.05;
  const penalty = Math.max(3 * (options.noise ?? 0), minRelative * Math.abs(median(y)));
  if (!(penalty > 0)) return []; // every value 0: nothing changes
  // cost[i][j]: L1 deviation of y[i..j] from its median (n is a history's length: small).
  const cost = (i: number, j: number) => {
    const seg = y.slice(i, j + 1);
    const m = median(seg);
    return seg.reduce((s, v) => s + Math.abs(v - m), 0);
  };
  // best[j]: the least penalised cost of y[0..j-1]; from[j]: where its last segment starts.
  const best = new Float64Array(n + 1).fill(Infinity);
  const from = new Int32Array(n + 1);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    for (let i = 0; i < j; i++) {
      const c = best[i] + cost(i, j - 1) + penalty;
      if (c < best[j]) {
        best[j] = c;
        from[j] = i;
      }
    }
  }
  const starts: number[] = [];
  for (let j = n; j > 0; j = from[j]) starts.unshift(from[j]);
  const steps: Step[] = [];
  for (let k = 1; k < starts.length; k++) {
    const end = k + 1 < starts.length ? starts[k + 1] : n;
    const before = median(y.slice(starts[k - 1], starts[k]));
    const after = median(y.slice(starts[k], end));
    if (Math.abs(after - before) < minRelative * Math.abs(before)) continue;
    steps.push({ at: starts[k], before, after, ratio: after / before });
  }
  return steps;
}
