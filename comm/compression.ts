/**
 * Gradient compression for data-parallel training (the paper's §3.3; reference study §4): each
 * part switchable.
 *
 * - Sparse embedding gradients: a worker sends, per table, the unique rows its local batch
 *   touched (sorted, duplicates coalesced) and their summed gradients. Lossless.
 * - INT8/INT16 gradients, one scale per tensor (per table, per MLP weight matrix, per bias): local
 *   scale `max|g| / n` → mean of the local scales over the workers (as the public code) →
 *   quantize with it (half to even, clamped) → exact integer sum in Int32 → `s · sum / N`. For
 *   embeddings only the values are quantized, never the row ids.
 * - Error compensation, MLP only: `z = g + e`, `q = Q(z; s)`, `e ← z − s·q` (the local residual,
 *   kept per worker).
 *
 * The same code serves real workers ({@linkcode exchangeWithCommunicator}) and the simulated
 * workers of one engine (`simulated.ts`), so both give the same model bit for bit.
 *
 * @module
 */
import { z } from "zod";
import type { BatchChunk } from "../engine/batch.ts";
import type { CpuGradientAccess } from "../engine/cpu/mod.ts";
import type { ByteCount } from "../engine/engine.ts";
import { levels, scaleOf } from "../engine/quant.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { COMPRESSION_PRESETS, type CompressionPresetName } from "../record/presets.ts";
import type { Communicator } from "./communicator.ts";

export type { ByteCount };

/** A message's bytes by part, with their total (the one place `total` is summed). */
export function byteCount(embedding: number, mlp: number, scales: number): ByteCount {
  return { embedding, mlp, scales, total: embedding + mlp + scales };
}
/** The compression presets by name (from `record/presets.ts`). */
export { COMPRESSION_PRESETS };

/** Zod schema of the compression settings. */
export const CompressionSchema = z.object({
  /** Embedding gradients as unique touched rows + values (true) or as dense tables (false). */
  sparseEmbeddings: z.boolean().default(true),
  /** Bits of the embedding gradient values (sparse only), or null for FP32. */
  embeddingBits: z.union([z.literal(8), z.literal(16), z.null()]).default(null),
  /** Bits of the MLP gradients, or null for FP32. */
  mlpBits: z.union([z.literal(8), z.literal(16), z.null()]).default(null),
  /** Error compensation of the quantized MLP gradients. */
  errorCompensation: z.boolean().default(false),
}).superRefine((c, ctx) => {
  if (c.embeddingBits !== null && !c.sparseEmbeddings) {
    ctx.addIssue({
      code: "custom",
      path: ["embeddingBits"],
      message: "Expected sparse embedding gradients when quantizing them",
    });
  }
  if (c.errorCompensation && c.mlpBits === null) {
    ctx.addIssue({
      code: "custom",
      path: ["errorCompensation"],
      message: "Expected quantized MLP gradients (mlpBits) with error compensation",
    });
  }
});

/** Compression settings. */
export type Compression = z.infer<typeof CompressionSchema>;

// The presets (record/presets.ts, re-exported here) are compression settings.
const _PRESETS_ARE_COMPRESSIONS: Readonly<Record<CompressionPresetName, Compression>> =
  COMPRESSION_PRESETS;

/** A short description of `c`, e.g. `"sparse + emb int8 + mlp int8 + ec"`. */
export function compressionName(c: Compression): string {
  const parts = [c.sparseEmbeddings ? "sparse" : "dense"];
  if (c.embeddingBits) parts.push(`emb int${c.embeddingBits}`);
  if (c.mlpBits) parts.push(`mlp int${c.mlpBits}`);
  if (c.errorCompensation) parts.push("ec");
  return parts.join(" + ");
}

/** One MLP tensor's place in the packed MLP gradient. */
export interface TensorSlot {
  /** `"bottom.0.weight"` etc. */
  name: string;
  offset: number;
  length: number;
}

