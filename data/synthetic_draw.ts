/**
 * The hot loop of the synthetic generator (`synthetic.ts`): draws samples into a chunk from the
 * generator's constants. Every value is the one the definition in `synthetic.ts` gives, bit for
 * bit (`tests/synthetic_pinned_test.ts` holds digests of chunks recorded before this loop was
 * made fast). What makes it about twice as fast as drawing sample by sample:
 *
 * - The stream's xoshiro128** generator runs inline on local variables (the step of
 *   `Rng.nextU32`), and a run's draws are made first, then consumed a feature or a table at a
 *   time across the samples (loop constants in registers, one table's alias head in cache).
 * - No unpredictable branch where a coin decides: an alias draw, whether a draw is in a table's
 *   head and whether a dense value is present are taken with `floor` of a difference (its sign
 *   is exact); tail draws and present values are listed and drawn after.
 * - `Math.exp`/`Math.log` only where a cheap bracket cannot decide: a dense count
 *   `round(exp(·))`, a tail rank `floor(exp(log(·) · power))` and a label `u < 1 / (1 + exp(·))`
 *   come from polynomial `exp`/`log` with proven error bounds, widened by a relative 1e-9; when
 *   the bracket holds a rounding boundary (or `u`) the exact expression decides
 *   (`tests/synthetic_draw_test.ts` tries the points next to every boundary). `Math.round` is
 *   slow in V8; the brackets use `floor(v + 0.5)`, which agrees with it away from half-integers.
 * - A missing dense value's normal, which the value does not use, is not computed.
 * - Each pass is its own function, so the normal quantile and the polynomials inline and no
 *   double is boxed.
 *
 * @module
 */
import { normalQuantile } from "../engine/rng.ts";
import type { BatchChunk } from "../engine/batch.ts";

/** Loading of every dense feature's normal on the sample's shared activity factor. */
const DENSE_SHARED = 0.6;

const INV_U32 = 1 / 4294967296;

/**
 * `Math.log(max(k, 1))` for small `k`, so most dense values cost no logarithm, and a count that
 * rounds to 0 gets log(1) without a branch (the clamp to 1 is as hard to predict as a coin for
 * the features with a small median).
 */
const LOG_TABLE = Float64Array.from({ length: 4096 }, (_, k) => Math.log(Math.max(k, 1)));

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
 * Bound on `|expApprox(x) / e^x - 1|` for `|x| <= EXP_APPROX_LIMIT`: the degree-5 Taylor
 * polynomial on `|r| <= ln(2) / 16` is within 9.7e-12 of `e^r`, and reducing `x` and the
 * rounding of the terms add below 1e-13. Callers widen by {@linkcode EXP_MARGIN} to be safe.
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

/** `2^(k / 8)` for `k` in `[0, 8)`. */
const POW2_EIGHTHS = Float64Array.from({ length: 8 }, (_, k) => 2 ** (k / 8));

/**
 * `e^x` within a relative {@linkcode EXP_APPROX_ERROR} for `|x| <= EXP_APPROX_LIMIT`, without a
 * call out of the compiled loop: `x = (m / 8) ln 2 + r` with `|r| <= ln(2) / 16`, `e^x =
 * 2^(m >> 3) 2^((m & 7) / 8) e^r`, `e^r` by its Taylor polynomial of degree 5 (the rest is below
 * 1e-11). Not equal to `Math.exp` in every bit; the hot loop uses it only to bracket `Math.exp`.
 */
export function expApprox(x: number): number {
  const m = Math.floor(x * (8 * Math.LOG2E) + 0.5) | 0;
  const r = x - m * (Math.LN2 / 8);
  const r2 = r * r;
  const p = 1 + r + r2 * (1 / 2 + r * (1 / 6)) + r2 * r2 * (1 / 24 + r * (1 / 120));
  return POW2[(m >> 3) + 128] * POW2_EIGHTHS[m & 7] * p;
}

/**
 * Bound on `|logApprox(x) - ln(x)|`: the series' rest is below 1e-15, the rest is rounding, a few
 * ulps of `|ln(x)| < 90`.
 */
export const LOG_APPROX_ERROR = 1e-13;

/** A double's bits, to read its exponent and leading mantissa bits (the high word). */
const BITS_F64 = new Float64Array(1);
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const BITS_HI = new Int32Array(BITS_F64.buffer, LITTLE_ENDIAN ? 4 : 0, 1);

