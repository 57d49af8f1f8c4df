/**
 * Embedding bags summed straight from packed integer tables (a model file's INT2/4/8/16 codes
 * and per-table scales): only the rows a batch names are dequantized, into the interaction
 * input, so a packed model is scored without FP32 tables (an eighth of the memory at INT4).
 *
 * Every value is `fround(level * scale)`, the float32 that `readModelFile` expands the table
 * to, and bags are summed in the order of the FP32 gather (`program.ts`: a one-row bag is
 * copied, a longer one summed from 0 in float32 in index order), so the sums are bit for bit
 * those of the expanded tables. Levels of up to 8 bits are read through a per-table lookup of
 * the values every byte holds.
 *
 * @module
 */
import type { PackedEmbeddings } from "../model_file.ts";

/** Sums bags of rows of packed tables into float32 rows; see the module documentation. */
export class PackedGather {
  readonly #codes: Uint8Array[];
  readonly #scales: Float32Array;
  readonly #bits: number;
  readonly #dim: number;
  readonly #rows: readonly number[];
  /**
   * Per table (bits <= 8): the values of the `8 / bits` fields of every byte, low bits first,
   * at `byte * 8 / bits + field`.
   */
  readonly #byteValues: Float32Array[];
  /** Bytes a row when rows are whole bytes (and bits <= 8), else 0. */
  readonly #rowBytes: number;
  /**
   * INT4: `#byteValues` viewed as one float64 per byte, the bits of its two float32 values
   * (the low one first), so that a byte is one load and one store. No float64 made so is a NaN
   * (its exponent bits would be those of a float32 infinity or NaN, and every value is finite),
   * so it is copied bit for bit.
   */
  readonly #bytePairs: Float64Array[];
  /** The float64 view of the last output gathered into, and the output it views. */
  #out64: Float64Array | null = null;
  #outOf: Float32Array | null = null;
  /** Where `#touch` leaves its sum, so that its reads are not dropped. */
  #touched = 0;

  /** Checks that every table holds `rows * dim` codes and builds the lookup tables. */
  constructor(tables: PackedEmbeddings, tableRows: readonly number[], dim: number) {
    const { bits, codes, scales } = tables;
    if (![2, 4, 8, 16].includes(bits)) {
      throw new RangeError(`Expected packed tables of 2, 4, 8 or 16 bits but found ${bits}`);
    }
    if (codes.length !== tableRows.length || scales.length !== tableRows.length) {
      throw new RangeError(
        `Expected ${tableRows.length} packed tables and scales but found ${codes.length} and ${scales.length}`,
      );
    }
    tableRows.forEach((rows, t) => {
      const bytes = Math.ceil((rows * dim * bits) / 8);
      if (codes[t].length !== bytes) {
        throw new RangeError(
          `Expected packed table ${t} (${rows} rows of ${dim}) to hold ${bytes} bytes but found ${
            codes[t].length
          }`,
        );
      }
    });
    this.#codes = codes;
    this.#scales = scales;
    this.#bits = bits;
    this.#dim = dim;
    this.#rows = tableRows.slice();
    const shift = 32 - bits, per = 8 / bits, mask = (1 << bits) - 1;
    this.#rowBytes = bits <= 8 && (dim * bits) % 8 === 0 ? (dim * bits) / 8 : 0;
    this.#byteValues = bits > 8
      ? []
      : Array.from(scales, (s) =>
        Float32Array.from({ length: 256 * per }, (_, i) => {
          const level = (((Math.floor(i / per) >> ((i % per) * bits)) & mask) << shift) >> shift;
          return Math.fround(level * s);
        }));
    this.#bytePairs = bits === 4 ? this.#byteValues.map((v) => new Float64Array(v.buffer)) : [];
  }

  /** Bits per value. */
  get bits(): number {
    return this.#bits;
  }

  /** Bytes of the packed tables. */
  get bytes(): number {
    return this.#codes.reduce((n, c) => n + c.length, 0);
  }

  /**
   * Sums the bags of samples `s0 .. s0 + rows - 1` of table `t` (`indices`, `offsets` as in a
   * batch chunk) into `out[base + r * ld + q]`, `q < dim`.
   */
  gather(
    t: number,
    out: Float32Array,
    base: number,
    ld: number,
    indices: Int32Array,
    offsets: Int32Array,
    s0: number,
    rows: number,
  ): void {
    if (this.#rowBytes > 0) this.#touch(t, indices, offsets[s0], offsets[s0 + rows]);
    if (this.#bits === 4 && this.#rowBytes > 0 && base % 2 === 0 && ld % 2 === 0) {
      if (this.#outOf !== out) {
        if (out.byteOffset % 8 !== 0) {
          return this.#gatherRows(t, out, base, ld, indices, offsets, s0, rows);
        }
        this.#out64 = new Float64Array(out.buffer, out.byteOffset, out.length >> 1);
        this.#outOf = out;
      }
      return this.#gatherInt4(t, base, ld, indices, offsets, s0, rows);
    }
    this.#gatherRows(t, out, base, ld, indices, offsets, s0, rows);
  }

  /**
   * Reads the first and last byte of every row that `indices[j0 .. j1 - 1]` name, before their
   * values are, so that the rows' cache misses overlap rather than come one row at a time.
   */
  #touch(t: number, indices: Int32Array, j0: number, j1: number): void {
    const codes = this.#codes[t], rb = this.#rowBytes;
    let sum = 0;
    for (let j = j0; j < j1; j++) {
      const at = indices[j] * rb;
      sum += codes[at] + codes[at + rb - 1];
    }
    this.#touched = sum;
  }

