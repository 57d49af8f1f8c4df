/**
 * Synthetic Criteo-shaped click data: the built-in default data of the benchmark.
 *
 * Every sample has the shape of a Criteo Display Advertising sample:
 *
 * - Dense features modelled on Criteo's 13 integer columns: heavy-tailed non-negative counts
 *   (`round(exp(mu + sigma * z)) - 1`, the `z` of a sample sharing a common "activity" factor),
 *   some missing (→ 0), then `log(x + 1)` as Criteo preprocessing does.
 * - One categorical id per table (one-hot bags), Zipf-like: a rank is drawn by the inverse CDF of
 *   a continuous power law over `[1, rows + 1)` (exponent 1.05–1.2, per table) and mapped to an id
 *   by the bijection `(rank * a + c) mod rows`, so no memory proportional to a table is needed.
 * - A click label drawn from a hidden teacher: `logit = bias + linear(dense) + Σ effect(t, id) +
 *   Σ_{a<b} <v(a, id_a), v(b, id_b)> + <W · dense, Σ v(t, id_t)>`, with the per-id effect and
 *   4-vector `v` hashed from `(seed, table, id)`. Every id, however rare, has its own effect, so a
 *   model can memorise the long tail and overfit as it does on Criteo. The logit's spread is
 *   normalised and the bias bisected on a calibration sample, so that every seed and spec is about
 *   as hard and the mean click probability is the configured click rate.
 *
 * Randomness: one seed drives everything. The teacher and the data shape come from streams under
 * `[seed, STREAM.teacher, ...]`; sample `i` of the train (test) stream comes from the generator
 * `Rng(seed, STREAM.trainData (testData), floor(i / SYNTHETIC_BLOCK))`, advanced past the block's
 * earlier samples (each sample draws a fixed number of values). So any range of any stream can be
 * regenerated on its own, and the output does not depend on how a range is split into calls.
 *
 * @module
 */
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import { type ClickMetrics, clickMetrics } from "../engine/metrics.ts";
import { hash32, Rng, STREAM } from "../engine/rng.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { allocateRunScratch, generateRun, type RunScratch, type World } from "./synthetic_draw.ts";

/**
 * Samples per generator block: sample `i` of a stream is drawn from the generator of block
 * `floor(i / SYNTHETIC_BLOCK)`.
 */
export const SYNTHETIC_BLOCK = 256;

/** Rank of the teacher's per-id vectors (the low-rank pairwise interaction). */
export const TEACHER_RANK = 4;

/** Largest sample index (exclusive) a stream can address: 2^32 blocks. */
export const MAX_SYNTHETIC_SAMPLES = 2 ** 32 * SYNTHETIC_BLOCK;

/** Which stream of samples to draw: the training stream or the held-out test stream. */
export type SyntheticStream = "train" | "test";

/** Options of {@linkcode SyntheticCriteo}. */
export interface SyntheticOptions {
  /** Run seed, an integer in `[0, 2^32)`; it drives the teacher, the data shape and the streams. */
  seed: number;
  /** Mean click probability the teacher's bias is calibrated to, in (0, 1). Default 0.25. */
  clickRate?: number;
  /**
   * Spread of the teacher's logit relative to the default: its standard deviation is
   * `1.4 * signal` (at 1, a ceiling AUC near 0.81 and log loss near 0.43 at a 0.25 click rate).
   * Larger is easier to predict; 0 gives labels independent of the features. Default 1.
   */
  signal?: number;
}

/**
 * The teacher's own scores on the test stream (accuracy, ROC AUC and log loss of its true
 * probabilities): the best any model can expect.
 */
export interface TeacherCeiling extends ClickMetrics {
  /** Test samples scored (samples `[0, samples)` of the test stream). */
  samples: number;
  /** Fraction of clicks among the labels. */
  clickRate: number;
  /** Mean of the teacher's true probabilities. */
  meanProbability: number;
}

/**
 * Dense-feature shapes modelled on Criteo Kaggle's integer columns I1–I13 (medians, tails and
 * missing rates approximately as in the data): `x = round(exp(mu + sigma * z)) - 1`, missing with
 * probability `missing`. Features beyond 13 cycle through this list.
 */
