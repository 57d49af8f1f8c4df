/**
 * The hot loop of the synthetic generator (`synthetic.ts`): draws samples into a chunk from the
 * generator's constants. Every value is the one the definition in `synthetic.ts` gives, bit for
 * bit (`tests/synthetic_pinned_test.ts`); what makes it fast:
 *
 * - the stream's xoshiro128** generator runs inline on local variables (the same step as
 *   `Rng.nextU32`);
 * - `round(exp(·))` of a dense count and the label's comparison with the teacher's probability
 *   start from a polynomial `exp` with a proven error bound, and call `Math.exp` only when that
 *   bound leaves the result undecided (a rounding boundary or the uniform falls within a relative
 *   1e-9 of the value), so the outcome is always what `Math.exp` gives.
 *
 * @module
 */
import { normalQuantile } from "../engine/rng.ts";
import type { BatchChunk } from "../engine/batch.ts";

/** Loading of every dense feature's normal on the sample's shared activity factor. */
export const DENSE_SHARED = 0.6;

const INV_U32 = 1 / 4294967296;

/** `Math.log(k)` for small `k`, so most dense values cost no logarithm. */
const LOG_TABLE = Float64Array.from({ length: 4096 }, (_, k) => Math.log(k));

/**
 * Everything a sample is drawn from: the data shape and the teacher. No array is proportional to
 * a table's rows. A plain object of typed arrays, so the hot loop sees one stable shape.
 */
export interface World {
  /** Dense features. */
  d: number;
  /** Tables. */
  tables: number;
  /** Dense shapes: `x = round(exp(mu + sigma * z)) - 1`, missing with probability `missing`. */
  denseMu: Float64Array;
  denseSigma: Float64Array;
  denseMissing: Float64Array;
  /** Scratch: the normals of one sample, `d + 1` (the last one is the shared factor). */
  normals: Float64Array;
  /** Rows of each table. */
  rows: Float64Array;
  invRows: Float64Array;
  /** Power-law exponent of each table. */
  exponent: Float64Array;
  /** Inverse CDF of each table: `rank = floor(exp(log(1 - u * zipfC) * zipfInv)) - 1`. */
  zipfC: Float64Array;
  zipfInv: Float64Array;
  /** Bijection of each table: `id = (rank * mulA + addC) mod rows`. */
  mulA: Float64Array;
  addC: Float64Array;
  /**
   * Head of each table's power law (ranks below `min(rows, ZIPF_HEAD)`), sampled by Walker's
   * alias method: entry `k` of table `t` lives at `headStart[t] + k` and holds the id of rank `k`,
   * its alias id and the probability of keeping `k`. `headMass[t]` is the head's probability.
   */
  headStart: Float64Array;
  headSize: Float64Array;
  headMass: Float64Array;
  headKeep: Float32Array;
  headId: Int32Array;
  headAlias: Int32Array;
  /** Teacher: per-table hash keys of the id effects and vectors. */
  keys: Int32Array;
  /** Teacher: per-table scale of the id effect (folds in the hash's 1/65536). */
  effectScale: Float64Array;
  /** Teacher: per-table scale of the id vectors (folds in the hash's 1/128). */
  vectorScale: Float64Array;
  /** Teacher: linear weights of the centred dense features. */
  denseWeight: Float64Array;
  /** Teacher: dense-to-rank-4 projection, `TEACHER_RANK * d`, row-major. */
  denseCross: Float64Array;
  /** Teacher: centre of each dense feature. */
  denseMean: Float64Array;
  /** Teacher: multiplier of every term (normalises the logit's spread, times `signal`). */
  signal: number;
}

/** murmur3's 32-bit finaliser: a bijection with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** Largest `|x|` {@linkcode expApprox} takes. */
export const EXP_APPROX_LIMIT = 80;

/**
 * Bound on `|expApprox(x) / e^x - 1|` for `|x| <= EXP_APPROX_LIMIT`: the degree-9 Taylor
 * polynomial on `|r| <= ln(2) / 2` is within 1.1e-11 of `e^r`, and reducing `x` and the rounding
 * of the terms add below 1e-13. Callers widen by {@linkcode EXP_MARGIN} to be safe.
 */
export const EXP_APPROX_ERROR = 2e-11;

