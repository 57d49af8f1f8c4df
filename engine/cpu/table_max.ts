/**
 * The largest |w| of a whole embedding table, kept up to date without reading the whole table
 * each time: DoReFa ("PACT") needs max |tanh(w)| = tanh(max |w|) of every table at every step,
 * min-max scales (DQRM, HAWQ) every P steps, but SGD only changes the rows a batch touched. The
 * table is cut into blocks of {@linkcode TABLE_MAX_BLOCK} floats whose maxima are kept; each
 * step marks the blocks its update wrote ({@linkcode TableMax.mark}), and a refresh re-reads only
 * those ({@linkcode TableMax.refresh}), then takes the maximum of the blocks' maxima. A maximum
 * does not depend on the order it is taken in (and a NaN anywhere gives NaN either way), so the
 * result is the whole-table pass's, bit for bit — while the maxima stay valid: anything that
 * writes the table outside the marked updates must {@linkcode TableMax.invalidate} them.
 *
 * @module
 */
import type { Kernels } from "./wasm.ts";

/** Floats per block (64 rows of 16): a multiple of 4, so every block stays 16-byte aligned. */
export const TABLE_MAX_BLOCK = 1024;

/** Block maxima of one table, for the thread that finds its scale. */
export class TableMax {
  readonly #blocks: Float32Array;
  /** Blocks written since the last refresh (ids, a flag per block), and whether any are kept. */
  readonly #dirty: Int32Array;
  readonly #isDirty: Uint8Array;
  #dirtyCount = 0;
  #valid = false;
  readonly #offset: number;
  readonly #length: number;

  /** A table of `length` floats at byte `offset` of its memory. */
  constructor(offset: number, length: number) {
    this.#offset = offset;
    this.#length = length;
    const n = Math.ceil(length / TABLE_MAX_BLOCK);
    this.#blocks = new Float32Array(n);
    this.#dirty = new Int32Array(n);
    this.#isDirty = new Uint8Array(n);
  }

  /** Whether the block maxima are kept (a {@linkcode TableMax.refresh} re-reads marked blocks). */
  get valid(): boolean {
    return this.#valid;
  }

  /** Forgets the block maxima: the next {@linkcode TableMax.refresh} reads the whole table. */
  invalidate(): void {
    this.#valid = false;
    for (let i = 0; i < this.#dirtyCount; i++) this.#isDirty[this.#dirty[i]] = 0;
    this.#dirtyCount = 0;
  }

  /**
   * Marks the blocks of the rows `indices[offsets[s0]] … indices[offsets[s0 + rows] - 1]` (of
   * `dim` floats each) as written: the next refresh re-reads them. A no-op while not valid.
   */
  mark(
    indices: ArrayLike<number>,
    offsets: ArrayLike<number>,
    s0: number,
    rows: number,
    dim: number,
  ): void {
    if (!this.#valid) return;
    const isDirty = this.#isDirty, dirty = this.#dirty;
    for (let j = offsets[s0], e = offsets[s0 + rows]; j < e; j++) {
      const first = indices[j] * dim;
      const last = first + dim - 1;
      for (let b = Math.floor(first / TABLE_MAX_BLOCK); b * TABLE_MAX_BLOCK <= last; b++) {
        if (isDirty[b]) continue;
        isDirty[b] = 1;
        dirty[this.#dirtyCount++] = b;
      }
    }
  }

  /**
   * The table's largest |w|: the marked blocks re-read when the maxima are valid, else every
   * block (after which they are valid).
   */
  refresh(k: Kernels): number {
    if (!this.#valid) return this.full(k);
    for (let i = 0; i < this.#dirtyCount; i++) {
      const b = this.#dirty[i];
      this.#isDirty[b] = 0;
      this.#readBlock(k, b);
    }
    this.#dirtyCount = 0;
    return this.#max();
  }

  #readBlock(k: Kernels, b: number): void {
    const start = b * TABLE_MAX_BLOCK;
    const count = Math.min(TABLE_MAX_BLOCK, this.#length - start);
    this.#blocks[b] = k.maxAbsFlat(this.#offset + start * 4, count);
  }

  /** Reads every block: the table's largest |w| (the maxima are valid from then on). */
  full(k: Kernels): number {
    this.invalidate();
    for (let b = 0; b < this.#blocks.length; b++) this.#readBlock(k, b);
    this.#valid = true;
    return this.#max();
  }

  #max(): number {
    const blocks = this.#blocks;
    let m = 0;
    for (let b = 0; b < blocks.length; b++) {
      const v = blocks[b];
      if (v > m) m = v;
      else if (v !== v) return NaN;
    }
    return m;
  }
}