const CRITEO_DENSE: readonly { mu: number; sigma: number; missing: number }[] = [
  { mu: 0.7, sigma: 1.2, missing: 0.45 },
  { mu: 1.4, sigma: 2.0, missing: 0.0 },
  { mu: 2.1, sigma: 1.5, missing: 0.21 },
  { mu: 1.9, sigma: 0.9, missing: 0.22 },
  { mu: 7.9, sigma: 1.5, missing: 0.026 },
  { mu: 3.5, sigma: 1.5, missing: 0.22 },
  { mu: 1.4, sigma: 1.5, missing: 0.043 },
  { mu: 2.2, sigma: 0.9, missing: 0.0005 },
  { mu: 3.7, sigma: 1.3, missing: 0.043 },
  { mu: 0.3, sigma: 0.6, missing: 0.45 },
  { mu: 0.7, sigma: 1.0, missing: 0.043 },
  { mu: 0.2, sigma: 1.0, missing: 0.76 },
  { mu: 1.6, sigma: 1.0, missing: 0.22 },
];

/** Sub-streams of `[seed, STREAM.teacher, part]`. */
const TEACHER_PART = { tables: 1, dense: 2, calibration: 3 } as const;

/**
 * Relative scales of the teacher's terms (the logit is then rescaled to `TEACHER_LOGIT_STD`). With
 * them the logit's variance is about 37% id effects, 39% pairwise id interactions, 15% dense ×
 * categorical and 9% dense linear.
 */
const EFFECT_SCALE = 0.42;
const VECTOR_SCALE = 0.27;
const DENSE_SCALE = 0.35;
const DENSE_CROSS_SCALE = 0.3;

/**
 * Standard deviation of the teacher's logit at `signal = 1`, tuned for a Criteo-like ceiling
 * (AUC ≈ 0.81, log loss ≈ 0.43 at click rate 0.25).
 */
const TEACHER_LOGIT_STD = 1.4;

/** Samples drawn at construction to standardise the dense features and calibrate the bias. */
const CALIBRATION_SAMPLES = 32768;

/** Ranks per table sampled by the alias method (the rest by the power law's inverse CDF). */
const ZIPF_HEAD = 2048;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** The id of popularity rank `rank` of table `t`: `(rank * a + c) mod rows`, exact in doubles. */
function rankToId(w: World, t: number, rank: number): number {
  const size = w.rows[t];
  const x = rank * w.mulA[t] + w.addC[t];
  // The quotient estimate may be off by one.
  let id = x - Math.floor(x * w.invRows[t]) * size;
  if (id < 0) id += size;
  else if (id >= size) id -= size;
  return id;
}

/**
 * Builds table `t`'s head alias table (Vose's method) over ranks `[0, m)`, `m` the head size:
 * rank `r` has probability `F(r + 2) - F(r + 1)`, `F` the power law's CDF on `[1, rows + 1)`.
 */
function buildHead(w: World, t: number): void {
  const m = w.headSize[t];
  const n = w.rows[t];
  const start = w.headStart[t];
  const c = w.zipfC[t];
  const a = 1 - w.exponent[t];
  const cdf = (x: number) => (1 - Math.pow(x, a)) / c;
  const mass = m === n ? 1 : cdf(m + 1);
  w.headMass[t] = mass;
  const scaled = new Float64Array(m);
  for (let r = 0; r < m; r++) scaled[r] = (cdf(r + 2) - cdf(r + 1)) / mass * m;
  const small: number[] = [];
  const large: number[] = [];
  for (let r = m - 1; r >= 0; r--) (scaled[r] < 1 ? small : large).push(r);
  for (let r = 0; r < m; r++) {
    w.headId[start + r] = rankToId(w, t, r);
    w.headAlias[start + r] = w.headId[start + r];
    w.headKeep[start + r] = 1;
  }
  while (small.length > 0 && large.length > 0) {
    const lo = small.pop()!;
    const hi = large.pop()!;
    w.headKeep[start + lo] = scaled[lo];
    w.headAlias[start + lo] = w.headId[start + hi];
    scaled[hi] = scaled[hi] + scaled[lo] - 1;
    (scaled[hi] < 1 ? small : large).push(hi);
  }
}

