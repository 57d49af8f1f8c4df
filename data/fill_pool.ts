/**
 * Filling training chunks with Workers: a pool of `fill_worker.ts` Workers, each with its own copy
 * of the data source (the synthetic generator, or a Criteo cache reader), that fill a chunk in
 * shared memory together, each a contiguous slice of its samples, while the main thread is free
 * (to record and submit the previous chunk to the GPU).
 *
 * The result equals a fill by one thread bit for bit, whatever the number of workers: the
 * synthetic streams derive sample `i` from the generator of its block `floor(i / 256)` (see
 * `synthetic.ts`), and a Criteo cache reader fills any range on its own. Slices start on a
 * synthetic block where they can, so that no worker draws values only to skip them. Shuffled
 * Criteo training samples come from shuffle windows that the workers load into shared memory
 * together, once, before they fill their slices from them.
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";
import { DENSE_FEATURES } from "./criteo/format.ts";
import {
  allocateCriteoWindow,
  CriteoData,
  type CriteoDataOptions,
  type CriteoWindow,
} from "./criteo/source.ts";
import { SYNTHETIC_BLOCK, type SyntheticOptions } from "./synthetic.ts";

/** What each worker builds its own copy of. */
export type FillSourceSpec =
  | {
    kind: "synthetic";
    /** The model's input shape. */
    shape: { denseFeatures: number; tableRows: number[] };
    options: SyntheticOptions;
  }
  | {
    kind: "criteo";
    /** The cache folder. */
    dir: string;
    options: CriteoDataOptions;
  };

/** The shared arrays of a chunk, as a worker receives them. */
export interface SharedChunkArrays {
  /** Samples the arrays have room for (`labels.length`). */
  capacity: number;
  /** Dense features per sample. */
  denseFeatures: number;
  dense: Float32Array;
  labels: Float32Array;
  indices: Int32Array[];
  offsets: Int32Array[];
}

/**
 * A fill message: samples `[from, from + count)` of the chunk get `first + from, …`; a Criteo
 * reader fills from `windows` (loaded together beforehand, in shared memory) when given.
 */
export interface FillRequest {
  type: "fill";
  chunk: SharedChunkArrays;
  stream: "train" | "test";
  first: number;
  from: number;
  count: number;
  windows?: CriteoWindow[];
}

/** A Criteo window load: blocks `[from, to)` of window `index` into `window` (shared). */
export interface WindowLoadRequest {
  type: "loadWindow";
  window: CriteoWindow;
  index: number;
  from: number;
  to: number;
  withOrder: boolean;
}

/** Shuffle windows a Criteo pool keeps in shared memory (the one or two a chunk needs, and one). */
const SHARED_WINDOWS = 3;

/** A worker's answer to `open` or `fill`. */
export type FillWorkerReply = { type: "done" } | { type: "error"; message: string };

/** Workers a pool gets by default: the cores but one (the main thread's), at most 15, at least 1. */
export function defaultDataWorkers(): number {
  return Math.max(1, Math.min(15, (navigator.hardwareConcurrency ?? 2) - 1));
}

interface Handle {
  worker: Worker;
  pending: { resolve: () => void; reject: (e: Error) => void }[];
}

/**
 * Worker threads that fill chunks from one data source, with the `fill` of the sources but
 * asynchronous. Fills are answered in order; start a fill only after the previous one settled
 * if both write the same chunk.
 *
 * @example
 * ```ts
 * import { allocateOneHotChunk } from "../engine/batch.ts";
 * import { kaggleSpec } from "../engine/spec.ts";
 * import { FillPool } from "./fill_pool.ts";
 *
 * const spec = kaggleSpec(0.001);
 * const pool = await FillPool.start({ kind: "synthetic", shape: spec, options: { seed: 1 } }, 2);
 * try {
 *   const chunk = allocateOneHotChunk(spec, 2048, 2048 * 4, true);
 *   await pool.fill(chunk, "train", 0); // samples [0, 8192), as SyntheticCriteo.fill gives them
 * } finally {
 *   pool.close();
 * }
 * ```
 */
export class FillPool {
  /** Number of workers. */
  readonly workers: number;
  /** The source the workers fill from. */
  readonly source: FillSourceSpec;
  #denseFeatures: number;
  #handles: Handle[] = [];
  #failure: Error | undefined;
  /**
   * A Criteo pool's plan of the shuffle windows (the main thread's reader: it loads none) and
   * the windows in shared memory, most recently used last; the workers load each window together
   * once, then all fill from it (each loading every window its slice touches would read a 42 MB
   * window once per worker).
   */
  #criteo: { plan: CriteoData; windows: CriteoWindow[] } | null = null;
  /** The last fill of a Criteo pool: fills run one after another (they share the windows). */
  #previous: Promise<void> = Promise.resolve();
  #windowLoads = 0;

