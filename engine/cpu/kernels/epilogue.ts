// Element-wise epilogues of products computed elsewhere (the native BLAS path): bias and ReLU
// after the forward product, the ReLU derivative's mask after the input-gradient product.
import { maskPositive } from "./simd";

/**
 * Y[r, n] = act(Y[r, n] + bias[n]) for r < rows and n in [n0, n1) (multiples of 4); act is ReLU
 * when relu != 0, identity otherwise. The bias is added after the sum, as linearForward does.
 */
export function biasActivate(
  y: usize,
  ldy: i32,
  rows: i32,
  n0: i32,
  n1: i32,
  bias: usize,
  relu: i32,
): void {
  const sy = <usize> ldy * 4;
  const zero = f32x4.splat(0);
  for (let r = 0; r < rows; r++) {
    const row = y + <usize> r * sy;
    for (let n = n0; n < n1; n += 4) {
      const p = row + <usize> n * 4;
      let v = f32x4.add(v128.load(p), v128.load(bias + <usize> n * 4));
      if (relu) v = f32x4.max(v, zero);
      v128.store(p, v);
    }
  }
}

/**
 * C[r, n] = C[r, n] if M[r, n] > 0 else 0, for r < rows and n in [n0, n1) (multiples of 4): the
 * ReLU derivative of the layer below, as gemmBroadcast applies it with a mask.
 */
export function maskRows(
  c: usize,
  ldc: i32,
  rows: i32,
  n0: i32,
  n1: i32,
  mask: usize,
  ldm: i32,
): void {
  const sc = <usize> ldc * 4, sm = <usize> ldm * 4;
  for (let r = 0; r < rows; r++) {
    const cp = c + <usize> r * sc, mp = mask + <usize> r * sm;
    for (let n = n0; n < n1; n += 4) {
      const at = <usize> n * 4;
      v128.store(cp + at, maskPositive(v128.load(cp + at), v128.load(mp + at)));
    }
  }
}
