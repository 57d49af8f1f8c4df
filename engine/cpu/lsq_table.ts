/**
 * LSQ's embedding tables on the CPU engine: a table's initial learned step, and its sparse
 * update (the gathered values and the table's step, trained together).
 *
 * @module
 */
import { roundHalfEven } from "../quant.ts";
import type { BagGradients } from "./sparse_sgd.ts";

/** LSQ's initial step of a table: `2 mean|x| / sqrt(Qp)`. */
export function lsqInitialStep(table: Float32Array, n: number): number {
  let sum = 0;
  for (let i = 0; i < table.length; i++) sum += Math.abs(table[i]);
  return Math.max((2 * sum) / table.length / Math.sqrt(n), 1e-8);
}

/**
 * LSQ's sparse update of one table (`n` = Qp): every gathered value moves by its gradient where
 * it lies inside the clipping range (the mask of LSQ's straight-through estimator), and the
 * table's learned step `step` moves by its own gradient, scaled by 1 / sqrt(Qp * values
 * quantized). Bags `s0 … s0 + rows - 1` of `indices`/`offsets`, their gradients at `g`.
 * Returns the new step.
 */
export function lsqTableUpdate(
  table: Float32Array,
  step: number,
  indices: ArrayLike<number>,
  offsets: ArrayLike<number>,
  s0: number,
  rows: number,
  dim: number,
  g: BagGradients,
  lr: number,
  n: number,
): number {
  const { grads, base, ld } = g;
  let ds = 0;
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const at = base + r * ld;
    for (let j = offsets[s0 + r], e = offsets[s0 + r + 1]; j < e; j++) {
      const row = indices[j] * dim;
      for (let q = 0; q < dim; q++) {
        const v = Math.fround(table[row + q] / step);
        const grad = grads[at + q];
        if (v < -n - 1) ds += grad * (-n - 1);
        else if (v > n) ds += grad * n;
        else {
          ds += grad * (roundHalfEven(v) - v);
          table[row + q] -= lr * grad;
        }
      }
      count += dim;
    }
  }
  return count > 0 ? Math.max(step - (lr * ds) / Math.sqrt(n * count), 1e-8) : step;
}