/**
 * Generator of synthetic Criteo-shaped click data with a known teacher.
 *
 * Holds only per-table and per-feature constants, whatever the table sizes (the full Kaggle and
 * Terabyte cardinalities work). Instances with the same spec and options produce the same data,
 * so threads may each build one and fill different ranges.
 *
 * @example
 * ```ts
 * import { allocateOneHotChunk } from "../engine/batch.ts";
 * import { kaggleSpec } from "../engine/spec.ts";
 * import { SyntheticCriteo } from "./synthetic.ts";
 *
 * const spec = kaggleSpec();
 * const data = new SyntheticCriteo(spec, { seed: 1 });
 * const chunk = allocateOneHotChunk(spec, 2048, 2048 * 16);
 * data.fill(chunk, "train", 0); // samples [0, 32768) of the train stream
 * data.fill(chunk, "train", 32768); // samples [32768, 65536)
 * const ceiling = data.ceiling(100_000); // the teacher's AUC, log loss, accuracy
 * ```
 */
export class SyntheticCriteo {
  /** Number of dense features. */
  readonly denseFeatures: number;
  /** Rows of each table. */
  readonly tableRows: readonly number[];
  /** Seed that drives every stream. */
  readonly seed: number;
  /** Click rate the bias was calibrated to. */
  readonly clickRate: number;
  /** Spread of the teacher's logit relative to the default (see {@linkcode SyntheticOptions}). */
  readonly signal: number;
  /** The teacher's calibrated bias (logit offset) that gives the click rate. */
  readonly bias: number;
  /** Random values drawn per sample (fixed, so a block can be skipped into). */
  readonly drawsPerSample: number;

  #world: World;
  #scratch: RunScratch;

  /**
   * Builds the generator: derives the data shape and the teacher from the seed, then draws a
   * calibration stream (32768 samples) to centre and scale the dense features for the teacher and
   * to bisect the bias to the click rate.
   */
  constructor(
    spec: Pick<ModelSpec, "denseFeatures" | "tableRows">,
    options: SyntheticOptions,
  ) {
    const { seed, clickRate = 0.25, signal = 1 } = options;
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
      throw new RangeError(`Expected a seed that is an integer in [0, 2^32) but found ${seed}`);
    }
    if (!(clickRate > 0 && clickRate < 1)) {
      throw new RangeError(`Expected a click rate in (0, 1) but found ${clickRate}`);
    }
    if (!(Number.isFinite(signal) && signal >= 0)) {
      throw new RangeError(`Expected a finite non-negative signal but found ${signal}`);
    }
    const d = spec.denseFeatures;
    if (!Number.isInteger(d) || d <= 0) {
      throw new RangeError(`Expected a positive integer denseFeatures but found ${d}`);
    }
    if (!Array.isArray(spec.tableRows) || spec.tableRows.length === 0) {
      throw new TypeError(`Expected a non-empty tableRows array but found ${spec.tableRows}`);
    }
    for (const [t, n] of spec.tableRows.entries()) {
      if (!Number.isInteger(n) || n <= 0 || n > 0x7fffffff) {
        throw new RangeError(
          `Expected table ${t} rows to be an integer in [1, 2^31) but found ${n}`,
        );
      }
    }
    this.denseFeatures = d;
    this.tableRows = [...spec.tableRows];
    this.seed = seed;
    this.clickRate = clickRate;
    this.signal = signal;
    const tables = this.tableRows.length;
    this.drawsPerSample = (d + 1) + d + tables + 1;

