/**
 * A chunk's input on the GPU: the arrays uploaded with one `writeBuffer` each, the per-iteration
 * uniform blocks, and the buffers sized by the chunk's batches (sort keys, LSQ's step parts).
 * Each `ensure` returns whether a buffer was replaced, which means the kernels must be bound again.
 *
 * @module
 */
import { type BatchChunk, contiguousIndices } from "../batch.ts";
import { STORAGE, writeTo } from "./buffers.ts";
import { ITER_STRIDE } from "./pipelines.ts";
import { sortSegment } from "./sort_plan.ts";
import type { GpuState, InputName } from "./state.ts";

const UNIFORM = GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;

/** Grows input buffer `name` to at least `bytes` (by half again at least); true if replaced. */
export function ensureInput(
  state: GpuState,
  name: InputName,
  bytes: number,
  usage = STORAGE,
): boolean {
  const input = state.input;
  const capacity = input.capacity[name] ?? 16;
  if (bytes <= capacity) return false;
  const size = Math.max(bytes, Math.ceil(capacity * 1.5));
  state.buffers.destroy(input[name]);
  input[name] = state.buffers.create(name, size, usage);
  input.capacity[name] = Math.ceil(size / 16) * 16;
  return true;
}

/**
 * Uploads samples [0, samples) of the chunk: one writeBuffer per array. True if regrown.
 *
 * The indices of every table go up as one array. A chunk whose index arrays already are one
 * (`contiguousIndices`, as `allocateOneHotChunk` lays them out) is written as it is, table `t`
 * from `t * stride`, without a gathering copy on the host, unless that would upload more than
 * twice the indices in use (a short view of a long chunk); otherwise the tables' indices are
 * copied back to back first.
 */
export function uploadChunk(state: GpuState, chunk: BatchChunk, samples: number): boolean {
  const layout = chunkLayout(state, chunk, samples);
  const queue = state.device.queue;
  const nd = state.spec.denseFeatures;
  const input = state.input;
  writeTo(queue, input.dense, 0, chunk.dense, 0, samples * nd);
  writeTo(queue, input.labels, 0, chunk.labels, 0, samples);
  writeTo(queue, input.indices, 0, layout.indices);
  writeTo(queue, input.offsets, 0, layout.offsets);
  writeTo(queue, input.tableDirectory, 0, layout.directory);
  return layout.grown;
}

/**
 * {@linkcode uploadChunk} in pieces, for a chunk whose first iterations go to an idle GPU while
 * the rest is recorded: the buffers are sized now, and `writeUpTo(n)` writes the samples not yet
 * written below `n` (a few writes per table), to be called before the submit that reads them
 * (queue order then puts the writes after the work before). Written up to `samples`, the buffers
 * hold what {@linkcode uploadChunk} writes. Each piece's samples go just before the piece: the
 * whole rest after the first piece (Kaggle b16384: ~5 ms of `writeBuffer` on the H200's host,
 * 15 iterations' worth) left the GPU waiting once its first iteration was done.
 */
export function uploadChunkInParts(
  state: GpuState,
  chunk: BatchChunk,
  samples: number,
): { grown: boolean; writeUpTo: (to: number) => void } {
  const layout = chunkLayout(state, chunk, samples);
  writeTo(state.device.queue, state.input.tableDirectory, 0, layout.directory);
  let written = 0;
  const writeUpTo = (to: number) => {
    const end = Math.min(to, samples);
    writeSamples(state, chunk, layout, written, end);
    written = Math.max(written, end);
  };
  return { grown: layout.grown, writeUpTo };
}

/** Where a chunk's arrays go in the input buffers (sized for them), and its gathered arrays. */
interface ChunkLayout {
  grown: boolean;
  /** Per table: first index word, first offset word, first segment, segment count. */
  directory: Uint32Array;
  /** Every table's indices at their directory words (a view of the chunk's where it can be). */
  indices: Int32Array;
  /** Each distinct offsets array's first `samples + 1` values at their directory words. */
  offsets: Int32Array;
}