/** `ln(c_k)` and `1 / c_k` for the centres `c_k = 1 + (k + 0.5) / 128` of `[1, 2)`. */
const LOG_CENTRE = Float64Array.from({ length: 128 }, (_, k) => Math.log(1 + (k + 0.5) / 128));
const INV_CENTRE = Float64Array.from({ length: 128 }, (_, k) => 1 / (1 + (k + 0.5) / 128));

/**
 * `ln(x)` within {@linkcode LOG_APPROX_ERROR} for `x` in `[2^-128, 2^129)` (NaN for any other
 * `x`), without a call out of the compiled loop: `x = 2^e m` with `m` in `[1, 2)` read from its
 * bits, `m = c (1 + t)` with `c` the centre of `m`'s 1/128 and `|t| < 1/256`, `ln(x) = e ln 2 +
 * ln(c) + ln(1 + t)` by its series to `t^5`. Brackets `Math.log` like {@linkcode expApprox}.
 */
export function logApprox(x: number): number {
  BITS_F64[0] = x;
  const hi = BITS_HI[0];
  const e = (hi >>> 20) - 1023;
  const k = (hi >>> 13) & 127;
  const t = x * POW2[128 - e] * INV_CENTRE[k] - 1;
  const t2 = t * t;
  const series = t - t2 * (1 / 2 - t * (1 / 3)) + t2 * t2 * (-1 / 4 + t * (1 / 5));
  return e * Math.LN2 + LOG_CENTRE[k] + series;
}

/**
 * `Math.round(Math.exp(x))`, from the bracket `expApprox(x) (1 ± EXP_MARGIN)` where both ends
 * round alike (`floor(v + 0.5)` is `Math.round(v)` unless `v` is within an ulp of a half-integer,
 * and then the bracket straddles it), else from `Math.exp`.
 */
export function roundedExp(x: number): number {
  if (x > -EXP_APPROX_LIMIT && x < EXP_APPROX_LIMIT) {
    const y = expApprox(x);
    const low = Math.floor(y * EXP_BELOW + 0.5);
    if (low === Math.floor(y * EXP_ABOVE + 0.5)) return low;
  }
  return Math.round(Math.exp(x));
}

/**
 * `Math.floor(Math.exp(Math.log(v) * power))` for `|power| < 100`, bracketed as
 * {@linkcode roundedExp} is: `logApprox` moves the exponent by below 1e-11.
 */
export function flooredPower(v: number, power: number): number {
  const x = logApprox(v) * power;
  if (x > -EXP_APPROX_LIMIT && x < EXP_APPROX_LIMIT) {
    const y = expApprox(x);
    const low = Math.floor(y * EXP_BELOW);
    if (low === Math.floor(y * EXP_ABOVE)) return low;
  }
  return Math.floor(Math.exp(Math.log(v) * power));
}

/**
 * `u < 1 / (1 + Math.exp(z))` as 1 or 0, from the bracket of that probability where `u` is
 * outside it (`1 / (1 + y)` falls as `y` grows), else from `Math.exp`.
 */
export function clickOf(u: number, z: number): number {
  if (z > -EXP_APPROX_LIMIT && z < EXP_APPROX_LIMIT) {
    const y = expApprox(z);
    // 1 / (1 + y) is within a relative 2.1e-11 of the exact expression's value (a relative
    // error in y moves 1 / (1 + y) by at most as much), so the margin brackets that value.
    const p = 1 / (1 + y);
    const low = p * EXP_BELOW, high = p * EXP_ABOVE;
    // Without a branch on the coin: outside [low, high] the product is positive, and then
    // 0 - floor(u - low) is 1 below low, 0 above high (0 <= u < 1 and low <= 1).
    if ((u - low) * (u - high) > 0) return 0 - Math.floor(u - low);
  }
  return u < 1 / (1 + Math.exp(z)) ? 1 : 0;
}

/**
 * Scratch of {@linkcode generateRun} for up to `block` samples: the block's draws and each
 * sample's partial sums of the teacher, one column per sample.
 */
