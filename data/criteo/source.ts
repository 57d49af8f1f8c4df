/**
 * Training data from a Criteo cache, streamed from its chunk files: the real-data counterpart of
 * {@linkcode SyntheticCriteo}, with the same `fill(chunk, stream, firstSample)`.
 *
 * Test and validation samples are read in file order. Training samples are shuffled once, seeded,
 * the same way every epoch (as DLRM's `--data-randomize=total` loader does), without holding the
 * training set in memory: the split is cut into blocks of `shuffleBlock` samples, the blocks are
 * permuted, and each window of `shuffleWindow` consecutive blocks of that order (about 42 MB at
 * the defaults) is read and permuted as a whole. Any range can be filled on its own, in any order.
 *
 * @module
 */
import type { BatchChunk } from "../../engine/batch.ts";
import { Rng, STREAM } from "../../engine/rng.ts";
import {
  type CacheChunk,
  type CacheManifest,
  checkChunkFiles,
  chunkFileName,
  chunkLayout,
  readManifest,
} from "./cache.ts";
import { CATEGORICAL_FEATURES, DENSE_FEATURES } from "./format.ts";
import { checkNotIncompleteCache } from "./sources.ts";
import { type SplitRanges, splitsOf, type SplitUse } from "./splits.ts";

/** A split of a cache: the training stream, DLRM's test half or its validation half. */
export type CriteoStream = "train" | "test" | "validation";

/** Options of {@linkcode CriteoData.open}. */
export interface CriteoDataOptions {
  /** Shuffle the training samples. Default true. */
  shuffle?: boolean;
  /** Seed of the shuffle. Default 1. */
  seed?: number;
  /** Samples per shuffled block. Default 4096. */
  shuffleBlock?: number;
  /** Blocks read and permuted together. Default 64. */
  shuffleWindow?: number;
  /**
   * Which samples each split holds: the manifest's DLRM splits (default), or every sample in
   * one split (`train`: a training set tested on another cache; `test`: such a test cache).
   */
  use?: SplitUse;
}

/**
 * One shuffle window in memory: its samples' labels, dense values and categorical ids in the
 * order of its shuffled blocks, and `order`, the position of each of its shuffled samples. In
 * shared memory when a pool's workers load it together and all fill from it
 * (`CriteoData.useWindows`).
 */
export interface CriteoWindow {
  /** Which window it holds (-1: none yet). */
  index: number;
  samples: number;
  labels: Uint8Array;
  dense: Float32Array;
  /**
   * Sample `j`'s categorical ids at `j * CATEGORICAL_FEATURES + t`: row by row, so that the
   * shuffled fill reads a sample's ids from two cache lines, not one line in each of 26 columns.
   */
  categorical: Int32Array;
  order: Uint32Array;
}

/** A window's arrays for up to `capacity` samples, in one buffer (shared when `shared`). */
export function allocateCriteoWindow(capacity: number, shared: boolean): CriteoWindow {
  const bytes = capacity * (4 + 4 * DENSE_FEATURES + 4 * CATEGORICAL_FEATURES + 1);
  const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  let at = 0;
  const take = (n: number) => ((at += n) - n);
  return {
    index: -1,
    samples: 0,
    order: new Uint32Array(buffer, take(4 * capacity), capacity),
    dense: new Float32Array(buffer, take(4 * DENSE_FEATURES * capacity), DENSE_FEATURES * capacity),
    categorical: new Int32Array(
      buffer,
      take(4 * CATEGORICAL_FEATURES * capacity),
      CATEGORICAL_FEATURES * capacity,
    ),
    labels: new Uint8Array(buffer, take(capacity), capacity),
  };
}

/** Part of a sample range in one chunk: `count` samples from its sample `from`. */
interface Piece {
  chunk: number;
  from: number;
  count: number;
  /** Samples of the range before this piece. */
  done: number;
}

