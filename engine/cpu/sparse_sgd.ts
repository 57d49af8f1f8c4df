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
    st.set(from.subarray(at, at + d), this.#top * d);
    this.#top++;
    this.#count++;
    for (let m = this.#count; (m & 1) === 0; m >>>= 1) {
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

/** One thread's sparse SGD of tables: scratch for the batch's keys and the row sums. */
export class SparseSgd {
  readonly #d: number;
  readonly #tree: PairwiseTree;
  #keys = new Float64Array(0);

  constructor(d: number) {
    this.#d = d;
    this.#tree = new PairwiseTree(d);
  }

  /**
   * Moves every row of `table` that samples `[s0, s0 + rows)` gather (`indices`, `offsets`)
   * by `-lr` times its summed gradient (pairwise-tree order, float32).
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
    const a = offsets[s0], n = offsets[s0 + rows] - a;
    if (n === 0) return;
    if (this.#keys.length < n) this.#keys = new Float64Array(n);
    // Keys row * rows + bag: sorted, each row's occurrences lie together in bag order.
    const keys = this.#keys.subarray(0, n);
    let k = 0;
    for (let r = 0; r < rows; r++) {
      for (let j = offsets[s0 + r], e = offsets[s0 + r + 1]; j < e; j++) {
        keys[k++] = indices[j] * rows + r;
      }
    }
    keys.sort();
    const lr32 = Math.fround(lr);
    for (let i = 0; i < n;) {
      const row = Math.floor(keys[i] / rows);
      let end = i + 1;
      while (end < n && keys[end] < (row + 1) * rows) end++;
      let sum: Float32Array, at: number;
      if (end - i === 1) {
        sum = grads;
        at = base + (keys[i] - row * rows) * ld;
      } else {
        tree.clear();
        for (let m = i; m < end; m++) tree.push(grads, base + (keys[m] - row * rows) * ld);
        sum = tree.sum();
        at = 0;
      }
      const w = row * d;
      for (let q = 0; q < d; q++) table[w + q] -= Math.fround(lr32 * sum[at + q]);
      i = end;
    }
  }
}