/** The packed MLP gradient: every weight matrix (unpadded, row-major) then its bias, in order. */
export function planMlpTensors(spec: ModelSpec): TensorSlot[] {
  const out: TensorSlot[] = [];
  let offset = 0;
  for (const [side, widths] of [["bottom", spec.bottomMlp], ["top", spec.topMlp]] as const) {
    for (let l = 1; l < widths.length; l++) {
      const weights = widths[l - 1] * widths[l];
      out.push({ name: `${side}.${l - 1}.weight`, offset, length: weights });
      offset += weights;
      out.push({ name: `${side}.${l - 1}.bias`, offset: offset, length: widths[l] });
      offset += widths[l];
    }
  }
  return out;
}

/** Number of scales a worker sends per iteration under `c`. */
export function scaleCount(spec: ModelSpec, c: Compression): number {
  const layers = spec.bottomMlp.length - 1 + spec.topMlp.length - 1;
  return (c.embeddingBits ? spec.tableRows.length : 0) + (c.mlpBits ? 2 * layers : 0);
}

type Narrow = Int8Array | Int16Array;
const narrow = (bits: 8 | 16, n: number): Narrow =>
  bits === 8 ? new Int8Array(n) : new Int16Array(n);

/**
 * One worker's side of the exchange: its local gradients, their quantized messages and its
 * error-compensation residual.
 */
export class WorkerGradients {
  readonly spec: ModelSpec;
  readonly config: Compression;
  readonly tensors: TensorSlot[];
  /** The packed local MLP gradient (plus the residual under error compensation). */
  readonly mlp: Float32Array;
  /** Error-compensation residual, or null. */
  readonly residual: Float32Array | null;
  /** Quantized MLP gradient, or null. */
  readonly mlpQ: Narrow | null;
  /** Dense embedding gradients (dense mode), one array per table. */
  readonly dense: Float32Array | null;
  /** Local scales: embedding tables first, then MLP tensors (when quantized). */
  readonly scales: Float32Array;
  /** Unique rows per table (sparse mode). */
  readonly counts: Int32Array;
  #rows = new Int32Array(0);
  #values = new Float32Array(0);
  #keys = new Float64Array(0);
  /** The embedding message: counts, row ids, then values (FP32 or narrow), as bytes. */
  #message = new Int8Array(0);
  #messageBytes = 0;
  #unique = 0;

  constructor(spec: ModelSpec, config: Compression) {
    this.spec = spec;
    this.config = CompressionSchema.parse(config);
    this.tensors = planMlpTensors(spec);
    const p = this.tensors.reduce((n, t) => n + t.length, 0);
    this.mlp = new Float32Array(p);
    this.residual = this.config.errorCompensation ? new Float32Array(p) : null;
    this.mlpQ = this.config.mlpBits ? narrow(this.config.mlpBits, p) : null;
    this.dense = this.config.sparseEmbeddings
      ? null
      : new Float32Array(spec.tableRows.reduce((n, r) => n + r * spec.embeddingDim, 0));
    this.scales = new Float32Array(scaleCount(spec, this.config));
    this.counts = new Int32Array(spec.tableRows.length);
  }

  /** Unique rows over every table in the last collected batch (sparse mode). */
  get uniqueRows(): number {
    return this.#unique;
  }