  /** `gather` of INT4 rows of whole bytes, a byte (two values) per float64 load and store. */
  #gatherInt4(
    t: number,
    base: number,
    ld: number,
    indices: Int32Array,
    offsets: Int32Array,
    s0: number,
    rows: number,
  ): void {
    const out = this.#out64!, pairs = this.#bytePairs[t], codes = this.#codes[t];
    const rb = this.#rowBytes, d = this.#dim;
    const out32 = this.#outOf!, lut = this.#byteValues[t];
    for (let r = 0; r < rows; r++) {
      const dst = base + r * ld;
      const a = offsets[s0 + r], e = offsets[s0 + r + 1];
      if (e - a === 1) {
        const start = indices[a] * rb;
        for (let k = 0, o = dst >> 1; k < rb; k++) out[o + k] = pairs[codes[start + k]];
        continue;
      }
      for (let q = 0; q < d; q++) out32[dst + q] = 0;
      for (let j = a; j < e; j++) {
        const start = indices[j] * rb;
        for (let k = 0, o = dst; k < rb; k++, o += 2) {
          const v = codes[start + k] << 1;
          out32[o] += lut[v];
          out32[o + 1] += lut[v + 1];
        }
      }
    }
  }

  /** `gather`, a row at a time (any width and bits). */
  #gatherRows(
    t: number,
    out: Float32Array,
    base: number,
    ld: number,
    indices: Int32Array,
    offsets: Int32Array,
    s0: number,
    rows: number,
  ): void {
    const d = this.#dim;
    for (let r = 0; r < rows; r++) {
      const dst = base + r * ld;
      const a = offsets[s0 + r], e = offsets[s0 + r + 1];
      if (e - a === 1) {
        this.#row(t, indices[a], out, dst, false);
        continue;
      }
      for (let q = 0; q < d; q++) out[dst + q] = 0;
      for (let j = a; j < e; j++) this.#row(t, indices[j], out, dst, true);
    }
  }

  /** Table `t` dequantized whole (as `readModelFile` expands it). */
  dequantize(t: number): Float32Array {
    const rows = this.#rows[t];
    const out = new Float32Array(rows * this.#dim);
    for (let row = 0; row < rows; row++) this.#row(t, row, out, row * this.#dim, false);
    return out;
  }

  /** Writes (or adds, when `add`) row `row` of table `t` at `out[dst ..]`. */
  #row(t: number, row: number, out: Float32Array, dst: number, add: boolean): void {
    const d = this.#dim, bits = this.#bits, codes = this.#codes[t];
    if (bits === 16) {
      const s = this.#scales[t];
      for (let q = 0, at = row * d * 2; q < d; q++, at += 2) {
        const v = Math.fround((((codes[at] | (codes[at + 1] << 8)) << 16) >> 16) * s);
        out[dst + q] = add ? out[dst + q] + v : v;
      }
      return;
    }
    const lut = this.#byteValues[t], per = 8 / bits;
    if (this.#rowBytes > 0) {
      // Rows of whole bytes: each byte's `per` values are read from the lookup at once.
      const start = row * this.#rowBytes, end = start + this.#rowBytes;
      if (per === 2 && !add) {
        for (let at = start, o = dst; at < end; at++, o += 2) {
          const v = codes[at] << 1;
          out[o] = lut[v];
          out[o + 1] = lut[v + 1];
        }
      } else if (add) {
        for (let at = start, o = dst; at < end; at++, o += per) {
          for (let k = 0, v = codes[at] * per; k < per; k++) out[o + k] += lut[v + k];
        }
      } else {
        for (let at = start, o = dst; at < end; at++, o += per) {
          for (let k = 0, v = codes[at] * per; k < per; k++) out[o + k] = lut[v + k];
        }
      }
      return;
    }
    // Bit position of the row's first value: beyond 32 bits for large tables, so a float.
    const first = row * d * bits;
    const byte0 = Math.floor(first / 8);
    for (let q = 0, bit = first - byte0 * 8; q < d; q++, bit += bits) {
      const v = lut[codes[byte0 + (bit >> 3)] * per + (bit & 7) / bits];
      out[dst + q] = add ? out[dst + q] + v : v;
    }
  }
}
