/**
 * The synthetic generator's fast paths (`data/synthetic_draw.ts`): the polynomial `exp` and `log`
 * stay within their error bounds, and each bracketed decision (a dense count, a tail rank, a
 * label) equals the one `Math.exp` and `Math.log` give, at random points and at the adversarial
 * ones next to a rounding boundary, where the bracket cannot decide and `Math.exp` must.
 */
import assert from "node:assert/strict";
import {
  clickOf,
  EXP_APPROX_ERROR,
  EXP_APPROX_LIMIT,
  expApprox,
  flooredPower,
  LOG_APPROX_ERROR,
  logApprox,
  roundedExp,
} from "../data/synthetic_draw.ts";
import { Rng } from "../engine/rng.ts";

const bits = new Float64Array(1);
const word = new BigInt64Array(bits.buffer);

/** The double `steps` ulps above (below, when negative) the positive double `x`. */
function ulpsAway(x: number, steps: number): number {
  bits[0] = x;
  word[0] += BigInt(steps);
  return bits[0];
}

/** `x` and the doubles up to `reach` ulps either side of it. */
function around(x: number, reach = 3): number[] {
  const out: number[] = [];
  for (let k = -reach; k <= reach; k++) out.push(ulpsAway(x, k));
  return out;
}

Deno.test("expApprox is within its bound of Math.exp, at random and at the reduction's edges", () => {
  const rng = new Rng(1, 2, 3);
  const points: number[] = [];
  for (let i = 0; i < 200_000; i++) points.push((2 * rng.next() - 1) * EXP_APPROX_LIMIT);
  // The edges of the reduction, where |r| is largest: x = (k + 1/2) ln(2) / 8.
  for (let k = -924; k < 924; k++) points.push(...around((k + 0.5) * Math.LN2 / 8, 1));
  for (const x of points) {
    if (Math.abs(x) >= EXP_APPROX_LIMIT) continue;
    const error = Math.abs(expApprox(x) / Math.exp(x) - 1);
    assert.ok(error <= EXP_APPROX_ERROR, `expApprox(${x}) is off by ${error}`);
  }
});

Deno.test("logApprox is within its bound of Math.log and NaN outside its range", () => {
  const rng = new Rng(4, 5, 6);
  const points: number[] = [];
  for (let i = 0; i < 100_000; i++) points.push(rng.next() + 1e-3, Math.exp(120 * rng.next() - 60));
  // Cell edges of the mantissa table and powers of two.
  for (let k = 0; k <= 128; k++) {
    points.push(...around(1 + k / 128, 1), ...around(0.5 + k / 256, 1));
  }
  for (let e = -128; e <= 128; e++) points.push(2 ** e);
  for (const x of points) {
    const error = Math.abs(logApprox(x) - Math.log(x));
    assert.ok(error <= LOG_APPROX_ERROR, `logApprox(${x}) is off by ${error}`);
  }
  for (const x of [0, -1, 2 ** -200, 2 ** 129, Infinity, NaN]) {
    assert.ok(Number.isNaN(logApprox(x)), `logApprox(${x}) should be NaN`);
  }
});

Deno.test("roundedExp is Math.round(Math.exp(x)), also next to every half-integer", () => {
  const rng = new Rng(7, 8, 9);
  const points: number[] = [];
  for (let i = 0; i < 100_000; i++) points.push(60 * rng.next() - 30);
  // exp(x) within ulps of k + 1/2: only Math.exp can tell which way it rounds.
  for (let k = 0; k < 70_000; k += k < 5000 ? 1 : 97) points.push(...around(Math.log(k + 0.5)));
  points.push(-EXP_APPROX_LIMIT, EXP_APPROX_LIMIT, -100, 100, 700);
  for (const x of points) {
    assert.equal(roundedExp(x), Math.round(Math.exp(x)), `roundedExp(${x})`);
  }
});

Deno.test("flooredPower is floor(exp(log(v) * power)), also next to every integer", () => {
  const rng = new Rng(10, 11, 12);
  const cases: [number, number][] = [];
  for (let i = 0; i < 100_000; i++) {
    cases.push([0.01 + 0.99 * rng.next(), -5 - 15 * rng.next()]);
  }
  // v with v^power within ulps of an integer k: v = k^(1 / power).
  for (const power of [-20, -8.7, -5]) {
    for (let k = 1; k < 1e7; k = Math.ceil(k * 1.07)) {
      for (const v of around(Math.exp(Math.log(k) / power))) cases.push([v, power]);
    }
  }
  for (const [v, power] of cases) {
    assert.equal(
      flooredPower(v, power),
      Math.floor(Math.exp(Math.log(v) * power)),
      `flooredPower(${v}, ${power})`,
    );
  }
});

Deno.test("clickOf is u < 1 / (1 + Math.exp(z)), also for u next to the probability", () => {
  const rng = new Rng(13, 14, 15);
  const cases: [number, number][] = [];
  for (let i = 0; i < 100_000; i++) cases.push([rng.next(), 16 * rng.next() - 8]);
  for (let i = 0; i < 20_000; i++) {
    const z = 40 * rng.next() - 20;
    const p = 1 / (1 + Math.exp(z));
    for (const u of around(p, 2)) cases.push([u, z]);
  }
  cases.push([0.5, -100], [0.5, 100], [0, 90], [1 - 2 ** -32, -90]);
  for (const [u, z] of cases) {
    assert.equal(clickOf(u, z), u < 1 / (1 + Math.exp(z)) ? 1 : 0, `clickOf(${u}, ${z})`);
  }
});