export interface RunScratch {
  /** Samples the scratch holds (the stride of `draws`). */
  block: number;
  /**
   * Distance between columns: `block` and 16 more, so that a column starts 17 cache lines after
   * the one before and the columns of one sample do not all fall in the same few cache sets.
   */
  stride: number;
  /** Draws per sample (the generator's `drawsPerSample`). */
  perSample: number;
  /** Draw `k` of sample `s` at `k * stride + s`. */
  draws: Uint32Array;
  /** Samples listed by a pass: a dense feature's present values, a table's tail draws. */
  listed: Int32Array;
  /** The shared activity factor times `DENSE_SHARED`. */
  shared: Float64Array;
  /** The current dense feature's values. */
  values: Float64Array;
  /** The exponents of the current dense feature's present values, in listed order. */
  args: Float64Array;
  /** Each sample's teacher logit without bias. */
  logit: Float64Array;
  /** Id of table `t` of sample `s` at `t * stride + s`. */
  ids: Int32Array;
  /** The teacher's partial sums over the dense features: linear, the rank-4 projection. */
  linear: Float64Array;
  q0: Float64Array;
  q1: Float64Array;
  q2: Float64Array;
  q3: Float64Array;
}

/** Scratch for runs of up to `block` samples of `drawsPerSample` draws each. */
export function allocateRunScratch(
  block: number,
  drawsPerSample: number,
  tables: number,
): RunScratch {
  const f64 = () => new Float64Array(block);
  const stride = block + 16;
  return {
    block,
    stride,
    perSample: drawsPerSample,
    draws: new Uint32Array(stride * drawsPerSample),
    listed: new Int32Array(block),
    ids: new Int32Array(stride * tables),
    shared: f64(),
    values: f64(),
    args: f64(),
    logit: f64(),
    linear: f64(),
    q0: f64(),
    q1: f64(),
    q2: f64(),
    q3: f64(),
  };
}

/**
 * Draws samples into chunk positions `[pos, end)` (at most `scratch.block` of them) from the
 * generator of state `state` (from `Rng.stateWords`), first skipping `skip` draws: dense
 * features, one id per table, the teacher's logit and the label. Writes the teacher's
 * probability to `probabilities` and its logit without bias to `logits` when given.
 *
 * A sample's draws are, in order: `d + 1` normals (the last the shared factor), `d` uniforms
 * (missing or not), one uniform per table, one for the label. They are drawn for the whole run
 * first, then consumed a feature (a table) at a time across the samples, so each loop has its
 * constants in registers, a table's alias head stays in cache and the samples' long dependency
 * chains overlap. Each sample's sums still add their terms in feature (table) order, so every
 * value is the same as drawing sample by sample.
 */
export function generateRun(
  w: World,
  scratch: RunScratch,
  state: Int32Array,
  skip: number,
  chunk: BatchChunk,
  pos: number,
  end: number,
  bias: number,
  probabilities: Float32Array | undefined,
  logits: Float64Array | undefined,
): void {
  const n = end - pos;
  if (n > scratch.block) {
    throw new RangeError(`Expected at most ${scratch.block} samples but found ${n}`);
  }
  // Separate functions, so that each loop is compiled with the registers to itself.
  drawColumns(state, skip, scratch, n);
  sharedColumn(w.d, scratch, n);
  denseColumns(w, scratch, chunk.dense, pos, n);
  tableColumns(w, scratch, chunk.indices, pos, n);
  teacherLabels(w, scratch, chunk.labels, pos, n, bias, probabilities, logits);
}

/** The run's draws, as Rng.nextU32 (xoshiro128**) gives them, sample by sample. */
function drawColumns(
  state: Int32Array,
  skip: number,
  scratch: RunScratch,
  n: number,
): void {
  const { stride, draws, perSample } = scratch;
  let a = state[0], b = state[1], c = state[2], e = state[3];
  for (let k = skip; k > 0; k--) {
    const t9 = b << 9;
    c ^= a, e ^= b, b ^= c, a ^= e, c ^= t9, e = (e << 11) | (e >>> 21);
  }
  for (let s = 0; s < n; s++) {
    for (let k = s; k < perSample * stride; k += stride) {
      const r = Math.imul(b, 5);
      draws[k] = Math.imul((r << 7) | (r >>> 25), 9);
      const t9 = b << 9;
      c ^= a, e ^= b, b ^= c, a ^= e, c ^= t9, e = (e << 11) | (e >>> 21);
    }
  }
}

/**
 * Each sample's shared activity factor, a normal by inverse CDF of draw `d` (u in (0, 1)), times
 * `DENSE_SHARED`.
 */
function sharedColumn(d: number, scratch: RunScratch, n: number): void {
  const { stride, draws, shared } = scratch;
  for (let s = 0, k = d * stride; s < n; s++, k++) {
    shared[s] = DENSE_SHARED * normalQuantile((draws[k] + 0.5) * INV_U32);
  }
}