    const f64 = (n: number) => new Float64Array(n);
    const w: World = {
      d,
      tables,
      denseMu: f64(d),
      denseSigma: f64(d),
      denseMissing: f64(d),
      rows: f64(tables),
      invRows: f64(tables),
      exponent: f64(tables),
      zipfC: f64(tables),
      zipfInv: f64(tables),
      mulA: f64(tables),
      addC: f64(tables),
      headStart: f64(tables),
      headSize: f64(tables),
      headMass: f64(tables),
      headKeep: new Float32Array(0),
      headId: new Int32Array(0),
      headAlias: new Int32Array(0),
      keys: new Int32Array(tables),
      effectScale: f64(tables),
      vectorScale: f64(tables),
      denseWeight: f64(d),
      denseCross: f64(TEACHER_RANK * d),
      denseMean: f64(d),
      signal: 0,
    };
    this.#world = w;
    this.#scratch = allocateRunScratch(SYNTHETIC_BLOCK, this.drawsPerSample, tables);

    // Dense shapes: Criteo's columns, cycled.
    for (let j = 0; j < d; j++) {
      const shape = CRITEO_DENSE[j % CRITEO_DENSE.length];
      w.denseMu[j] = shape.mu;
      w.denseSigma[j] = shape.sigma;
      w.denseMissing[j] = shape.missing;
    }

    // Per-table shape and teacher constants.
    let headTotal = 0;
    const tableRng = new Rng(seed, STREAM.teacher, TEACHER_PART.tables);
    for (let t = 0; t < tables; t++) {
      const n = this.tableRows[t];
      const s = 1.05 + 0.15 * tableRng.next();
      w.exponent[t] = s;
      w.zipfC[t] = 1 - Math.pow(n + 1, 1 - s);
      w.zipfInv[t] = 1 / (1 - s);
      // Multiplier coprime to n, small enough that rank * a stays exact in a double.
      const limit = Math.min(n, Math.floor(2 ** 52 / n));
      let a = 1 + Math.floor(tableRng.next() * Math.max(1, limit - 1));
      while (gcd(a, n) !== 1) a = a + 1 < limit ? a + 1 : 1;
      w.mulA[t] = a;
      w.addC[t] = Math.floor(tableRng.next() * n);
      w.rows[t] = n;
      w.invRows[t] = 1 / n;
      w.headSize[t] = Math.min(n, ZIPF_HEAD);
      w.headStart[t] = headTotal;
      headTotal += w.headSize[t];
      w.keys[t] = hash32(seed, STREAM.teacher, TEACHER_PART.tables, t) | 0;
      w.effectScale[t] = EFFECT_SCALE * (0.3 + 1.4 * tableRng.next()) / 65536;
      w.vectorScale[t] = VECTOR_SCALE * (0.5 + tableRng.next()) / 128;
    }
    w.headKeep = new Float32Array(headTotal);
    w.headId = new Int32Array(headTotal);
    w.headAlias = new Int32Array(headTotal);
    for (let t = 0; t < tables; t++) buildHead(w, t);

    // Dense teacher weights, scaled to unit-variance features once the calibration data is in.
    const denseRng = new Rng(seed, STREAM.teacher, TEACHER_PART.dense);
    const rawWeight = f64(d);
    const rawCross = f64(TEACHER_RANK * d);
    for (let j = 0; j < d; j++) rawWeight[j] = denseRng.normal();
    for (let k = 0; k < rawCross.length; k++) rawCross[k] = denseRng.normal();