  /** Copies the local gradients of batch rows `[0, rows)` (samples `s0...`) out of the engine. */
  collect(access: CpuGradientAccess, chunk: BatchChunk, s0: number, rows: number): void {
    const mem = access.memory;
    let at = 0;
    for (const l of access.layers) {
      for (let o = 0; o < l.outputs; o++) {
        this.mlp.set(mem.subarray(l.gw + o * l.inP, l.gw + o * l.inP + l.inputs), at);
        at += l.inputs;
      }
      this.mlp.set(mem.subarray(l.gb, l.gb + l.outputs), at);
      at += l.outputs;
    }
    if (this.residual) {
      const e = this.residual, m = this.mlp;
      for (let i = 0; i < m.length; i++) m[i] += e[i];
    }
    const d = this.spec.embeddingDim;
    if (this.dense) {
      this.dense.fill(0);
      let base = 0;
      this.spec.tableRows.forEach((n, t) => {
        const idx = chunk.indices[t], off = chunk.offsets[t];
        for (let r = 0; r < rows; r++) {
          const g = access.dt + r * access.ldt + (t + 1) * access.dimP;
          for (let j = off[s0 + r]; j < off[s0 + r + 1]; j++) {
            const dst = base + idx[j] * d;
            for (let q = 0; q < d; q++) this.dense![dst + q] += mem[g + q];
          }
        }
        base += n * d;
      });
      return;
    }
    // Sparse: sort (row, sample) keys per table, coalesce equal rows in sample order.
    let total = 0;
    for (let t = 0; t < this.spec.tableRows.length; t++) {
      total += chunk.offsets[t][s0 + rows] - chunk.offsets[t][s0];
    }
    if (this.#rows.length < total) {
      this.#rows = new Int32Array(total);
      this.#values = new Float32Array(total * d);
      this.#keys = new Float64Array(total);
    }
    let u = 0;
    for (let t = 0; t < this.spec.tableRows.length; t++) {
      const idx = chunk.indices[t], off = chunk.offsets[t];
      const a = off[s0], e = off[s0 + rows];
      const keys = this.#keys.subarray(0, e - a);
      let k = 0;
      for (let r = 0; r < rows; r++) {
        for (let j = off[s0 + r]; j < off[s0 + r + 1]; j++) keys[k++] = idx[j] * rows + r;
      }
      keys.sort();
      const first = u;
      let last = -1;
      for (let i = 0; i < keys.length; i++) {
        const row = Math.floor(keys[i] / rows);
        const r = keys[i] - row * rows;
        const g = access.dt + r * access.ldt + (t + 1) * access.dimP;
        if (row !== last) {
          this.#rows[u] = row;
          this.#values.set(mem.subarray(g, g + d), u * d);
          u++;
          last = row;
        } else {
          const v = (u - 1) * d;
          for (let q = 0; q < d; q++) this.#values[v + q] += mem[g + q];
        }
      }
      this.counts[t] = u - first;
    }
    this.#unique = u;
  }

  /** Fills {@linkcode scales} with the local scales of the collected gradients. */
  localScales(): Float32Array {
    const c = this.config, d = this.spec.embeddingDim;
    let at = 0;
    if (c.embeddingBits) {
      let row = 0;
      for (let t = 0; t < this.counts.length; t++) {
        const v = this.#values.subarray(row * d, (row + this.counts[t]) * d);
        // A table this worker did not touch contributes 0 to the mean.
        this.scales[at++] = v.length ? scaleOf(maxAbsOf(v), c.embeddingBits) : 0;
        row += this.counts[t];
      }
    }
    if (c.mlpBits) {
      for (const s of this.tensors) {
        const v = this.mlp.subarray(s.offset, s.offset + s.length);
        this.scales[at++] = scaleOf(maxAbsOf(v), c.mlpBits);
      }
    }
    return this.scales;
  }

