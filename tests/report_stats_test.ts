import assert from "node:assert/strict";
import { Rng } from "../engine/rng.ts";
import {
  describeSample,
  excludeWarmup,
  flagOutliers,
  MAD_TO_SIGMA,
  median,
  medianAbsoluteDeviation,
  medianInterval,
  medianIntervalFromSummary,
  normalQuantile,
  ratioFromIntervals,
  ratioFromSummaries,
  ratioOfMedians,
  spreadOf,
} from "../record/stats.ts";

const close = (got: number, want: number, tol: number, what = "") =>
  assert.ok(Math.abs(got - want) <= tol, `${what} ${got} vs ${want} (tol ${tol})`);

/** Exact binomial(n, 1/2) CDF by summation, for checking the order-statistic interval. */
function binomCdf(n: number, k: number): number {
  let p = Math.pow(0.5, n), sum = 0;
  for (let i = 0; i <= k; i++) {
    sum += p;
    p *= (n - i) / (i + 1);
  }
  return sum;
}

Deno.test("median(), medianAbsoluteDeviation() and excludeWarmup() on small samples", () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(medianAbsoluteDeviation([1, 2, 3, 4, 100]), 1);
  assert.deepEqual(Array.from(excludeWarmup([9, 9, 1, 2, 3], 2)), [1, 2, 3]);
  assert.deepEqual(Array.from(excludeWarmup([1], 5)), []);
  assert.throws(() => excludeWarmup([1], -1), RangeError);
  assert.throws(() => median([1, NaN]), /NaN at index 1/);
});

Deno.test("normalQuantile() matches the standard normal's quantiles", () => {
  close(normalQuantile(0.975), 1.959963985, 1e-8);
  close(normalQuantile(0.5), 0, 1e-12);
  close(normalQuantile(0.01), -2.326347874, 1e-8);
  assert.throws(() => normalQuantile(1), RangeError);
});

Deno.test("medianInterval() picks the tightest order statistics with exact binomial coverage >= 95%", () => {
  const ci = medianInterval(Array.from({ length: 100 }, (_, i) => i));
  assert.deepEqual([ci.lo, ci.hi], [39, 60]);
  for (let n = 6; n <= 300; n += 7) {
    const x = Array.from({ length: n }, (_, i) => i);
    const c = medianInterval(x);
    const r = c.lo + 1; // 1-based order statistic
    assert.equal(c.hi, n - r, `n=${n} symmetric`);
    const coverage = 1 - 2 * binomCdf(n, r - 1);
    close(c.coverage, coverage, 1e-9, `n=${n} coverage`);
    assert.ok(coverage >= 0.95, `n=${n} coverage ${coverage}`);
    if (r + 1 <= n / 2) {
      assert.ok(1 - 2 * binomCdf(n, r) < 0.95, `n=${n}: r=${r} is the largest`);
    }
  }
  const small = medianInterval([3, 1, 2, 5, 4]);
  assert.deepEqual([small.lo, small.hi], [1, 5]);
  close(small.coverage, 1 - 2 / 32, 1e-12, "n=5");
  const big = medianInterval(Array.from({ length: 20_000 }, (_, i) => i));
  assert.ok(big.hi - big.lo < 300 && big.lo < 10_000 && big.hi > 10_000);
});

Deno.test("medianInterval() covers the true median of skewed data about 95% of the time", () => {
  const rng = new Rng(11, 3);
  const trueMedian = Math.LN2; // exponential(1)
  let hits = 0;
  const trials = 2000;
  for (let t = 0; t < trials; t++) {
    const x = Array.from({ length: 40 }, () => -Math.log(1 - rng.next()));
    const ci = medianInterval(x);
    if (ci.lo <= trueMedian && trueMedian <= ci.hi) hits++;
  }
  const rate = hits / trials;
  assert.ok(rate >= 0.94 && rate <= 0.99, `coverage ${rate}`);
});