function chunkLayout(state: GpuState, chunk: BatchChunk, samples: number): ChunkLayout {
  const plan = state.plan;
  const nd = state.spec.denseFeatures;
  const tables = state.spec.tableRows.length;
  let grown = false;
  grown = ensureInput(state, "dense", samples * nd * 4) || grown;
  grown = ensureInput(state, "labels", samples * 4) || grown;
  // Offsets arrays once each (one-hot tables share one).
  let indexCount = 0, lastCount = 0;
  const unique = new Map<Int32Array, number>();
  const directory = new Uint32Array(tables * 4);
  let offsetCount = 0;
  for (let t = 0; t < tables; t++) {
    const off = chunk.offsets[t];
    directory[4 * t] = indexCount;
    indexCount += lastCount = off[samples];
    let at = unique.get(off);
    if (at === undefined) {
      unique.set(off, at = offsetCount);
      offsetCount += samples + 1;
    }
    directory[4 * t + 1] = at;
    directory[4 * t + 2] = plan.firstSegment[t];
    directory[4 * t + 3] = plan.segmentCount[t];
  }
  const contiguous = contiguousIndices(chunk);
  let indices: Int32Array;
  const spanned = contiguous ? (tables - 1) * contiguous.stride + lastCount : Infinity;
  if (contiguous && spanned <= 2 * indexCount && spanned >= 4) {
    for (let t = 0; t < tables; t++) directory[4 * t] = t * contiguous.stride;
    indices = contiguous.all.subarray(0, spanned);
  } else {
    indices = new Int32Array(Math.max(4, indexCount));
    for (let t = 0; t < tables; t++) {
      indices.set(chunk.indices[t].subarray(0, chunk.offsets[t][samples]), directory[4 * t]);
    }
  }
  const offsets = new Int32Array(Math.max(4, offsetCount));
  for (const [off, at] of unique) offsets.set(off.subarray(0, samples + 1), at);
  grown = ensureInput(state, "indices", indices.byteLength) || grown;
  grown = ensureInput(state, "offsets", offsets.byteLength) || grown;
  return { grown, directory, indices, offsets };
}

/** Writes samples [from, to) of every array of `layout` (the offsets' values from..to). */
function writeSamples(
  state: GpuState,
  chunk: BatchChunk,
  layout: ChunkLayout,
  from: number,
  to: number,
): void {
  if (to <= from) return;
  const queue = state.device.queue;
  const nd = state.spec.denseFeatures;
  const input = state.input;
  const { directory, indices, offsets } = layout;
  writeTo(queue, input.dense, from * nd * 4, chunk.dense, from * nd, (to - from) * nd);
  writeTo(queue, input.labels, from * 4, chunk.labels, from, to - from);
  const written = new Set<number>();
  for (let t = 0; t < chunk.offsets.length; t++) {
    const off = chunk.offsets[t];
    const first = directory[4 * t] + off[from], count = off[to] - off[from];
    if (count > 0) writeTo(queue, input.indices, first * 4, indices, first, count);
    const at = directory[4 * t + 1];
    if (written.has(at)) continue;
    written.add(at);
    writeTo(queue, input.offsets, (at + from) * 4, offsets, at + from, to - from + 1);
  }
}

/**
 * Writes the per-iteration uniform blocks of `iterations` batches of `batch` samples (see
 * `kernels/iter.ts`). True if the buffer was regrown.
 */
export function writeIterations(
  state: GpuState,
  iterations: number,
  batch: number,
  samples: number,
  mode: number,
  lr: number,
): boolean {
  const words = ITER_STRIDE / 4;
  const data = new ArrayBuffer(iterations * ITER_STRIDE);
  const u32 = new Uint32Array(data), f32 = new Float32Array(data);
  for (let i = 0; i < iterations; i++) {
    const s0 = i * batch;
    u32[i * words] = s0;
    u32[i * words + 1] = Math.min(batch, samples - s0);
    u32[i * words + 2] = i;
    u32[i * words + 3] = mode;
    f32[i * words + 4] = lr;
    u32[i * words + 5] = s0;
  }
  const grown = ensureInput(state, "iterations", data.byteLength, UNIFORM);
  writeTo(state.device.queue, state.input.iterations, 0, data);
  return grown;
}