/**
 * Relative margin that brackets `Math.exp(x)` around `expApprox(x)`: `Math.exp` is within one
 * ulp (2.2e-16) of `e^x`, `expApprox` within {@linkcode EXP_APPROX_ERROR}; 1e-9 is 50 times both.
 */
const EXP_MARGIN = 1e-9;
const EXP_BELOW = 1 - EXP_MARGIN;
const EXP_ABOVE = 1 + EXP_MARGIN;

/** `2^n` at index `n + 128`, for the reduced argument's exponent `n` (`|n| <= 116`). */
const POW2 = Float64Array.from({ length: 257 }, (_, k) => 2 ** (k - 128));

/**
 * `e^x` within a relative {@linkcode EXP_APPROX_ERROR} for `|x| <= EXP_APPROX_LIMIT`, without a
 * call out of the compiled loop: `x = n ln 2 + r`, `e^x = 2^n e^r`, `e^r` by its Taylor series.
 * Not equal to `Math.exp` in every bit; the hot loop uses it only to bracket `Math.exp`.
 */
export function expApprox(x: number): number {
  const n = Math.round(x * Math.LOG2E);
  const r = x - n * Math.LN2;
  const p = 1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 +
    r * (1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (1 / 362880)))))))));
  return POW2[n + 128] * p;
}

/**
 * Draws samples into chunk positions `[pos, end)` from the generator of state `state` (from
 * `Rng.stateWords`), first skipping `skip` draws: dense features, one id per table, the teacher's
 * logit and the label. Writes the teacher's probability to `probabilities` and its logit without
 * bias to `logits` when given.
 */