Deno.test("flagOutliers() flags only values above median + k·1.4826·MAD, none when MAD is 0", () => {
  const x = [10, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 30];
  const out = flagOutliers(x);
  const m = median(x), mad = medianAbsoluteDeviation(x);
  close(out.threshold, m + 5 * MAD_TO_SIGMA * mad, 1e-12);
  assert.deepEqual(out.indices, [7]);
  assert.deepEqual(flagOutliers([1, 2, 3, 4, 5, 6, 7, 8, 9, -100]).indices, []);
  assert.deepEqual(flagOutliers([5, 5, 5, 9]).indices, []);
  assert.equal(flagOutliers([5, 5, 5, 9]).threshold, Infinity);
});

Deno.test("describeSample() excludes warm-up, summarises, and warns with remedies", () => {
  const rng = new Rng(5);
  const x = [
    ...Array.from({ length: 10 }, () => 50),
    80,
    ...Array.from({ length: 200 }, () => 10 + rng.normal() * 0.2),
  ];
  const s = describeSample(x, { warmup: 10 });
  assert.equal(s.n, 201);
  assert.equal(s.warmup, 10);
  close(s.median, 10, 0.05);
  assert.ok(s.ci.lo <= s.median && s.median <= s.ci.hi);
  assert.equal(s.outliers, 1);
  assert.ok(s.warnings.some((w) => /rerun on a quiet machine/.test(w)));
  assert.ok(s.warnings.some((w) => /raise the warm-up/.test(w)));
  const tiny = describeSample([1, 2, 3]);
  assert.ok(tiny.warnings.some((w) => /only 3 samples/.test(w)));
  const none = describeSample([1, 2], { warmup: 2 });
  assert.equal(none.n, 0);
  assert.ok(Number.isNaN(none.median));
});

Deno.test("ratioOfMedians() is reproducible and its interval brackets the true ratio", () => {
  const rng = new Rng(9);
  const b = Array.from({ length: 300 }, () => 10 * (1 + 0.05 * rng.normal()));
  const a = Array.from({ length: 300 }, () => 20 * (1 + 0.05 * rng.normal()));
  const r1 = ratioOfMedians(a, b);
  const r2 = ratioOfMedians(a, b);
  assert.deepEqual(r1, r2);
  assert.equal(r1.method, "bootstrap");
  assert.ok(r1.lo < 2 && 2 < r1.hi, `${r1.lo} ${r1.hi}`);
  assert.ok(r1.hi - r1.lo < 0.1);
  close(r1.ratio, median(a) / median(b), 1e-12);
  const zero = ratioOfMedians([1, 2], [0, 0, 0]);
  assert.ok(Number.isNaN(zero.ratio) && zero.method === "none");
});

Deno.test("ratioFromSummaries() and ratioFromIntervals() agree with the bootstrap on large samples", () => {
  const rng = new Rng(21);
  const b = Array.from({ length: 2000 }, () => 8 + rng.normal());
  const a = Array.from({ length: 2000 }, () => 12 + 1.5 * rng.normal());
  const boot = ratioOfMedians(a, b, { resamples: 400 });
  const sum = (x: number[]) => ({
    median: median(x),
    mad: medianAbsoluteDeviation(x),
    n: x.length,
  });
  const fromSum = ratioFromSummaries(sum(a), sum(b));
  const fromCi = ratioFromIntervals(
    { median: median(a), ci: medianInterval(a) },
    { median: median(b), ci: medianInterval(b) },
  );
  for (const r of [fromSum, fromCi]) {
    close(r.ratio, boot.ratio, 1e-12);
    close(r.lo, boot.lo, 0.02, "lo");
    close(r.hi, boot.hi, 0.02, "hi");
  }
  const ci = medianIntervalFromSummary(sum(b));
  assert.ok(ci.lo < median(b) && median(b) < ci.hi);
  assert.equal(ratioFromSummaries({ median: 0, mad: 0, n: 5 }, sum(b)).method, "none");
});

Deno.test("spreadOf() gives mean, sample sd and range, skipping undefined", () => {
  const s = spreadOf([1, undefined, 3])!;
  assert.deepEqual([s.n, s.mean, s.min, s.max], [2, 2, 1, 3]);
  close(s.sd, Math.SQRT2, 1e-12);
  assert.equal(spreadOf([undefined]), undefined);
});