/** The bind group (group 1) of the iteration blocks, made again when their buffer grew. */
export function iterationsBindGroup(state: GpuState): GPUBindGroup {
  const buffer = state.input.iterations;
  if (state.iterationsGroup?.buffer !== buffer) {
    state.iterationsGroup = {
      buffer,
      group: state.device.createBindGroup({
        label: "iterations",
        layout: state.binder.cache.iterLayout,
        entries: [{ binding: 0, resource: { buffer, offset: 0, size: 32 } }],
      }),
    };
  }
  return state.iterationsGroup.group;
}

/**
 * Sizes the sort keys (and the tree update's run starts and row sums) for the chunk's batches
 * that take the sorted update (before binding). True if they were replaced.
 */
export function ensureSortKeys(
  state: GpuState,
  chunk: BatchChunk,
  batch: number,
  iterations: number,
  sortedUpdateFrom: number,
): boolean {
  let entries = 0;
  for (let i = 0; i < iterations; i++) {
    entries = Math.max(entries, batchEntries(chunk, i * batch, batch));
  }
  if (entries < sortedUpdateFrom || entries === 0) return false;
  const bytes = sortKeyBytes(state, entries);
  if (bytes <= (state.sortKeys?.size ?? 0)) return false;
  if (state.sortKeys) state.buffers.destroy(state.sortKeys);
  state.sortKeys = state.buffers.create("embedding sort keys", bytes);
  if (state.sortTree) {
    state.buffers.destroy(state.sortTree.runStart);
    state.buffers.destroy(state.sortTree.sums);
  }
  // The tree update's row sums: a float per sorted key and column.
  const sums = (bytes / 8) * state.spec.embeddingDim * 4;
  const limits = state.device.limits;
  state.sortTree = sums > Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize)
    ? null
    : {
      runStart: state.buffers.create("embedding run starts", bytes / 2),
      sums: state.buffers.create("embedding row sums", sums),
    };
  return true;
}

/** LSQ: grows the buffer of the tables' step-gradient parts to the chunk's largest batch. */
export function ensureLsqParts(
  state: GpuState,
  chunk: BatchChunk,
  batch: number,
  samples: number,
): boolean {
  const q = state.quant;
  if (!q || q.quantizer !== "lsq" || q.embeddingBits === null) return false;
  let entries = 1;
  for (let s0 = 0; s0 < samples; s0 += batch) {
    entries = Math.max(entries, batchEntries(chunk, s0, Math.min(batch, samples - s0)));
  }
  const tables = state.spec.tableRows.length;
  return ensureInput(state, "lsqParts", tables * entries * state.spec.embeddingDim * 4);
}

/** The most indices any one table has in the batch of `rows` samples from `s0`. */
export function batchEntries(chunk: BatchChunk, s0: number, rows: number): number {
  let entries = 0;
  for (const off of chunk.offsets) entries = Math.max(entries, off[s0 + rows] - off[s0]);
  return entries;
}

/** The most indices a table has in one full batch of `rows` samples of `chunk`. */
export function largestBag(chunk: BatchChunk, rows: number): number {
  let most = 0;
  for (let s = 0; s + rows <= chunk.samples; s += rows) {
    most = Math.max(most, batchEntries(chunk, s, rows));
  }
  return most;
}

/** Bytes of the sort keys of every table for a batch of `entries` indices per table. */
export function sortKeyBytes(state: GpuState, entries: number): number {
  return state.spec.tableRows.length * sortSegment(entries) * 8;
}
