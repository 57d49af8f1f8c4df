/**
 * Input batches. Engines train on a chunk of many batches per call, so a chunk holds the samples
 * of all its batches back to back: batch `b` is samples `[b * batchSize, (b + 1) * batchSize)`.
 *
 * @module
 */

/**
 * Samples of one or more batches, in the layout both engines read.
 *
 * Embedding bags are CSR per table: sample `s` of table `t` sums the rows
 * `indices[t][offsets[t][s] .. offsets[t][s + 1])`. Criteo has one index per bag
 * (`offsets[t][s] = s`), but multi-hot bags are allowed.
 */
export interface BatchChunk {
  /** Samples per batch. */
  batchSize: number;
  /** Number of samples (a multiple of `batchSize` for training; any count for evaluation). */
  samples: number;
  /** Dense features after preprocessing (`log(x + 1)`), `samples * denseFeatures` values. */
  dense: Float32Array;
  /** Click labels, 0 or 1, one per sample. */
  labels: Float32Array;
  /** Row ids per table. */
  indices: Int32Array[];
  /** Bag offsets per table, `samples + 1` values, starting at 0. */
  offsets: Int32Array[];
}

/** Number of full batches in a chunk. */
export function batchCount(chunk: BatchChunk): number {
  return Math.floor(chunk.samples / chunk.batchSize);
}

/**
 * Checks a chunk against a model's shape, throwing a `RangeError` that names the first problem
 * (wrong array length, an index out of its table's range, offsets that are not monotone).
 */
export function validateChunk(
  chunk: BatchChunk,
  spec: { denseFeatures: number; tableRows: readonly number[] },
): void {
  const n = chunk.samples;
  if (!Number.isInteger(chunk.batchSize) || chunk.batchSize <= 0) {
    throw new RangeError(`Expected a positive integer batch size but found ${chunk.batchSize}`);
  }
  if (chunk.dense.length < n * spec.denseFeatures) {
    throw new RangeError(
      `Expected ${
        n * spec.denseFeatures
      } dense values for ${n} samples but found ${chunk.dense.length}`,
    );
  }
  if (chunk.labels.length < n) {
    throw new RangeError(`Expected ${n} labels but found ${chunk.labels.length}`);
  }
  if (
    chunk.indices.length !== spec.tableRows.length || chunk.offsets.length !== spec.tableRows.length
  ) {
    throw new RangeError(
      `Expected bags for ${spec.tableRows.length} tables but found ${chunk.indices.length} index and ${chunk.offsets.length} offset arrays`,
    );
  }
  for (let t = 0; t < spec.tableRows.length; t++) {
    const off = chunk.offsets[t];
    const idx = chunk.indices[t];
    if (off.length < n + 1 || off[0] !== 0) {
      throw new RangeError(
        `Expected table ${t} offsets to hold ${
          n + 1
        } values starting at 0 but found ${off.length} starting at ${off[0]}`,
      );
    }
    for (let s = 0; s < n; s++) {
      if (off[s + 1] < off[s]) {
        throw new RangeError(`Expected table ${t} offsets to be non-decreasing at sample ${s}`);
      }
    }
    if (off[n] > idx.length) {
      throw new RangeError(
        `Expected table ${t} to hold ${off[n]} indices but found ${idx.length}`,
      );
    }
    const rows = spec.tableRows[t];
    for (let i = 0; i < off[n]; i++) {
      if (idx[i] < 0 || idx[i] >= rows) {
        throw new RangeError(
          `Expected table ${t} indices in [0, ${rows}) but found ${idx[i]} at position ${i}`,
        );
      }
    }
  }
}

/**
 * Allocates an empty one-hot chunk (one index per bag) of `samples` samples. The tables' index
 * arrays are consecutive views of one array (table `t` from `t * samples`), so the GPU engine
 * uploads them with one write, without gathering them first (see {@linkcode contiguousIndices}).
 */
export function allocateOneHotChunk(
  spec: { denseFeatures: number; tableRows: readonly number[] },
  batchSize: number,
  samples: number,
  shared = false,
): BatchChunk {
  const f32 = (n: number) =>
    shared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
  const i32 = (n: number) =>
    shared ? new Int32Array(new SharedArrayBuffer(n * 4)) : new Int32Array(n);
  const offsets = i32(samples + 1);
  const all = i32(spec.tableRows.length * samples);
  for (let s = 0; s <= samples; s++) offsets[s] = s;
  return {
    batchSize,
    samples,
    dense: f32(samples * spec.denseFeatures),
    labels: f32(samples),
    indices: spec.tableRows.map((_, t) => all.subarray(t * samples, (t + 1) * samples)),
    // One-hot bags all share the same offsets array.
    offsets: spec.tableRows.map(() => offsets),
  };
}

/** The chunk with every array in shared memory (copied where it is not), to post to Workers. */
export function shareChunk(chunk: BatchChunk): BatchChunk {
  const share = <T extends Float32Array | Int32Array>(a: T): T => {
    if (a.buffer instanceof SharedArrayBuffer) return a;
    const copy = new (a.constructor as { new (b: SharedArrayBuffer): T })(
      new SharedArrayBuffer(a.byteLength),
    );
    copy.set(a as never);
    return copy;
  };
  const cache = new Map<Int32Array, Int32Array>();
  return {
    ...chunk,
    dense: share(chunk.dense),
    labels: share(chunk.labels),
    indices: chunk.indices.map(share),
    offsets: chunk.offsets.map((o) => {
      let c = cache.get(o);
      if (!c) cache.set(o, c = share(o));
      return c;
    }),
  };
}

/**
 * The tables' index arrays as one array when they are consecutive views of one buffer with a
 * common stride (as {@linkcode allocateOneHotChunk} lays them out): `all` spans them, table `t`
 * from `t * stride`. `undefined` when they are laid out otherwise.
 */
export function contiguousIndices(
  chunk: BatchChunk,
): { all: Int32Array; stride: number } | undefined {
  const first = chunk.indices[0];
  if (first === undefined) return undefined;
  const stride = first.length;
  for (const [t, idx] of chunk.indices.entries()) {
    if (
      idx.buffer !== first.buffer || idx.length !== stride ||
      idx.byteOffset !== first.byteOffset + 4 * t * stride
    ) {
      return undefined;
    }
  }
  const all = new Int32Array(first.buffer, first.byteOffset, chunk.indices.length * stride);
  return { all, stride };
}