export function generateRun(
  w: World,
  state: Int32Array,
  skip: number,
  chunk: BatchChunk,
  pos: number,
  end: number,
  bias: number,
  probabilities: Float32Array | undefined,
  logits: Float64Array | undefined,
): void {
  const { d, tables, normals, denseMu, denseSigma, denseMissing } = w;
  const { rows, invRows, zipfC, zipfInv, mulA, addC } = w;
  const { headStart, headSize, headMass, headKeep, headId, headAlias } = w;
  const { keys, effectScale, vectorScale, denseWeight, denseCross, denseMean, signal } = w;
  const dense = chunk.dense;
  const labels = chunk.labels;
  const indices = chunk.indices;
  const d2 = 2 * d, d3 = 3 * d;
  const own = Math.sqrt(1 - DENSE_SHARED * DENSE_SHARED);
  // xoshiro128** as Rng.nextU32: each draw is `r`, then the state advances.
  let a = state[0], b = state[1], c = state[2], e = state[3];
  let r = 0, t9 = 0;
  for (let k = skip; k > 0; k--) {
    t9 = b << 9;
    c ^= a, e ^= b, b ^= c, a ^= e, c ^= t9, e = (e << 11) | (e >>> 21);
  }
  for (; pos < end; pos++) {
    // Normals by inverse CDF; u in (0, 1). normals[d] is the sample's shared activity factor.
    for (let k = 0; k <= d; k++) {
      r = Math.imul(b, 5), r = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
      t9 = b << 9;
      c ^= a, e ^= b, b ^= c, a ^= e, c ^= t9, e = (e << 11) | (e >>> 21);
      normals[k] = normalQuantile((r + 0.5) * INV_U32);
    }
    const shared = DENSE_SHARED * normals[d];
    let linear = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
    const base = pos * d;
    for (let j = 0; j < d; j++) {
      r = Math.imul(b, 5), r = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
      t9 = b << 9;
      c ^= a, e ^= b, b ^= c, a ^= e, c ^= t9, e = (e << 11) | (e >>> 21);
      // x + 1 = round(exp(...)) for a present count x >= 0, 1 for a missing one.
      let x1 = 1;
      if (r * INV_U32 >= denseMissing[j]) {
        const arg = denseMu[j] + denseSigma[j] * (shared + own * normals[j]);
        if (arg > -EXP_APPROX_LIMIT && arg < EXP_APPROX_LIMIT) {
          const y = expApprox(arg);
          x1 = Math.round(y * EXP_BELOW);
          if (x1 !== Math.round(y * EXP_ABOVE)) x1 = Math.round(Math.exp(arg));
        } else x1 = Math.round(Math.exp(arg));
        if (x1 < 1) x1 = 1;
      }
      const value = x1 < LOG_TABLE.length ? LOG_TABLE[x1] : Math.log(x1);
      dense[base + j] = value;
      // Teacher: linear term and the rank-4 projection of the centred dense features.
      const cv = value - denseMean[j];
      linear += denseWeight[j] * cv;
      q0 += denseCross[j] * cv;
      q1 += denseCross[d + j] * cv;
      q2 += denseCross[d2 + j] * cv;
      q3 += denseCross[d3 + j] * cv;
    }
    let effect = 0, squares = 0;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let t = 0; t < tables; t++) {
      r = Math.imul(b, 5), r = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
      t9 = b << 9;
      c ^= a, e ^= b, b ^= c, a ^= e, c ^= t9, e = (e << 11) | (e >>> 21);
      const u = r * INV_U32;
      let id: number;
      if (u < headMass[t]) {
        // Head: alias method on u rescaled to [0, headSize).
        const y = u / headMass[t] * headSize[t];
        const k = Math.floor(y);
        const at = headStart[t] + k;
        id = y - k < headKeep[at] ? headId[at] : headAlias[at];
      } else {
        // Tail: inverse CDF of the power law, then the rank-to-id bijection.
        const size = rows[t];
        let rank = Math.floor(Math.exp(Math.log(1 - u * zipfC[t]) * zipfInv[t])) - 1;
        if (rank >= size) rank = size - 1;
        else if (rank < headSize[t]) rank = headSize[t];
        const x = rank * mulA[t] + addC[t];
        id = x - Math.floor(x * invRows[t]) * size;
        if (id < 0) id += size;
        else if (id >= size) id -= size;
      }
      indices[t][pos] = id;
      // Teacher: the id's effect and vector, hashed from (seed, table, id).
      const h0 = fmix32(Math.imul(id, 0x9e3779b1) ^ keys[t]);
      // Sum of the two 16-bit halves: triangular on [-1, 1) after scaling, std 0.41.
      effect += effectScale[t] * ((h0 & 0xffff) + (h0 >>> 16) - 65535);
      // The 4 signed bytes of a second hash: uniform on [-1, 1] after scaling, std 0.58.
      const h1 = fmix32(h0 ^ 0x68e31da4);
      const scale = vectorScale[t];
      const v0 = (((h1 << 24) >> 24) + 0.5) * scale;
      const v1 = (((h1 << 16) >> 24) + 0.5) * scale;
      const v2 = (((h1 << 8) >> 24) + 0.5) * scale;
      const v3 = ((h1 >> 24) + 0.5) * scale;
      s0 += v0;
      s1 += v1;
      s2 += v2;
      s3 += v3;
      squares += v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3;
    }
    // Σ_{a<b} <v_a, v_b> = (|Σ v|² - Σ |v|²) / 2, and the dense × categorical <q, Σ v>.
    const pairs = 0.5 * (s0 * s0 + s1 * s1 + s2 * s2 + s3 * s3 - squares);
    const cross = q0 * s0 + q1 * s1 + q2 * s2 + q3 * s3;
    const raw = signal * (linear + effect + pairs + cross);
    if (logits !== undefined) logits[pos] = raw;
    r = Math.imul(b, 5), r = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
    t9 = b << 9;
    c ^= a, e ^= b, b ^= c, a ^= e, c ^= t9, e = (e << 11) | (e >>> 21);
    const u = r * INV_U32;
    const z = -(bias + raw);
    if (probabilities === undefined && z > -EXP_APPROX_LIMIT && z < EXP_APPROX_LIMIT) {
      // The label is u < 1 / (1 + Math.exp(z)); decided from the bracket where it can be.
      const y = expApprox(z);
      if (u < 1 / (1 + y * EXP_ABOVE)) labels[pos] = 1;
      else if (u >= 1 / (1 + y * EXP_BELOW)) labels[pos] = 0;
      else labels[pos] = u < 1 / (1 + Math.exp(z)) ? 1 : 0;
    } else {
      const p = 1 / (1 + Math.exp(z));
      labels[pos] = u < p ? 1 : 0;
      if (probabilities !== undefined) probabilities[pos] = p;
    }
  }
}