  /**
   * Quantizes the collected gradients with the shared `scales` (laid out as
   * {@linkcode scales}) and builds the embedding message; keeps the MLP residual under error
   * compensation.
   */
  quantize(scales: Float32Array): void {
    const c = this.config, d = this.spec.embeddingDim;
    const tables = c.embeddingBits ? this.counts.length : 0;
    if (c.mlpBits) {
      const n = levels(c.mlpBits), q = this.mlpQ!, m = this.mlp, e = this.residual;
      for (let i = 0; i < this.tensors.length; i++) {
        const slot = this.tensors[i];
        const from = slot.offset, to = slot.offset + slot.length;
        if (e) quantizeKeepingResidual(m, q, e, from, to, scales[tables + i], n);
        else quantizeRange(m, q, from, to, scales[tables + i], n);
      }
    }
    if (this.dense) return;
    // The embedding message: [counts (Int32 × T), rows (Int32 × u), values (u × d)].
    const u = this.#unique;
    const valueBytes = c.embeddingBits ? c.embeddingBits / 8 : 4;
    const bytes = 4 * (this.counts.length + u) + u * d * valueBytes;
    if (this.#message.length < bytes) this.#message = new Int8Array(bytes * 2);
    const buf = this.#message.buffer;
    new Int32Array(buf, 0, this.counts.length).set(this.counts);
    new Int32Array(buf, 4 * this.counts.length, u).set(this.#rows.subarray(0, u));
    const vAt = 4 * (this.counts.length + u);
    const values = this.#values.subarray(0, u * d);
    if (!c.embeddingBits) new Float32Array(buf, vAt, u * d).set(values);
    else {
      const out = c.embeddingBits === 8
        ? new Int8Array(buf, vAt, u * d)
        : new Int16Array(buf, vAt, u * d);
      const n = levels(c.embeddingBits);
      let row = 0;
      for (let t = 0; t < this.counts.length; t++) {
        const s = scales[t], from = row * d, to = (row + this.counts[t]) * d;
        if (s > 0) quantizeRange(values, out, from, to, s, n);
        else out.fill(0, from, to);
        row += this.counts[t];
      }
    }
    this.#messageBytes = bytes;
  }

  /** The embedding message built by {@linkcode quantize} (sparse mode). */
  message(): Int8Array {
    return this.#message.subarray(0, this.#messageBytes);
  }

  /** Bytes this worker sends for the last iteration, by part. */
  bytes(): ByteCount {
    const embedding = this.dense ? this.dense.byteLength : this.#messageBytes;
    const mlp = this.mlpQ ? this.mlpQ.byteLength : this.mlp.byteLength;
    return byteCount(embedding, mlp, this.scales.byteLength);
  }
}

function maxAbsOf(v: Float32Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) {
    const a = Math.abs(v[i]);
    if (a > m) m = a;
  }
  return m;
}

/**
 * `2^52 + 2^51`: adding and subtracting it rounds a float64 of magnitude below `2^51` to an
 * integer, half to even (IEEE's default rounding), without `Math.round`'s slow paths.
 */
const ROUND = 6755399441055744;

/*
 * The quantizer of the hot loops: `quantizeLevel` (engine/quant.ts) inlined. The magic-number
 * rounding is exact below 2^51; above, it is off by at most one and the clamp maps it to the
 * same bound, as are infinities. NaN stays NaN (stored as 0, as before). A test checks equality
 * with quantizeLevel, halves and extremes included.
 */

/**
 * `out[i] = quantizeLevel(x[i], s, n)` (engine/quant.ts) for `i` in `[from, to)`, without
 * allocation or `Math.round`: the INT8/INT16 gradient quantizer's loop.
 */
export function quantizeRange(
  x: Float32Array,
  out: Int8Array | Int16Array,
  from: number,
  to: number,
  s: number,
  n: number,
): void {
  const lo = -n - 1;
  for (let i = from; i < to; i++) {
    const r = (Math.fround(x[i] / s) + ROUND) - ROUND;
    out[i] = r > n ? n : r < lo ? lo : r;
  }
}

/** {@linkcode quantizeRange} keeping the error-compensation residual `e = x − s·q`. */
function quantizeKeepingResidual(
  x: Float32Array,
  out: Int8Array | Int16Array,
  e: Float32Array,
  from: number,
  to: number,
  s: number,
  n: number,
): void {
  const lo = -n - 1;
  for (let i = from; i < to; i++) {
    const xi = x[i];
    let r = (Math.fround(xi / s) + ROUND) - ROUND;
    r = r > n ? n : r < lo ? lo : r;
    out[i] = r;
    e[i] = xi - r * s;
  }
}

/**
 * Writes the global gradient into the engine and updates the tables: the MLP gradients
 * (`mlpSum`: FP32 sums or Int32 sums of levels) become `sum / N` or `s · sum / N` in the
 * engine's gradient buffers (its SGD applies them); the embedding rows of every worker's
 * message (`messages`, in rank order) or the dense sums are applied as `w -= lr · g`.
 */
export function applyGlobalGradients(
  access: CpuGradientAccess,
  w: WorkerGradients,
  workers: number,
  learningRate: number,
  scales: Float32Array,
  mlpSum: Float32Array | Int32Array,
  messages: readonly Int8Array[],
  denseSum: Float32Array | null,
): void {
  const d = w.spec.embeddingDim;
  writeGlobalMlpGradient(access, w, workers, scales, mlpSum);
  // Embeddings.
  if (denseSum) {
    let base = 0;
    access.tables.forEach((table) => {
      const g = denseSum;
      for (let i = 0; i < table.length; i++) {
        if (g[base + i] !== 0) table[i] -= learningRate * (g[base + i] / workers);
      }
      base += table.length;
    });
    return;
  }
  const stores = access.tables;
  forEachGlobalRow(w, scales, messages, (t, row, acc, s) => {
    const table = stores[t], dst = row * d;
    for (let q = 0; q < d; q++) table[dst + q] -= learningRate * ((s * acc[q]) / workers);
  });
}

/**
 * Writes the global MLP gradient (`mlpSum`: FP32 sums or Int32 sums of levels) into the
 * gradient buffers of `access` as `sum / N` or `s · sum / N`, weights then bias of each layer.
 */
export function writeGlobalMlpGradient(
  access: Pick<CpuGradientAccess, "memory" | "layers">,
  w: Pick<WorkerGradients, "spec" | "config">,
  workers: number,
  scales: Float32Array,
  mlpSum: Float32Array | Int32Array,
): void {
  const c = w.config, mem = access.memory;
  const eTables = c.embeddingBits ? w.spec.tableRows.length : 0;
  let at = 0, tensor = 0;
  const scaleOfTensor = () => c.mlpBits ? scales[eTables + tensor++] : (tensor++, 1);
  for (const l of access.layers) {
    const sw = scaleOfTensor();
    for (let o = 0; o < l.outputs; o++) {
      const dst = l.gw + o * l.inP;
      for (let i = 0; i < l.inputs; i++) mem[dst + i] = (sw * mlpSum[at + i]) / workers;
      at += l.inputs;
    }
    const sb = scaleOfTensor();
    for (let i = 0; i < l.outputs; i++) mem[l.gb + i] = (sb * mlpSum[at + i]) / workers;
    at += l.outputs;
  }
}

/**
 * Visits every row of the global embedding gradient: table by table, rows ascending, with the
 * sum over the workers' messages (`messages`, in rank order) of the row's values (`acc`: Int32
 * sums of levels under INT8/INT16, else FP32 sums) and the table's shared scale `s` (1 in FP32).
 * The update of a row is `w -= learningRate * ((s * acc[q]) / workers)`.
 */
export function forEachGlobalRow(
  w: Pick<WorkerGradients, "spec" | "config">,
  scales: Float32Array,
  messages: readonly Int8Array[],
  visit: (table: number, row: number, acc: Int32Array | Float32Array, s: number) => void,
): void {
  const c = w.config, d = w.spec.embeddingDim;
  const tables = w.spec.tableRows.length;
  const valueBytes = c.embeddingBits ? c.embeddingBits / 8 : 4;
  const views = messages.map((m) => {
    const counts = new Int32Array(m.buffer, m.byteOffset, tables);
    let u = 0;
    for (let t = 0; t < tables; t++) u += counts[t];
    const rows = new Int32Array(m.buffer, m.byteOffset + 4 * tables, u);
    const vAt = m.byteOffset + 4 * (tables + u);
    const values = valueBytes === 4
      ? new Float32Array(m.buffer, vAt, u * d)
      : valueBytes === 2
      ? new Int16Array(m.buffer, vAt, u * d)
      : new Int8Array(m.buffer, vAt, u * d);
    return { counts, rows, values, next: 0 };
  });
  // Per table: a merge of the workers' rows (each worker's are sorted and unique), the lowest
  // row next, summed over the workers that sent it in rank order.
  const acc = c.embeddingBits ? new Int32Array(d) : new Float32Array(d);
  const size = messages.length;
  const cursor = new Int32Array(size), end = new Int32Array(size);
  for (let t = 0; t < tables; t++) {
    for (let rank = 0; rank < size; rank++) {
      cursor[rank] = views[rank].next;
      end[rank] = views[rank].next + views[rank].counts[t];
    }
    const s = c.embeddingBits ? scales[t] : 1;
    for (;;) {
      let row = -1;
      for (let rank = 0; rank < size; rank++) {
        if (cursor[rank] < end[rank]) {
          const r = views[rank].rows[cursor[rank]];
          if (row < 0 || r < row) row = r;
        }
      }
      if (row < 0) break;
      acc.fill(0);
      for (let rank = 0; rank < size; rank++) {
        const v = views[rank];
        if (cursor[rank] >= end[rank] || v.rows[cursor[rank]] !== row) continue;
        const src = cursor[rank]++ * d;
        for (let q = 0; q < d; q++) acc[q] += v.values[src + q];
      }
      visit(t, row, acc, s);
    }
    for (const v of views) v.next += v.counts[t];
  }
}

/**
 * The global embedding update as a list for a device to apply: per global row (table by table,
 * rows ascending, as {@linkcode forEachGlobalRow}) its `(table, row)` in `entries` and the
 * float64 amounts `learningRate * ((s * acc[q]) / workers)` to subtract, `d` per row.
 */
export function globalRowDeltas(
  w: Pick<WorkerGradients, "spec" | "config">,
  workers: number,
  learningRate: number,
  scales: Float32Array,
  messages: readonly Int8Array[],
): { rows: number; entries: Uint32Array; deltas: Float64Array } {
  const d = w.spec.embeddingDim;
  let most = 0;
  for (const m of messages) {
    const counts = new Int32Array(m.buffer, m.byteOffset, w.spec.tableRows.length);
    for (let t = 0; t < counts.length; t++) most += counts[t];
  }
  const entries = new Uint32Array(2 * most), deltas = new Float64Array(most * d);
  let n = 0;
  forEachGlobalRow(w, scales, messages, (t, row, acc, s) => {
    entries[2 * n] = t;
    entries[2 * n + 1] = row;
    for (let q = 0; q < d; q++) deltas[n * d + q] = learningRate * ((s * acc[q]) / workers);
    n++;
  });
  return { rows: n, entries: entries.subarray(0, 2 * n), deltas: deltas.subarray(0, n * d) };
}

/**
 * One iteration's exchange of a real worker: collect the local gradients, agree on the scales,
 * quantize, all-reduce, and write the global gradient (see {@linkcode applyGlobalGradients}).
 */
export function exchangeWithCommunicator(
  comm: Communicator,
  access: CpuGradientAccess,
  w: WorkerGradients,
  sums: { f32: Float32Array; i32: Int32Array },
  chunk: BatchChunk,
  s0: number,
  rows: number,
  learningRate: number,
): void {
  w.collect(access, chunk, s0, rows);
  const scales = w.localScales();
  if (scales.length) comm.allReduceMean(scales);
  w.quantize(scales);
  let mlpSum: Float32Array | Int32Array;
  if (w.mlpQ) {
    comm.allReduceSumWiden(w.mlpQ, sums.i32);
    mlpSum = sums.i32;
  } else {
    sums.f32.set(w.mlp);
    comm.allReduceSum(sums.f32);
    mlpSum = sums.f32;
  }
  let messages: Int8Array[] = [];
  if (w.dense) comm.allReduceSum(w.dense);
  else messages = comm.allGather(w.message());
  applyGlobalGradients(access, w, comm.size, learningRate, scales, mlpSum, messages, w.dense);
}
