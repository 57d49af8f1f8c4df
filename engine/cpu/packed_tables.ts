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