  /** Shuffle windows a Criteo pool has loaded into shared memory so far. */
  get windowLoads(): number {
    return this.#windowLoads;
  }

  private constructor(source: FillSourceSpec, workers: number) {
    this.source = source;
    this.workers = workers;
    this.#denseFeatures = source.kind === "synthetic" ? source.shape.denseFeatures : DENSE_FEATURES;
  }

  /**
   * Starts `workers` workers and has each build the source (a synthetic generator calibrates
   * itself, a cache reader checks its manifest); rejects with the first worker's error.
   */
  static async start(source: FillSourceSpec, workers: number): Promise<FillPool> {
    if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
      throw new RangeError(`Expected a worker count in [1, 256] but found ${workers}`);
    }
    const pool = new FillPool(source, workers);
    for (let w = 0; w < workers; w++) pool.#handles.push(pool.#spawn());
    try {
      await Promise.all(pool.#handles.map((h) => pool.#call(h, { type: "open", spec: source })));
      if (source.kind === "criteo") {
        pool.#criteo = { plan: await CriteoData.open(source.dir, source.options), windows: [] };
      }
    } catch (e) {
      pool.close();
      throw e;
    }
    return pool;
  }

  /**
   * Fills `chunk` (its arrays in shared memory, one index per bag) with samples
   * `[firstSample, firstSample + chunk.samples)` of `stream`, as the source's own `fill` would;
   * offsets are rewritten as `offsets[t][s] = s`. Resolves once every worker wrote its slice.
   */
  fill(chunk: BatchChunk, stream: "train" | "test", firstSample: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const arrays = sharedArraysOf(chunk, this.#denseFeatures);
    const n = chunk.samples;
    if (!Number.isInteger(n) || n < 0 || n > arrays.capacity) {
      throw new RangeError(
        `Expected a sample count in [0, ${arrays.capacity}] but found ${n}`,
      );
    }
    if (!Number.isInteger(firstSample) || firstSample < 0) {
      throw new RangeError(`Expected a non-negative integer first sample but found ${firstSample}`);
    }
    if (this.#criteo && stream === "train") {
      const criteo = this.#criteo;
      const run = this.#previous.then(async () => {
        const windows = await this.#loadWindows(criteo, firstSample, n);
        await this.#fillSlices(arrays, stream, firstSample, n, windows);
      });
      this.#previous = run.catch(() => {});
      return run;
    }
    return this.#fillSlices(arrays, stream, firstSample, n, undefined);
  }

  /** Every worker fills its slice of the samples `[0, n)` of the chunk. */
  #fillSlices(
    arrays: SharedChunkArrays,
    stream: "train" | "test",
    firstSample: number,
    n: number,
    windows: CriteoWindow[] | undefined,
  ): Promise<void> {
    const bounds = sliceBounds(firstSample, n, this.workers);
    const calls: Promise<void>[] = [];
    for (let w = 0; w + 1 < bounds.length; w++) {
      const from = bounds[w], count = bounds[w + 1] - from;
      if (count === 0) continue;
      const msg: FillRequest = {
        type: "fill",
        chunk: arrays,
        stream,
        first: firstSample,
        from,
        count,
        ...(windows ? { windows } : {}),
      };
      calls.push(this.#call(this.#handles[w], msg));
    }
    return Promise.all(calls).then(() => {});
  }

  /**
   * The shared windows that training samples `[first, first + n)` lie in, each loaded by the
   * workers together (a share of its blocks each, the first worker also its order) unless held.
   */
  async #loadWindows(
    criteo: { plan: CriteoData; windows: CriteoWindow[] },
    first: number,
    n: number,
  ): Promise<CriteoWindow[]> {
    const { plan, windows } = criteo;
    const needed = plan.windowsOf(first, n);
    const out: CriteoWindow[] = [];
    for (const w of needed) {
      let win = windows.find((x) => x.index === w);
      if (!win) {
        // The least recently used window this fill does not need, or a new one.
        const spare = windows.length < SHARED_WINDOWS
          ? -1
          : windows.findIndex((x) => !needed.includes(x.index));
        win = spare < 0
          ? allocateCriteoWindow(plan.windowCapacity, true)
          : windows.splice(spare, 1)[0];
        win.index = -1;
        const blocks = plan.windowBlocks(w);
        const calls: Promise<void>[] = [];
        for (let k = 0; k < this.workers; k++) {
          const from = Math.floor((k * blocks) / this.workers);
          const to = Math.floor(((k + 1) * blocks) / this.workers);
          if (from === to && k > 0) continue;
          const msg: WindowLoadRequest = {
            type: "loadWindow",
            window: win,
            index: w,
            from,
            to,
            withOrder: k === 0,
          };
          calls.push(this.#call(this.#handles[k], msg));
        }
        await Promise.all(calls);
        this.#windowLoads++;
        win.index = w;
        win.samples = plan.windowSamples(w);
      } else windows.splice(windows.indexOf(win), 1);
      windows.push(win);
      out.push(win);
    }
    // A fill that needed more windows than are kept made more: drop the oldest beyond that.
    while (windows.length > Math.max(SHARED_WINDOWS, needed.length)) windows.shift();
    return out;
  }

  /** Stops every worker; fills still running are rejected. */
  close(): void {
    const closed = new Error("Expected an open fill pool but it was closed");
    for (const h of this.#handles) {
      h.worker.terminate();
      for (const p of h.pending.splice(0)) p.reject(closed);
    }
    this.#handles = [];
    this.#failure ??= closed;
    this.#criteo?.plan.close();
    this.#criteo = null;
  }

  #spawn(): Handle {
    const worker = new Worker(new URL("./fill_worker.ts", import.meta.url).href, {
      type: "module",
    });
    const handle: Handle = { worker, pending: [] };
    worker.onmessage = (e: MessageEvent<FillWorkerReply>) => {
      const next = handle.pending.shift();
      if (e.data.type === "error") next?.reject(new Error(`Data worker: ${e.data.message}`));
      else next?.resolve();
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const error = new Error(`Data worker failed: ${e.message}`);
      this.#failure ??= error;
      for (const p of handle.pending.splice(0)) p.reject(error);
    };
    return handle;
  }

  #call(
    h: Handle,
    msg: FillRequest | WindowLoadRequest | { type: "open"; spec: FillSourceSpec },
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      h.pending.push({ resolve, reject });
      h.worker.postMessage(msg);
    });
  }
}

