/**
 * A dictionary from 32-bit categorical values to contiguous ids `0, 1, 2, …` in order of first
 * appearance, as DLRM's `convertDicts` builds them, with optional occurrence counts. Open
 * addressing with linear probing in typed arrays: about 8 bytes a slot, no object per entry.
 *
 * @module
 */

const EMPTY = -1;

/** Folder of a complete cache that holds its final dictionaries. */
export const DICTIONARIES_DIR = "dictionaries";

/**
 * Name of table `t`'s final dictionary in a dictionaries folder (`CACHE/dictionaries/` of a
 * complete cache): the raw (hashed) value of each row, `u32` little-endian, from row 0 (hash mode)
 * or row 1 (frequency mode, whose row 0 is shared by rare values).
 */
export function finalDictionaryFileName(t: number): string {
  return `table-${String(t).padStart(2, "0")}.bin`;
}

/** The row of a value's first id: 1 in frequency mode (row 0 is shared), else 0. */
export function rowOffset(index: "hash" | "frequency"): number {
  return index === "frequency" ? 1 : 0;
}
const INITIAL_CAPACITY = 1024;

/**
 * Maps 32-bit values to ids in order of first appearance.
 *
 * @example
 * ```ts
 * const dict = new IdDictionary();
 * const column = Uint32Array.of(7, 9, 7);
 * dict.mapInPlace(column, 3); // column is now [0, 1, 0]
 * ```
 */
export class IdDictionary {
  #keys = new Int32Array(INITIAL_CAPACITY);
  #ids = new Int32Array(INITIAL_CAPACITY).fill(EMPTY);
  #mask = INITIAL_CAPACITY - 1;
  #shift = 32 - Math.log2(INITIAL_CAPACITY);
  #size = 0;
  /** Value of each id (for saving and for tests). */
  #values = new Int32Array(INITIAL_CAPACITY);
  /** Occurrences of each id, when counting. */
  #counts: Int32Array | undefined;

  /** Creates an empty dictionary; with `counting`, it also counts occurrences of each id. */
  constructor(counting = false) {
    if (counting) this.#counts = new Int32Array(INITIAL_CAPACITY);
  }

  /** Number of distinct values seen. */
  get size(): number {
    return this.#size;
  }

  /** Occurrences of each id (`counts[id]`), when counting; a view of the first `size`. */
  get counts(): Int32Array | undefined {
    return this.#counts?.subarray(0, this.#size);
  }

  /** The value of each id, in id order; a view of the first `size`. */
  get values(): Uint32Array {
    return new Uint32Array(this.#values.buffer, 0, this.#size);
  }

  /** The id of `value`, or -1 when it was never seen. */
  get(value: number): number {
    const key = value | 0;
    let slot = Math.imul(key, 0x9e3779b1) >>> this.#shift;
    for (;;) {
      const id = this.#ids[slot];
      if (id === EMPTY || this.#keys[slot] === key) return id;
      slot = (slot + 1) & this.#mask;
    }
  }

  /**
   * Replaces each of `column[0, n)` by its id, adding values not seen before (and counting each
   * occurrence when counting).
   */
  mapInPlace(column: Uint32Array | Int32Array, n: number): void {
    let keys = this.#keys, ids = this.#ids, mask = this.#mask, shift = this.#shift;
    const counts = this.#counts;
    for (let i = 0; i < n; i++) {
      const key = column[i] | 0;
      let slot = Math.imul(key, 0x9e3779b1) >>> shift;
      let id: number;
      for (;;) {
        id = ids[slot];
        if (id === EMPTY) {
          id = this.#add(slot, key);
          if (this.#keys !== keys) {
            keys = this.#keys, ids = this.#ids, mask = this.#mask, shift = this.#shift;
          }
          break;
        }
        if (keys[slot] === key) break;
        slot = (slot + 1) & mask;
      }
      column[i] = id;
      if (counts !== undefined) this.#counts![id]++;
    }
  }

  /**
   * Replaces each of `column[0, n)` by its row in a frozen dictionary, adding nothing: a value's
   * id plus `offset`, or `unseen` when the value was never seen. Returns how many were unseen.
   */
  lookupInPlace(column: Uint32Array | Int32Array, n: number, offset = 0, unseen = 0): number {
    let missing = 0;
    for (let i = 0; i < n; i++) {
      const id = this.get(column[i]);
      if (id < 0) missing++;
      column[i] = id < 0 ? unseen : id + offset;
    }
    return missing;
  }

  /**
   * Restores a saved state into this empty dictionary: `values` in id order and, when counting,
   * their `counts`.
   */
  restore(values: Uint32Array, counts?: Int32Array): void {
    if (this.#size !== 0) {
      throw new RangeError(`Expected an empty dictionary but found ${this.#size} values`);
    }
    const ids = values.slice();
    this.mapInPlace(ids, ids.length);
    if (this.#size !== values.length) {
      throw new RangeError(
        `Expected ${values.length} distinct values but found ${this.#size}`,
      );
    }
    if (this.#counts) {
      if (counts?.length !== values.length) {
        throw new RangeError(`Expected ${values.length} counts but found ${counts?.length ?? 0}`);
      }
      this.#counts.set(counts);
    }
  }

  #add(slot: number, key: number): number {
    const id = this.#size++;
    this.#keys[slot] = key;
    this.#ids[slot] = id;
    if (id >= this.#values.length) {
      this.#values = grow(this.#values, this.#values.length * 2);
      if (this.#counts) this.#counts = grow(this.#counts, this.#values.length);
    }
    this.#values[id] = key;
    // Keep the load at most 1/2: probes stay short on skewed (hashed) keys.
    if (this.#size * 2 > this.#ids.length) this.#rehash(this.#ids.length * 2);
    return id;
  }

  #rehash(capacity: number): void {
    const keys = new Int32Array(capacity);
    const ids = new Int32Array(capacity).fill(EMPTY);
    const mask = capacity - 1;
    const shift = 32 - Math.log2(capacity);
    for (let id = 0; id < this.#size; id++) {
      const key = this.#values[id];
      let slot = Math.imul(key, 0x9e3779b1) >>> shift;
      while (ids[slot] !== EMPTY) slot = (slot + 1) & mask;
      keys[slot] = key;
      ids[slot] = id;
    }
    this.#keys = keys, this.#ids = ids, this.#mask = mask, this.#shift = shift;
  }
}

function grow(a: Int32Array, length: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(length);
  b.set(a);
  return b;
}
