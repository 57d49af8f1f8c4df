/**
 * The global embedding update of a GPU replica, computed every iteration: what
 * `globalRowDeltas` of `compression.ts` returns, bit for bit, with the workers' rows merged
 * rather than sorted, loops of one element type each, and the output arrays kept from one
 * iteration to the next (they are uploaded before the next iteration computes again).
 *
 * @module
 */
import type { ModelSpec } from "../engine/spec.ts";
import type { Compression } from "./compression.ts";

/** One global update: `rows` global rows, their `(table, row)` and float64 amounts. */
export interface RowDeltas {
  rows: number;
  entries: Uint32Array;
  deltas: Float64Array;
}

/** A worker's message, read as its parts. */
interface MessageView<V> {
  counts: Int32Array;
  rows: Int32Array;
  values: V;
}

/** Rows per table are at most 2^31 - 1: no row id reaches this. */
const NO_ROW = 2 ** 31;

/**
 * The global row update of `compression.ts`'s `globalRowDeltas`, reusing its arrays: each
 * {@linkcode GlobalRowDeltas.compute} overwrites the previous result.
 */
export class GlobalRowDeltas {
  readonly #tables: number;
  readonly #d: number;
  readonly #bits: 8 | 16 | null;
  #entries = new Uint32Array(0);
  #deltas = new Float64Array(0);

  constructor(spec: ModelSpec, config: Pick<Compression, "embeddingBits">) {
    this.#tables = spec.tableRows.length;
    this.#d = spec.embeddingDim;
    this.#bits = config.embeddingBits;
  }

  /**
   * Per global row (table by table, rows ascending) its `(table, row)` and the amounts
   * `learningRate * ((s * acc[q]) / workers)`, `acc` summing the workers' values in rank order
   * (Int32 sums of levels under INT8/INT16, else FP32 sums), `s` the table's shared scale.
   */
  compute(
    workers: number,
    learningRate: number,
    scales: Float32Array,
    messages: readonly Int8Array[],
  ): RowDeltas {
    const T = this.#tables, d = this.#d;
    let most = 0;
    for (const m of messages) {
      const counts = new Int32Array(m.buffer, m.byteOffset, T);
      for (let t = 0; t < T; t++) most += counts[t];
    }
    if (this.#entries.length < 2 * most) this.#entries = new Uint32Array(2 * most);
    if (this.#deltas.length < most * d) this.#deltas = new Float64Array(most * d);
    const out = { entries: this.#entries, deltas: this.#deltas };
    let rows: number;
    if (this.#bits === null) {
      const views = this.#views(messages, (b, at, n) => new Float32Array(b, at, n));
      rows = mergeFloat32(views, T, d, workers, learningRate, out);
    } else {
      const views = this.#bits === 8
        ? this.#views(messages, (b, at, n) => new Int8Array(b, at, n))
        : this.#views(messages, (b, at, n) => new Int16Array(b, at, n));
      rows = mergeLevels(views, T, d, workers, learningRate, scales, out);
    }
    return {
      rows,
      entries: this.#entries.subarray(0, 2 * rows),
      deltas: this.#deltas.subarray(0, rows * d),
    };
  }

  #views<V>(
    messages: readonly Int8Array[],
    values: (b: ArrayBufferLike, at: number, n: number) => V,
  ): MessageView<V>[] {
    const T = this.#tables, d = this.#d;
    return messages.map((m) => {
      const counts = new Int32Array(m.buffer, m.byteOffset, T);
      let u = 0;
      for (let t = 0; t < T; t++) u += counts[t];
      const rows = new Int32Array(m.buffer, m.byteOffset + 4 * T, u);
      return { counts, rows, values: values(m.buffer, m.byteOffset + 4 * (T + u), u * d) };
    });
  }
}

/** The next row of table `t` over every worker's cursor, or {@linkcode NO_ROW}. */
function lowestRow(
  views: readonly { rows: Int32Array }[],
  cursor: Int32Array,
  end: Int32Array,
): number {
  let row = NO_ROW;
  for (let k = 0; k < views.length; k++) {
    if (cursor[k] < end[k]) {
      const r = views[k].rows[cursor[k]];
      if (r < row) row = r;
    }
  }
  return row;
}

/** Cursors of every worker at the start and end of table `t`'s rows; `first` moves on. */
function tableCursors(
  views: readonly { counts: Int32Array }[],
  t: number,
  first: Int32Array,
  cursor: Int32Array,
  end: Int32Array,
): void {
  for (let k = 0; k < views.length; k++) {
    cursor[k] = first[k];
    end[k] = first[k] + views[k].counts[t];
    first[k] = end[k];
  }
}

function mergeFloat32(
  views: readonly MessageView<Float32Array>[],
  T: number,
  d: number,
  workers: number,
  learningRate: number,
  out: { entries: Uint32Array; deltas: Float64Array },
): number {
  const K = views.length, acc = new Float32Array(d);
  const first = new Int32Array(K), cursor = new Int32Array(K), end = new Int32Array(K);
  const { entries, deltas } = out;
  let n = 0;
  for (let t = 0; t < T; t++) {
    tableCursors(views, t, first, cursor, end);
    for (let row = lowestRow(views, cursor, end); row !== NO_ROW;) {
      acc.fill(0);
      for (let k = 0; k < K; k++) {
        const v = views[k];
        if (cursor[k] >= end[k] || v.rows[cursor[k]] !== row) continue;
        const values = v.values, src = cursor[k]++ * d;
        // acc is float32: each sum rounds as compression.ts's does.
        for (let q = 0; q < d; q++) acc[q] += values[src + q];
      }
      entries[2 * n] = t;
      entries[2 * n + 1] = row;
      const at = n * d;
      for (let q = 0; q < d; q++) deltas[at + q] = learningRate * ((1 * acc[q]) / workers);
      n++;
      row = lowestRow(views, cursor, end);
    }
  }
  return n;
}

function mergeLevels(
  views: readonly MessageView<Int8Array | Int16Array>[],
  T: number,
  d: number,
  workers: number,
  learningRate: number,
  scales: Float32Array,
  out: { entries: Uint32Array; deltas: Float64Array },
): number {
  const K = views.length, acc = new Int32Array(d);
  const first = new Int32Array(K), cursor = new Int32Array(K), end = new Int32Array(K);
  const { entries, deltas } = out;
  let n = 0;
  for (let t = 0; t < T; t++) {
    tableCursors(views, t, first, cursor, end);
    const s = scales[t];
    for (let row = lowestRow(views, cursor, end); row !== NO_ROW;) {
      acc.fill(0);
      for (let k = 0; k < K; k++) {
        const v = views[k];
        if (cursor[k] >= end[k] || v.rows[cursor[k]] !== row) continue;
        const values = v.values, src = cursor[k]++ * d;
        for (let q = 0; q < d; q++) acc[q] += values[src + q];
      }
      entries[2 * n] = t;
      entries[2 * n + 1] = row;
      const at = n * d;
      for (let q = 0; q < d; q++) deltas[at + q] = learningRate * ((s * acc[q]) / workers);
      n++;
      row = lowestRow(views, cursor, end);
    }
  }
  return n;
}