/**
 * Where `workers` slices of the samples `[0, n)` of a chunk starting at stream sample `first`
 * begin and end (`workers + 1` bounds): about equal, each boundary moved to the nearest start of
 * a synthetic block.
 */
export function sliceBounds(first: number, n: number, workers: number): number[] {
  const bounds = [0];
  for (let w = 1; w < workers; w++) {
    const even = first + (n * w) / workers;
    const aligned = Math.round(even / SYNTHETIC_BLOCK) * SYNTHETIC_BLOCK - first;
    bounds.push(Math.min(n, Math.max(bounds[w - 1], aligned)));
  }
  bounds.push(n);
  return bounds;
}

/** The chunk's arrays, checked to be in shared memory and one-hot shaped. */
function sharedArraysOf(chunk: BatchChunk, denseFeatures: number): SharedChunkArrays {
  const all = [chunk.dense, chunk.labels, ...chunk.indices, ...chunk.offsets];
  const local = all.findIndex((a) => !(a.buffer instanceof SharedArrayBuffer));
  if (local >= 0) {
    throw new TypeError(
      "Expected a chunk in shared memory (allocateOneHotChunk(..., shared = true)) but found " +
        `array ${local} in an unshared buffer`,
    );
  }
  const capacity = chunk.labels.length;
  if (chunk.dense.length < capacity * denseFeatures) {
    throw new RangeError(
      `Expected ${capacity * denseFeatures} dense values for ${capacity} labels but found ` +
        `${chunk.dense.length}`,
    );
  }
  for (const [t, idx] of chunk.indices.entries()) {
    if (idx.length < capacity || chunk.offsets[t].length < capacity + 1) {
      throw new RangeError(
        `Expected table ${t} to hold ${capacity} indices and ${capacity + 1} offsets but found ` +
          `${idx.length} and ${chunk.offsets[t].length}`,
      );
    }
  }
  return {
    capacity,
    denseFeatures,
    dense: chunk.dense,
    labels: chunk.labels,
    indices: chunk.indices,
    offsets: chunk.offsets,
  };
}
