/**
 * Sparse SGD of an embedding table in the summation order both engines share: each row touched
 * by the batch moves once, `w -= lr * S`, where S is the sum of the row's occurrences' gradients
 * in ascending (bag, index) order, added as a **pairwise tree**: the order a binary counter gives
 * when the gradients are pushed one by one (push, then merge the two top sums while they cover
 * equally many gradients: `left + right`), its leftover sums then folded from the top
 * (`S = s0 + (s1 + (... + s_top))`). It equals the tree of aligned power-of-two blocks in which
 * a block's sum is `left + right`, or `left` alone when the right half is empty: the WebGPU
 * engine adds level by level in that tree (embedding_tree_pass.ts), or streams the counter per
 * row (pairwise_tree.ts), and gets the same bits. A hot row thus costs log(n) dependent adds,
 * and one rounding of `lr * S` instead of one per occurrence, as PyTorch's sparse gradient
 * (the summed gradient applied once) does.
 *
 * All arithmetic is float32: every sum, `lr * S` and the subtraction are rounded to float32
 * (float64 arithmetic on float32 operands then rounded to float32 gives the float32 result).
 *
 * @module
 */

/** Most pending sums of the counter: one per bit of a run's length (below 2^32). */
export const PAIRWISE_TREE_DEPTH = 32;

/** Where a batch's embedding gradients lie: bag `r`, column `q` at `grads[base + r * ld + q]`. */
export interface BagGradients {
  grads: Float32Array;
  base: number;
  ld: number;
}

/**
 * Sums `values` (each a vector of `d` floats: value i is `values[i * d .. i * d + d)`) in the
 * pairwise-tree order into a new vector. The reference of the order, for tests and the row sums.
 */
export function pairwiseTreeSum(values: Float32Array, d: number): Float32Array {
  const n = values.length / d;
  const tree = new PairwiseTree(d);
  for (let i = 0; i < n; i++) tree.push(values, i * d);
  const out = new Float32Array(d);
  if (n > 0) out.set(tree.sum());
  return out;
}

/** The streaming binary counter of the pairwise-tree order over vectors of `d` floats. */
export class PairwiseTree {
  readonly #d: number;
  readonly #stack: Float32Array;
  #top = 0;
  #count = 0;

  constructor(d: number) {
    this.#d = d;
    this.#stack = new Float32Array(PAIRWISE_TREE_DEPTH * d);
  }

  /** Forgets every pushed value. */
  clear(): void {
    this.#top = 0;
    this.#count = 0;
  }

  /** Pushes the vector at `from[at .. at + d)`, then merges equal-size sums. */
  push(from: Float32Array, at: number): void {
    const d = this.#d, st = this.#stack;
    const to = this.#top * d;
    for (let q = 0; q < d; q++) st[to + q] = from[at + q];
    this.#top++;
    this.#count++;
    this.#mergeFrom(this.#count);
  }

