/**
 * Seeded random streams. One run seed drives every stream; a stream is named by a path of
 * integers (for example `[seed, STREAM.init, table]`), so streams are independent of the order in
 * which they are used and any one can be regenerated on its own.
 *
 * @module
 */

/** Well-known stream ids, so that the same seed never feeds two purposes. */
export const STREAM = {
  init: 1,
  trainData: 2,
  testData: 3,
  teacher: 4,
  shuffle: 5,
} as const;

/** Mixes 32-bit words into one well-distributed 32-bit word (murmur3 finaliser chain). */
export function hash32(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    h = (h + 0x27d4eb2f) | 0;
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/**
 * xoshiro128** generator: fast, 128-bit state, good statistical quality for simulation.
 * Seeded from a stream path through {@linkcode hash32}.
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** Creates the generator of the stream named by `path`. */
  constructor(...path: number[]) {
    // Held as int32 (same bits), so the state never leaves V8's small-integer fast path.
    this.#a = hash32(...path, 1) | 0;
    this.#b = hash32(...path, 2) | 0;
    this.#c = hash32(...path, 3) | 0;
    this.#d = hash32(...path, 4) | 1;
  }

  /**
   * The generator's state as four int32 words `[a, b, c, d]`, for a hot loop that runs the same
   * step inline on local variables (as `fillUniform` does) and so draws the same values.
   */
  stateWords(): Int32Array {
    return Int32Array.of(this.#a, this.#b, this.#c, this.#d);
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * Fills `out` with uniform values in `[lo, hi)` drawn from the same stream as `next()`, with
   * the generator inlined (table initialisation fills billions of values).
   */
  fillUniform(out: Float32Array, lo: number, hi: number): void {
    let a = this.#a, b = this.#b, c = this.#c, d = this.#d;
    // 24 bits of each draw (all a float32 in [lo, hi) can hold); staying in the int32 range
    // keeps V8 on its fast path (a uint32 above 2^31 deoptimises the loop).
    const scale = (hi - lo) / 16777216;
    for (let i = 0; i < out.length; i++) {
      const r = Math.imul(b, 5);
      const x = (r << 7) | (r >>> 25);
      out[i] = lo + (Math.imul(x, 9) >>> 8) * scale;
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = (d << 11) | (d >>> 21);
    }
    this.#a = a, this.#b = b, this.#c = c, this.#d = d;
  }

  /** Standard normal (Box-Muller; one of the pair is discarded for simplicity). */
  normal(): number {
    let u = this.next();
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Inverse of the standard normal CDF: the quantile of `p` in (0, 1), Acklam's rational
 * approximation (relative error below 1.2e-9). Turns one uniform into one normal, cheaper than
 * Box-Muller's log, sqrt and cos; the statistics (`record/stats.ts`) take their z values from it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalQuantile } from "./rng.ts";
 * assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-6);
 * ```
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`Expected p in (0, 1) but found ${p}`);
  if (p < 0.02425 || p > 0.97575) {
    const q = Math.sqrt(-2 * Math.log(p < 0.5 ? p : 1 - p));
    const x = (((((-7.784894002430293e-3 * q - 3.223964580411365e-1) * q - 2.400758277161838) * q -
              2.549732539343734) * q + 4.374664141464968) * q + 2.938163982698783) /
      ((((7.784695709041462e-3 * q + 3.224671290700398e-1) * q + 2.445134137142996) * q +
            3.754408661907416) * q + 1);
    return p < 0.5 ? x : -x;
  }
  const q = p - 0.5;
  const r = q * q;
  return (((((-3.969683028665376e1 * r + 2.209460984245205e2) * r - 2.759285104469687e2) * r +
            1.38357751867269e2) * r - 3.066479806614716e1) * r + 2.506628277459239) *
    q /
    (((((-5.447609879822406e1 * r + 1.615858368580409e2) * r - 1.556989798598866e2) * r +
              6.680131188771972e1) * r - 1.328068155288572e1) * r + 1);
}