/**
 * A preprocessed Criteo dataset.
 *
 * @example
 * ```ts
 * import { allocateOneHotChunk } from "../../engine/batch.ts";
 * import { kaggleSpec } from "../../engine/spec.ts";
 * import { CriteoData } from "./source.ts";
 *
 * // The first 32,000 (shuffled) training samples of a cache built by `deno task preprocess`.
 * async function firstChunk(cache = "cache/kaggle") {
 *   const data = await CriteoData.open(cache);
 *   const spec = { ...kaggleSpec(), tableRows: data.tableRows };
 *   const chunk = allocateOneHotChunk(spec, 128, 128 * 250, true);
 *   data.fill(chunk, "train", 0);
 *   data.close();
 *   return chunk;
 * }
 * ```
 */
export class CriteoData {
  /** The cache folder. */
  readonly dir: string;
  /** Its manifest. */
  readonly manifest: CacheManifest;
  /** Dense features per sample (13). */
  readonly denseFeatures: number = DENSE_FEATURES;
  /** Rows of each table, from the data. */
  readonly tableRows: readonly number[];
  /** Samples of the training split. */
  readonly trainSamples: number;
  /** Samples of the test split (the first half of the last day). */
  readonly testSamples: number;
  /** Samples of the validation split (the second half of the last day). */
  readonly validationSamples: number;
  /** The splits read: the manifest's, or every sample in one (`options.use`). */
  readonly splits: SplitRanges;
  /** The options it was opened with (to open the same data again, in a Worker). */
  readonly options: Readonly<CriteoDataOptions>;
  #chunkStarts: Float64Array;
  #shuffle: boolean;
  #seed: number;
  #block: number;
  #window: number;
  /** Written only so that the fill's touches are not optimized away. */
  #touchedSink = 0;
  /** The columns of one block, read before they go row by row into a window. */
  #blockColumns: Int32Array[] | undefined;
  /** Training blocks in shuffled order. */
  #blockOrder = new Uint32Array(0);
  /** First shuffled training sample of each window. */
  #windowStarts = new Float64Array(1);
  #current: CriteoWindow | undefined;
  /** Windows loaded elsewhere (a pool's shared ones), by index; null: this reader loads its own. */
  #given: Map<number, CriteoWindow> | null = null;
  #labels = new Uint8Array(0);