  /**
   * Pushes the vectors at `from[a ..]` and `from[b ..]` as two values (after an even count):
   * the same sums as two pushes, without copying the first (its merge with the second is their
   * sum).
   */
  pushPair(from: Float32Array, a: number, b: number): void {
    const d = this.#d, st = this.#stack;
    if (this.#count & 1) throw new RangeError("Expected an even count before a pair");
    const to = this.#top * d;
    for (let q = 0; q < d; q++) st[to + q] = from[a + q] + from[b + q];
    this.#top++;
    this.#count += 2;
    this.#mergeFrom(this.#count >>> 1);
  }

  /** Merges the two top sums once per trailing zero bit of `m`. */
  #mergeFrom(m: number): void {
    const d = this.#d, st = this.#stack;
    for (; (m & 1) === 0; m >>>= 1) {
      this.#top--;
      const left = (this.#top - 1) * d, right = this.#top * d;
      for (let q = 0; q < d; q++) st[left + q] += st[right + q];
    }
  }

  /**
   * The sum of everything pushed (at least one value): the pending sums folded from the top.
   * A view into the counter, valid until the next push or clear.
   */
  sum(): Float32Array {
    const d = this.#d, st = this.#stack;
    if (this.#top === 0) throw new RangeError("Expected at least one pushed value but found none");
    const acc = (this.#top - 1) * d;
    for (let s = this.#top - 2; s >= 0; s--) {
      for (let q = 0; q < d; q++) st[acc + q] = st[s * d + q] + st[acc + q];
    }
    return st.subarray(acc, acc + d);
  }
}

/** One thread's sparse SGD of tables: scratch for grouping a batch's occurrences by row. */
export class SparseSgd {
  readonly #d: number;
  readonly #tree: PairwiseTree;
  /** Open-addressing hash of the batch's rows: row (-1: free) and its number in first-seen order. */
  #slotRow = new Int32Array(0);
  #slotId = new Int32Array(0);
  /** Per distinct row: the row, its occurrences, and where its bags start in `#bags`. */
  #rowOf = new Int32Array(0);
  #count = new Int32Array(0);
  #start = new Int32Array(0);
  /** Per occurrence in index order: its row's number; then the bags grouped by row. */
  #idOf = new Int32Array(0);
  #bags = new Int32Array(0);

  constructor(d: number) {
    this.#d = d;
    this.#tree = new PairwiseTree(d);
  }

  /**
   * Moves every row of `table` that samples `[s0, s0 + rows)` gather (`indices`, `offsets`)
   * by `-lr` times its summed gradient (pairwise-tree order over its occurrences in bag order,
   * float32). Rows are grouped by a hash in O(occurrences), not sorted: rows do not depend on
   * each other, only each row's own order matters.
   */
  apply(
    table: Float32Array,
    indices: Int32Array,
    offsets: Int32Array,
    s0: number,
    rows: number,
    g: BagGradients,
    lr: number,
  ): void {
    const d = this.#d, tree = this.#tree, { grads, base, ld } = g;
    const n = offsets[s0 + rows] - offsets[s0];
    if (n === 0) return;
    this.#reserve(n);
    const slotRow = this.#slotRow, slotId = this.#slotId, mask = slotRow.length - 1;
    const shift = 32 - Math.log2(slotRow.length);
    const rowOf = this.#rowOf, count = this.#count, start = this.#start;
    const idOf = this.#idOf, bags = this.#bags;
    slotRow.fill(-1);
    let distinct = 0, k = 0;
    for (let r = 0; r < rows; r++) {
      for (let j = offsets[s0 + r], e = offsets[s0 + r + 1]; j < e; j++) {
        const row = indices[j];
        let h = shift === 32 ? 0 : Math.imul(row, 0x9e3779b1) >>> shift;
        while (slotRow[h] !== -1 && slotRow[h] !== row) h = (h + 1) & mask;
        if (slotRow[h] === -1) {
          slotRow[h] = row;
          slotId[h] = distinct;
          rowOf[distinct] = row;
          count[distinct++] = 0;
        }
        const id = slotId[h];
        count[id]++;
        idOf[k++] = id;
      }
    }
    // Bags grouped by row, each row's in ascending order (a stable counting sort).
    for (let id = 0, at = 0; id < distinct; id++) {
      start[id] = at;
      at += count[id];
    }
    k = 0;
    for (let r = 0; r < rows; r++) {
      for (let j = offsets[s0 + r], e = offsets[s0 + r + 1]; j < e; j++) {
        bags[start[idOf[k++]]++] = r;
      }
    }
    const lr32 = Math.fround(lr);
    for (let id = 0, end = 0; id < distinct; id++) {
      const first = end; // start[id] now holds the end of the row's bags
      end = start[id];
      let sum: Float32Array, at: number;
      if (end - first === 1) {
        sum = grads;
        at = base + bags[first] * ld;
      } else {
        tree.clear();
        let m = first;
        for (; m + 1 < end; m += 2) {
          tree.pushPair(grads, base + bags[m] * ld, base + bags[m + 1] * ld);
        }
        if (m < end) tree.push(grads, base + bags[m] * ld);
        sum = tree.sum();
        at = 0;
      }
      const w = rowOf[id] * d;
      for (let q = 0; q < d; q++) table[w + q] -= Math.fround(lr32 * sum[at + q]);
    }
  }

  /** Grows the scratch to `n` occurrences (hash of at least 2n slots, a power of two). */
  #reserve(n: number): void {
    if (this.#idOf.length >= n) return;
    const slots = 2 ** Math.ceil(Math.log2(2 * n));
    this.#slotRow = new Int32Array(slots);
    this.#slotId = new Int32Array(slots);
    this.#rowOf = new Int32Array(n);
    this.#count = new Int32Array(n);
    this.#start = new Int32Array(n);
    this.#idOf = new Int32Array(n);
    this.#bags = new Int32Array(n);
  }
}