    // Calibration pass 1 (dense weights still zero): the dense moments.
    const cal = allocateOneHotChunk(spec, CALIBRATION_SAMPLES, CALIBRATION_SAMPLES);
    const path = [seed, STREAM.teacher, TEACHER_PART.calibration];
    const momentSamples = CALIBRATION_SAMPLES / 4;
    this.#generate(path, 0, { ...cal, samples: momentSamples }, 0, undefined, undefined);
    const mean = f64(d);
    const sq = f64(d);
    for (let i = 0; i < momentSamples; i++) {
      for (let j = 0; j < d; j++) {
        const x = cal.dense[i * d + j];
        mean[j] += x;
        sq[j] += x * x;
      }
    }
    const weightNorm = DENSE_SCALE / Math.sqrt(d);
    const crossNorm = DENSE_CROSS_SCALE / Math.sqrt(d);
    for (let j = 0; j < d; j++) {
      mean[j] /= momentSamples;
      const std = Math.sqrt(Math.max(sq[j] / momentSamples - mean[j] * mean[j], 1e-12));
      w.denseMean[j] = mean[j];
      w.denseWeight[j] = rawWeight[j] * weightNorm / std;
      for (let k = 0; k < TEACHER_RANK; k++) {
        w.denseCross[k * d + j] = rawCross[k * d + j] * crossNorm / std;
      }
    }
    // Pass 2: the logits at unit signal, rescaled to a standard deviation of
    // `TEACHER_LOGIT_STD * signal` (so every seed and spec is about as hard), then the bias that
    // brings their mean probability to the click rate.
    const logits = f64(CALIBRATION_SAMPLES);
    w.signal = 1;
    this.#generate(path, 0, cal, 0, undefined, logits);
    let sum1 = 0, sum2 = 0;
    for (let i = 0; i < CALIBRATION_SAMPLES; i++) {
      sum1 += logits[i];
      sum2 += logits[i] * logits[i];
    }
    const m1 = sum1 / CALIBRATION_SAMPLES;
    const std = Math.sqrt(Math.max(sum2 / CALIBRATION_SAMPLES - m1 * m1, 0));
    w.signal = std > 1e-9 ? signal * TEACHER_LOGIT_STD / std : 0;
    for (let i = 0; i < CALIBRATION_SAMPLES; i++) logits[i] *= w.signal;
    let lo = -40, hi = 40;
    for (let iter = 0; iter < 60; iter++) {
      const mid = 0.5 * (lo + hi);
      let sum = 0;
      for (let i = 0; i < CALIBRATION_SAMPLES; i++) sum += 1 / (1 + Math.exp(-(mid + logits[i])));
      if (sum / CALIBRATION_SAMPLES < clickRate) lo = mid;
      else hi = mid;
    }
    this.bias = 0.5 * (lo + hi);
  }

  /** The power-law (Zipf) exponent of table `t`. */
  zipfExponent(t: number): number {
    this.#checkTable(t);
    return this.#world.exponent[t];
  }

  /** The id of popularity rank `rank` (0 = most popular) of table `t`. */
  idOfRank(t: number, rank: number): number {
    this.#checkTable(t);
    const n = this.tableRows[t];
    if (!Number.isInteger(rank) || rank < 0 || rank >= n) {
      throw new RangeError(`Expected a rank that is an integer in [0, ${n}) but found ${rank}`);
    }
    return rankToId(this.#world, t, rank);
  }

  /**
   * Fills `chunk` with samples `[firstSample, firstSample + chunk.samples)` of `stream`: dense
   * features, one-hot bags (offsets are rewritten as `offsets[t][s] = s`) and labels; writes the
   * teacher's true click probability of each sample to `teacherProbabilities` when given.
   */
  fill(
    chunk: BatchChunk,
    stream: SyntheticStream,
    firstSample: number,
    teacherProbabilities?: Float32Array,
  ): void {
    const streamId = stream === "train"
      ? STREAM.trainData
      : stream === "test"
      ? STREAM.testData
      : undefined;
    if (streamId === undefined) {
      throw new TypeError(`Expected stream "train" or "test" but found ${String(stream)}`);
    }
    const n = chunk.samples;
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(`Expected a non-negative integer sample count but found ${n}`);
    }
    if (!Number.isInteger(firstSample) || firstSample < 0) {
      throw new RangeError(`Expected a non-negative integer first sample but found ${firstSample}`);
    }
    if (firstSample + n > MAX_SYNTHETIC_SAMPLES) {
      throw new RangeError(
        `Expected samples below ${MAX_SYNTHETIC_SAMPLES} but found the range ending at ${
          firstSample + n
        }`,
      );
    }
    const d = this.denseFeatures;
    const tables = this.tableRows.length;
    if (chunk.dense.length < n * d) {
      throw new RangeError(`Expected ${n * d} dense values but found ${chunk.dense.length}`);
    }
    if (chunk.labels.length < n) {
      throw new RangeError(`Expected ${n} labels but found ${chunk.labels.length}`);
    }
    if (chunk.indices.length !== tables || chunk.offsets.length !== tables) {
      throw new RangeError(
        `Expected bags for ${tables} tables but found ${chunk.indices.length} index and ${chunk.offsets.length} offset arrays`,
      );
    }
    for (let t = 0; t < tables; t++) {
      if (chunk.indices[t].length < n) {
        throw new RangeError(
          `Expected table ${t} to hold ${n} indices but found ${chunk.indices[t].length}`,
        );
      }
      if (chunk.offsets[t].length < n + 1) {
        throw new RangeError(
          `Expected table ${t} to hold ${n + 1} offsets but found ${chunk.offsets[t].length}`,
        );
      }
    }
    if (teacherProbabilities !== undefined && teacherProbabilities.length < n) {
      throw new RangeError(
        `Expected ${n} teacher probabilities but found ${teacherProbabilities.length}`,
      );
    }
    for (let t = 0; t < tables; t++) {
      const off = chunk.offsets[t];
      if (t > 0 && off === chunk.offsets[t - 1]) continue;
      for (let s = 0; s <= n; s++) off[s] = s;
    }
    this.#generate(
      [this.seed, streamId],
      firstSample,
      chunk,
      this.bias,
      teacherProbabilities,
      undefined,
    );
  }

  /**
   * The teacher's own accuracy, ROC AUC and log loss (`engine/metrics.ts`) on samples
   * `[0, samples)` of the test stream: the ceiling of what a model can reach on this data.
   */
  ceiling(samples: number): TeacherCeiling {
    if (!Number.isInteger(samples) || samples <= 0) {
      throw new RangeError(`Expected a positive integer sample count but found ${samples}`);
    }
    const labels = new Float32Array(samples);
    const probabilities = new Float32Array(samples);
    const size = Math.min(samples, 65536);
    const scratch = allocateOneHotChunk(
      { denseFeatures: this.denseFeatures, tableRows: this.tableRows },
      size,
      size,
    );
    const probs = new Float32Array(size);
    for (let first = 0; first < samples; first += size) {
      const count = Math.min(size, samples - first);
      this.fill({ ...scratch, samples: count }, "test", first, probs);
      labels.set(scratch.labels.subarray(0, count), first);
      probabilities.set(probs.subarray(0, count), first);
    }
    let clicks = 0, probSum = 0;
    for (let i = 0; i < samples; i++) {
      clicks += labels[i];
      probSum += probabilities[i];
    }
    return {
      samples,
      ...clickMetrics(labels, probabilities),
      clickRate: clicks / samples,
      meanProbability: probSum / samples,
    };
  }

  #checkTable(t: number): void {
    if (!Number.isInteger(t) || t < 0 || t >= this.tableRows.length) {
      throw new RangeError(
        `Expected a table in [0, ${this.tableRows.length}) but found ${t}`,
      );
    }
  }

  /**
   * Generates samples `[first, first + chunk.samples)` of the stream whose block `b` is drawn
   * from `Rng(...path, b)` into `chunk` (one-hot, offsets already set).
   */
  #generate(
    path: readonly number[],
    first: number,
    chunk: BatchChunk,
    bias: number,
    probabilities: Float32Array | undefined,
    logits: Float64Array | undefined,
  ): void {
    const n = chunk.samples;
    let pos = 0;
    while (pos < n) {
      const i = first + pos;
      const block = Math.floor(i / SYNTHETIC_BLOCK);
      const within = i - block * SYNTHETIC_BLOCK;
      const count = Math.min(SYNTHETIC_BLOCK - within, n - pos);
      const state = new Rng(...path, block).stateWords();
      const skip = within * this.drawsPerSample;
      generateRun(
        this.#world,
        this.#scratch,
        state,
        skip,
        chunk,
        pos,
        pos + count,
        bias,
        probabilities,
        logits,
      );
      pos += count;
    }
  }
}
