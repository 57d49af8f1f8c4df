// Linear layer forward, Y = act(X W^T + b): the "NT" product, dot products along k.
import { fma, hsum4 } from "./simd";

/**
 * Y[r, n] = act(bias[n] + sum_k X[r, k] W[n, k]) for r < rows and n in [n0, n1).
 * Pointers are byte addresses; leading dimensions are in floats. k, n0 and n1 are multiples of 4
 * (buffers are zero-padded). act is ReLU when relu != 0, identity otherwise.
 * Register block: 2 rows of X by 4 rows of W, 8 accumulators.
 */
export function linearForward(
  x: usize,
  ldx: i32,
  w: usize,
  ldw: i32,
  bias: usize,
  y: usize,
  ldy: i32,
  rows: i32,
  n0: i32,
  n1: i32,
  k: i32,
  relu: i32,
): void {
  const kb = <usize> k * 4;
  const sx = <usize> ldx * 4, sw = <usize> ldw * 4, sy = <usize> ldy * 4;
  const zero = f32x4.splat(0);
  let r = 0;
  for (; r + 2 <= rows; r += 2) {
    const x0 = x + <usize> r * sx, x1 = x0 + sx;
    for (let n = n0; n < n1; n += 4) {
      const w0 = w + <usize> n * sw, w1 = w0 + sw, w2 = w1 + sw, w3 = w2 + sw;
      let c00 = zero, c01 = zero, c02 = zero, c03 = zero;
      let c10 = zero, c11 = zero, c12 = zero, c13 = zero;
      for (let p: usize = 0; p < kb; p += 16) {
        const a0 = v128.load(x0 + p), a1 = v128.load(x1 + p);
        let b = v128.load(w0 + p);
        c00 = fma(a0, b, c00);
        c10 = fma(a1, b, c10);
        b = v128.load(w1 + p);
        c01 = fma(a0, b, c01);
        c11 = fma(a1, b, c11);
        b = v128.load(w2 + p);
        c02 = fma(a0, b, c02);
        c12 = fma(a1, b, c12);
        b = v128.load(w3 + p);
        c03 = fma(a0, b, c03);
        c13 = fma(a1, b, c13);
      }
      const bv = v128.load(bias + <usize> n * 4);
      let o0 = f32x4.add(hsum4(c00, c01, c02, c03), bv);
      let o1 = f32x4.add(hsum4(c10, c11, c12, c13), bv);
      if (relu) {
        o0 = f32x4.max(o0, zero);
        o1 = f32x4.max(o1, zero);
      }
      v128.store(y + <usize> r * sy + <usize> n * 4, o0);
      v128.store(y + <usize> (r + 1) * sy + <usize> n * 4, o1);
    }
  }
  if (r < rows) {
    const x0 = x + <usize> r * sx;
    for (let n = n0; n < n1; n += 4) {
      const w0 = w + <usize> n * sw, w1 = w0 + sw, w2 = w1 + sw, w3 = w2 + sw;
      let c0 = zero, c1 = zero, c2 = zero, c3 = zero;
      for (let p: usize = 0; p < kb; p += 16) {
        const a0 = v128.load(x0 + p);
        c0 = fma(a0, v128.load(w0 + p), c0);
        c1 = fma(a0, v128.load(w1 + p), c1);
        c2 = fma(a0, v128.load(w2 + p), c2);
        c3 = fma(a0, v128.load(w3 + p), c3);
      }
      let o0 = f32x4.add(hsum4(c0, c1, c2, c3), v128.load(bias + <usize> n * 4));
      if (relu) o0 = f32x4.max(o0, zero);
      v128.store(y + <usize> r * sy + <usize> n * 4, o0);
    }
  }
}