/** The dense features (normals by inverse CDF) and the teacher's sums over them. */
function denseColumns(
  w: World,
  scratch: RunScratch,
  dense: Float32Array,
  pos: number,
  n: number,
): void {
  const { d, denseMu, denseSigma, denseMissing, denseWeight, denseCross, denseMean } = w;
  const { stride, draws, shared, values, listed: presentList, linear, q0, q1, q2, q3 } = scratch;
  const args = scratch.args;
  for (const sum of [linear, q0, q1, q2, q3]) sum.fill(0, 0, n);
  const own = Math.sqrt(1 - DENSE_SHARED * DENSE_SHARED);
  for (let j = 0; j < d; j++) {
    // u >= missing is draw >= missing * 2^32 (u is the draw times 2^-32, exactly).
    const mu = denseMu[j], sigma = denseSigma[j], missing = denseMissing[j] * 4294967296;
    const mean = denseMean[j], weight = denseWeight[j];
    const c0 = denseCross[j], c1 = denseCross[d + j];
    const c2 = denseCross[2 * d + j], c3 = denseCross[3 * d + j];
    const normalAt = j * stride, missingAt = (d + 1 + j) * stride;
    // The present values, listed without a branch (missing or not is as hard to predict as a
    // coin): 1 + floor((draw - missing) / 2^32) is 1 when present (the sign of a difference of
    // doubles is exact). A missing value is log(1) = 0; its normal, drawn all the same, is not
    // needed.
    let present = 0;
    for (let s = 0; s < n; s++) {
      values[s] = 0;
      presentList[present] = s;
      present = (present + 1 + Math.floor((draws[missingAt + s] - missing) * INV_U32)) | 0;
    }
    // The exponents, then their rounded exponentials, in two loops: apart, the normal
    // quantile's chain and the exponential's overlap better (~6% of a fill).
    for (let m = 0; m < present; m++) {
      const s = presentList[m];
      const normal = normalQuantile((draws[normalAt + s] + 0.5) * INV_U32);
      args[m] = mu + sigma * (shared[s] + own * normal);
    }
    for (let m = 0; m < present; m++) {
      // x + 1 = round(exp(...)) for a present count x >= 0.
      const x1 = roundedExp(args[m]);
      values[presentList[m]] = x1 < LOG_TABLE.length ? LOG_TABLE[x1] : Math.log(x1);
    }
    for (let s = 0; s < n; s++) {
      const value = values[s];
      dense[(pos + s) * d + j] = value;
      // Teacher: linear term and the rank-4 projection of the centred dense features.
      const cv = value - mean;
      linear[s] += weight * cv;
      q0[s] += c0 * cv;
      q1[s] += c1 * cv;
      q2[s] += c2 * cv;
      q3[s] += c3 * cv;
    }
  }
}