  private constructor(dir: string, manifest: CacheManifest, options: CriteoDataOptions) {
    this.dir = dir;
    this.manifest = manifest;
    this.options = { ...options };
    this.tableRows = [...manifest.tableRows];
    this.splits = splitsOf(manifest, options.use);
    this.trainSamples = this.splits.train.samples;
    this.testSamples = this.splits.test.samples;
    this.validationSamples = this.splits.validation.samples;
    this.#chunkStarts = Float64Array.from(manifest.chunks, (c) => c.start);
    this.#shuffle = options.shuffle ?? true;
    this.#seed = options.seed ?? 1;
    this.#block = options.shuffleBlock ?? 4096;
    this.#window = options.shuffleWindow ?? 64;
    for (const [name, v] of [["shuffleBlock", this.#block], ["shuffleWindow", this.#window]]) {
      if (!(Number.isInteger(v) && (v as number) > 0)) {
        throw new RangeError(`Expected ${name} to be a positive integer but found ${v}`);
      }
    }
    if (this.#shuffle) this.#planShuffle();
  }

  /**
   * Opens a complete cache, checking its manifest and that every chunk file has its size.
   * Throws a `CriteoInputError` for an interrupted build, `Deno.errors.NotFound` when the folder
   * holds no complete cache.
   */
  static async open(dir: string, options: CriteoDataOptions = {}): Promise<CriteoData> {
    const manifest = await readManifest(dir);
    if (!manifest) {
      await checkNotIncompleteCache(dir);
      throw new Deno.errors.NotFound(
        `Expected a complete Criteo cache (${dir}/manifest.json) but found none; run deno task preprocess`,
      );
    }
    await checkChunkFiles(dir, manifest);
    return new CriteoData(dir, manifest, options);
  }

  /** Samples of a split. */
  samplesOf(stream: CriteoStream): number {
    return this.#split(stream).samples;
  }

  /**
   * Fills `chunk` with samples `[firstSample, firstSample + chunk.samples)` of `stream`: dense
   * features, labels and one-hot bags (offsets are rewritten as `offsets[t][s] = s`).
   */
  fill(chunk: BatchChunk, stream: CriteoStream, firstSample: number): void {
    const split = this.#split(stream);
    const n = chunk.samples;
    if (!Number.isInteger(firstSample) || firstSample < 0 || firstSample + n > split.samples) {
      throw new RangeError(
        `Expected a range within the ${split.samples} samples of the ${stream} split but found [${firstSample}, ${
          firstSample + n
        })`,
      );
    }
    checkChunkShape(chunk);
    for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
      const off = chunk.offsets[t];
      if (t > 0 && off === chunk.offsets[t - 1]) continue;
      for (let s = 0; s <= n; s++) off[s] = s;
    }
    if (stream === "train" && this.#shuffle) this.#fillShuffled(chunk, firstSample);
    else this.#read(split.start + firstSample, n, chunk);
  }

  /** Drops the shuffle window held in memory. */
  close(): void {
    this.#current = undefined;
  }

  #split(stream: CriteoStream): { start: number; samples: number } {
    const splits = this.splits;
    const split = stream === "train"
      ? splits.train
      : stream === "test"
      ? splits.test
      : stream === "validation"
      ? splits.validation
      : undefined;
    if (!split) {
      throw new TypeError(
        `Expected stream "train", "test" or "validation" but found ${String(stream)}`,
      );
    }
    return split;
  }

  #planShuffle(): void {
    const blocks = Math.ceil(this.trainSamples / this.#block);
    const order = new Uint32Array(blocks);
    for (let b = 0; b < blocks; b++) order[b] = b;
    shuffleInPlace(order, new Rng(this.#seed, STREAM.shuffle, 0xc7, 0));
    this.#blockOrder = order;
    const windows = Math.ceil(blocks / this.#window);
    const starts = new Float64Array(windows + 1);
    for (let w = 0; w < windows; w++) {
      let size = 0;
      for (let b = w * this.#window; b < Math.min(blocks, (w + 1) * this.#window); b++) {
        size += this.#blockSize(order[b]);
      }
      starts[w + 1] = starts[w] + size;
    }
    this.#windowStarts = starts;
  }

  #blockSize(block: number): number {
    return Math.min(this.#block, this.trainSamples - block * this.#block);
  }

  #fillShuffled(chunk: BatchChunk, first: number): void {
    const starts = this.#windowStarts;
    const indices = chunk.indices;
    for (let pos = 0; pos < chunk.samples;) {
      const i = first + pos;
      const held = this.#current;
      const w = held && i >= starts[held.index] && i < starts[held.index + 1]
        ? held.index
        : upperBound(starts, i) - 1;
      const win = this.#windowAt(w);
      const base = i - starts[w];
      const count = Math.min(chunk.samples - pos, win.samples - base);
      const { labels, dense, categorical, order } = win;
      // Each sample's rows are touched AHEAD samples before they are copied, so that their
      // cache misses overlap (one at a time, the loop waits on each).
      const ahead = Math.min(count, AHEAD);
      let touched = 0;
      for (let k = 0; k < ahead; k++) touched |= touch(win, order[base + k]);
      for (let k = 0; k < count; k++) {
        const s = pos + k;
        if (k + AHEAD < count) touched |= touch(win, order[base + k + AHEAD]);
        const j = order[base + k];
        chunk.labels[s] = labels[j];
        const d = j * DENSE_FEATURES, e = s * DENSE_FEATURES;
        for (let f = 0; f < DENSE_FEATURES; f++) chunk.dense[e + f] = dense[d + f];
        const c = j * CATEGORICAL_FEATURES;
        for (let t = 0; t < CATEGORICAL_FEATURES; t++) indices[t][s] = categorical[c + t];
      }
      pos += count;
      if (touched === 0x7fffffff) this.#touchedSink = touched; // keeps the touches
    }
  }

  /** Samples a shuffle window holds at most (`shuffleWindow * shuffleBlock`). */
  get windowCapacity(): number {
    return this.#window * this.#block;
  }

  /**
   * The shuffle windows that training samples `[first, first + n)` lie in, in order (none when
   * the training split is not shuffled).
   */
  windowsOf(first: number, n: number): number[] {
    if (!this.#shuffle || n <= 0) return [];
    const starts = this.#windowStarts;
    const windows: number[] = [];
    for (
      let w = upperBound(starts, first) - 1;
      w + 1 < starts.length && starts[w] < first + n;
      w++
    ) {
      windows.push(w);
    }
    return windows;
  }

  /** Samples of shuffle window `w`. */
  windowSamples(w: number): number {
    this.#checkWindow(w);
    return this.#windowStarts[w + 1] - this.#windowStarts[w];
  }

  /** Blocks of shuffle window `w` (the last may hold fewer). */
  windowBlocks(w: number): number {
    this.#checkWindow(w);
    return Math.min(this.#blockOrder.length, (w + 1) * this.#window) - w * this.#window;
  }

  /**
   * Loads blocks `[from, to)` of shuffle window `w` into `win`, each where it lies in the window,
   * and with `withOrder` the window's shuffled order too; sets `win.index` and `win.samples`.
   * Threads may load disjoint block ranges of one window into one shared `win`.
   */
  loadWindowPart(w: number, from: number, to: number, win: CriteoWindow, withOrder: boolean): void {
    const blocks = this.windowBlocks(w);
    if (
      !(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= blocks)
    ) {
      throw new RangeError(
        `Expected blocks within [0, ${blocks}] of window ${w} but found [${from}, ${to})`,
      );
    }
    const samples = this.windowSamples(w);
    if (win.order.length < samples) {
      throw new RangeError(
        `Expected a window of at least ${samples} samples but found ${win.order.length}`,
      );
    }
    win.index = w;
    win.samples = samples;
    // A block's columns go through a buffer of one block, then row by row into the window.
    const columns = (this.#blockColumns ??= Array.from(
      { length: CATEGORICAL_FEATURES },
      () => new Int32Array(this.#block),
    ));
    const first = w * this.#window;
    let at = 0;
    for (let b = first; b < first + from; b++) at += this.#blockSize(this.#blockOrder[b]);
    const trainStart = this.splits.train.start;
    for (let b = first + from; b < first + to; b++) {
      const block = this.#blockOrder[b];
      const count = this.#blockSize(block);
      const target = {
        labels: win.labels.subarray(at),
        dense: win.dense.subarray(at * DENSE_FEATURES),
        indices: columns,
      };
      this.#readColumns(trainStart + block * this.#block, count, target, 0);
      const rows = win.categorical;
      for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
        const column = columns[t];
        for (let k = 0, r = at * CATEGORICAL_FEATURES + t; k < count; k++) {
          rows[r] = column[k];
          r += CATEGORICAL_FEATURES;
        }
      }
      at += count;
    }
    if (withOrder) {
      const order = win.order.subarray(0, samples);
      for (let k = 0; k < samples; k++) order[k] = k;
      shuffleInPlace(order, new Rng(this.#seed, STREAM.shuffle, 0xc7, 1, w));
    }
  }

  /**
   * Fills from `windows` (loaded elsewhere, e.g. a pool's shared windows) instead of loading its
   * own; a fill that needs a window not among them throws. `null` goes back to loading its own.
   */
  useWindows(windows: readonly CriteoWindow[] | null): void {
    this.#given = windows ? new Map(windows.map((w) => [w.index, w])) : null;
    this.#current = undefined;
  }

  #checkWindow(w: number): void {
    const windows = this.#windowStarts.length - 1;
    if (!this.#shuffle || !Number.isInteger(w) || w < 0 || w >= windows) {
      throw new RangeError(
        `Expected a shuffle window in [0, ${this.#shuffle ? windows : 0}) but found ${w}`,
      );
    }
  }

  /** The shuffle window `w`: a given one, the one held, or read from disk. */
  #windowAt(w: number): CriteoWindow {
    if (this.#current?.index === w) return this.#current;
    if (this.#given) {
      const win = this.#given.get(w);
      if (!win) {
        throw new Error(
          `Expected shuffle window ${w} among the windows given (${
            [...this.#given.keys()].join(", ")
          })`,
        );
      }
      return (this.#current = win);
    }
    const samples = this.windowSamples(w);
    const win = this.#current && this.#current.order.length >= samples
      ? this.#current
      : allocateCriteoWindow(this.windowCapacity, false);
    this.loadWindowPart(w, 0, this.windowBlocks(w), win, true);
    return (this.#current = win);
  }

  /** Reads samples `[start, start + n)` of the cache into `chunk`. */
  #read(start: number, n: number, chunk: BatchChunk): void {
    if (this.#labels.length < n) this.#labels = new Uint8Array(n);
    const labels = this.#labels;
    this.#readColumns(start, n, { labels, dense: chunk.dense, indices: chunk.indices }, 0);
    for (let s = 0; s < n; s++) chunk.labels[s] = labels[s];
  }

  /** Reads samples `[start, start + n)` of the cache into `out`, from its sample `at`. */
  #readColumns(
    start: number,
    n: number,
    out: { labels: Uint8Array; dense: Float32Array; indices: Int32Array[] },
    at: number,
  ): void {
    for (const { chunk: c, from, count, done } of this.#pieces(start, n)) {
      const samples = this.manifest.chunks[c].samples;
      const layout = chunkLayout(samples);
      const file = Deno.openSync(`${this.dir}/${chunkFileName(c)}`);
      try {
        const s = at + done;
        readAt(file, layout.labels + from, out.labels.subarray(s, s + count));
        readAt(
          file,
          layout.dense + 4 * DENSE_FEATURES * from,
          bytesOf(out.dense, s * DENSE_FEATURES, count * DENSE_FEATURES),
        );
        for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
          readAt(
            file,
            layout.categorical + 4 * (samples * t + from),
            bytesOf(out.indices[t], s, count),
          );
        }
      } finally {
        file.close();
      }
    }
  }

  /** The chunk pieces that hold samples `[start, start + n)`. */
  #pieces(start: number, n: number): Piece[] {
    const pieces: Piece[] = [];
    const chunks: readonly CacheChunk[] = this.manifest.chunks;
    let c = upperBound(this.#chunkStarts, start) - 1;
    for (let left = n, at = start; left > 0; c++) {
      const chunk = chunks[c];
      const from = at - chunk.start;
      const count = Math.min(left, chunk.samples - from);
      pieces.push({ chunk: c, from, count, done: n - left });
      left -= count;
      at += count;
    }
    return pieces;
  }
}

function checkChunkShape(chunk: BatchChunk): void {
  const n = chunk.samples;
  if (chunk.dense.length < n * DENSE_FEATURES || chunk.labels.length < n) {
    throw new RangeError(
      `Expected room for ${n} samples but found ${chunk.dense.length} dense values and ${chunk.labels.length} labels`,
    );
  }
  if (
    chunk.indices.length !== CATEGORICAL_FEATURES || chunk.offsets.length !== CATEGORICAL_FEATURES
  ) {
    throw new RangeError(
      `Expected bags for ${CATEGORICAL_FEATURES} tables but found ${chunk.indices.length} index and ${chunk.offsets.length} offset arrays`,
    );
  }
  for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
    if (chunk.indices[t].length < n || chunk.offsets[t].length < n + 1) {
      throw new RangeError(
        `Expected table ${t} to hold ${n} indices and ${n + 1} offsets but found ${
          chunk.indices[t].length
        } and ${chunk.offsets[t].length}`,
      );
    }
  }
}

/** Samples ahead whose rows the shuffled fill touches before it copies them. */
const AHEAD = 16;

/** Reads one word of each of sample `j`'s rows in `win` (label, dense values, ids). */
function touch(win: CriteoWindow, j: number): number {
  return win.labels[j] | win.categorical[j * CATEGORICAL_FEATURES] |
    (win.dense[j * DENSE_FEATURES] > 0 ? 1 : 0);
}

/** Index of the first element of sorted `a` greater than `x`. */
function upperBound(a: Float64Array, x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function shuffleInPlace(a: Uint32Array, rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const x = a[i];
    a[i] = a[j];
    a[j] = x;
  }
}

function bytesOf(a: Float32Array | Int32Array, from: number, count: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset + 4 * from, 4 * count);
}

function readAt(file: Deno.FsFile, offset: number, into: Uint8Array): void {
  file.seekSync(offset, Deno.SeekMode.Start);
  for (let got = 0; got < into.length;) {
    const n = file.readSync(into.subarray(got));
    if (n === null) {
      throw new RangeError(`Expected ${into.length} bytes at offset ${offset} but the file ended`);
    }
    got += n;
  }
}