/** One id per table. */
function tableColumns(
  w: World,
  scratch: RunScratch,
  indices: Int32Array[],
  pos: number,
  n: number,
): void {
  const { d, tables, rows, invRows, zipfC, zipfInv, mulA, addC } = w;
  const { headStart, headSize, headMass, headKeep, headId, headAlias } = w;
  const { stride, draws, listed: tailList, ids } = scratch;
  for (let t = 0; t < tables; t++) {
    const mass = headMass[t], size = headSize[t], start = headStart[t] | 0, last = (size | 0) - 1;
    const idx = indices[t];
    const drawAt = (2 * d + 1 + t) * stride, idsAt = t * stride;
    // Every sample as a head draw, without branches (whether a draw is in the head is as hard
    // to predict as a coin): the alias method on u rescaled to [0, headSize). A tail draw reads
    // the last entry and is listed, to be drawn again below.
    let tails = 0;
    if (mass === 1) {
      // The whole table is the head (u / 1 is u): no tail draws.
      for (let s = 0; s < n; s++) {
        const y = draws[drawAt + s] * INV_U32 * size;
        const k = Math.min(y | 0, last);
        const at = (start + k) | 0;
        const keep = Math.floor(y - k - headKeep[at]);
        const alias = headAlias[at];
        ids[idsAt + s] = alias ^ ((headId[at] ^ alias) & keep);
      }
    } else {
      for (let s = 0; s < n; s++) {
        const u = draws[drawAt + s] * INV_U32;
        const y = u / mass * size;
        // y >= 0, so truncation is floor; int32 index arithmetic.
        const k = Math.min(y | 0, last);
        const at = (start + k) | 0;
        // floor((y - k) - keep) is -1 to keep rank k, 0 for its alias: a difference of doubles
        // is 0 only when they are equal, so its sign is exact. Likewise u - mass for a tail draw.
        const keep = Math.floor(y - k - headKeep[at]);
        const alias = headAlias[at];
        ids[idsAt + s] = alias ^ ((headId[at] ^ alias) & keep);
        tailList[tails] = s;
        tails = (tails + 1 + Math.floor(u - mass)) | 0;
      }
    }
    // The tail draws: inverse CDF of the power law, then the rank-to-id bijection.
    const tableRows = rows[t], inv = invRows[t], zc = zipfC[t], zi = zipfInv[t];
    const mul = mulA[t], add = addC[t];
    const fastTail = zi > -100 && zi < 100;
    for (let m = 0; m < tails; m++) {
      const s = tailList[m];
      const u = draws[drawAt + s] * INV_U32;
      const v = 1 - u * zc;
      let rank = (fastTail ? flooredPower(v, zi) : Math.floor(Math.exp(Math.log(v) * zi))) - 1;
      if (rank >= tableRows) rank = tableRows - 1;
      else if (rank < size) rank = size;
      const x = rank * mul + add;
      let id = x - Math.floor(x * inv) * tableRows;
      if (id < 0) id += tableRows;
      else if (id >= tableRows) id -= tableRows;
      ids[idsAt + s] = id;
    }
    idx.set(ids.subarray(idsAt, idsAt + n), pos);
  }
}

/** The teacher's logit of each sample and its label. */
function teacherLabels(
  w: World,
  scratch: RunScratch,
  labels: Float32Array,
  pos: number,
  n: number,
  bias: number,
  probabilities: Float32Array | undefined,
  logits: Float64Array | undefined,
): void {
  const { tables, keys, effectScale, vectorScale, signal } = w;
  const { stride, draws, ids, linear, q0, q1, q2, q3, logit, perSample } = scratch;
  const labelAt = (perSample - 1) * stride;
  for (let s = 0; s < n; s++) {
    // Teacher: each id's effect and vector, hashed from (seed, table, id).
    let effect = 0, squares = 0, v0 = 0, v1 = 0, v2 = 0, v3 = 0;
    for (let t = 0, k = s; t < tables; t++, k += stride) {
      const h0 = fmix32(Math.imul(ids[k], 0x9e3779b1) ^ keys[t]);
      // Sum of the two 16-bit halves: triangular on [-1, 1) after scaling, std 0.41.
      effect += effectScale[t] * ((h0 & 0xffff) + (h0 >>> 16) - 65535);
      // The 4 signed bytes of a second hash: uniform on [-1, 1] after scaling, std 0.58.
      const h1 = fmix32(h0 ^ 0x68e31da4);
      const scale = vectorScale[t];
      const w0 = (((h1 << 24) >> 24) + 0.5) * scale;
      const w1 = (((h1 << 16) >> 24) + 0.5) * scale;
      const w2 = (((h1 << 8) >> 24) + 0.5) * scale;
      const w3 = ((h1 >> 24) + 0.5) * scale;
      v0 += w0;
      v1 += w1;
      v2 += w2;
      v3 += w3;
      squares += w0 * w0 + w1 * w1 + w2 * w2 + w3 * w3;
    }
    // Σ_{a<b} <v_a, v_b> = (|Σ v|² - Σ |v|²) / 2, and the dense × categorical <q, Σ v>.
    const pairs = 0.5 * (v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3 - squares);
    const cross = q0[s] * v0 + q1[s] * v1 + q2[s] * v2 + q3[s] * v3;
    const raw = signal * (linear[s] + effect + pairs + cross);
    if (logits !== undefined) logits[pos + s] = raw;
    logit[s] = raw;
  }
  // The labels in a loop of their own: apart, the sums' chains and the bracket's overlap better.
  for (let s = 0; s < n; s++) {
    const u = draws[labelAt + s] * INV_U32;
    const z = -(bias + logit[s]);
    if (probabilities === undefined) labels[pos + s] = clickOf(u, z);
    else {
      const p = 1 / (1 + Math.exp(z));
      labels[pos + s] = u < p ? 1 : 0;
      probabilities[pos + s] = p;
    }
  }
}
