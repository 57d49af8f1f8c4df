// C = A B with A read through strides: the "NN" product (dX = dY W) and the "TN" product
// (dW = dY^T X). Each element of A is broadcast across a vector of B's row.
import { fma, maskPositive } from "./simd";

/** Columns of B per panel: a panel's k rows stay in cache while every row block passes over it. */
const PANEL: i32 = 64;
/** Steps of the sum per pass over a panel: a row block's A and the panel's B stay in cache. */
const KC: i32 = 256;

/**
 * C[m, n] = sum_p A(m, p) B[p, n] for m in [m0, m1), n in [n0, n1), p < k, where A(m, p) is the
 * float at a + 4 (m sam + p sak). When mask != 0 the result is multiplied by (M[m, n] > 0), the
 * ReLU derivative of the layer below. n0 and n1 are multiples of 4.
 * Cache blocking: panels of PANEL columns, each over every row (large batches otherwise stream
 * all of B from memory once per row block), in passes of KC steps of p (the partial sums wait in
 * C between passes). Every C[m, n] is the same sequence of multiply-adds over p whatever the
 * blocking (a float stored and loaded back is unchanged), so results do not depend on it.
 */
export function gemmBroadcast(
  a: usize,
  sam: i32,
  sak: i32,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  m0: i32,
  m1: i32,
  n0: i32,
  n1: i32,
  k: i32,
  mask: usize,
  ldm: i32,
): void {
  for (let p0 = n0; p0 < n1; p0 += PANEL) {
    const p1 = min(p0 + PANEL, n1);
    for (let k0 = 0; k0 < k; k0 += KC) {
      const k1 = min(k0 + KC, k);
      gemmPanel(
        a + <usize> k0 * <usize> sak * 4,
        sam,
        sak,
        b + <usize> k0 * <usize> ldb * 4,
        ldb,
        c,
        ldc,
        m0,
        m1,
        p0,
        p1,
        k1 - k0,
        k0 > 0,
        k1 == k ? mask : 0,
        ldm,
      );
    }
  }
}

/**
 * gemmBroadcast over columns [n0, n1) and k steps of p, adding to C when `more` (a later pass).
 * Register block: 6 rows by 8 columns; leftover rows one at a time.
 */
function gemmPanel(
  a: usize,
  sam: i32,
  sak: i32,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  m0: i32,
  m1: i32,
  n0: i32,
  n1: i32,
  k: i32,
  more: bool,
  mask: usize,
  ldm: i32,
): void {
  const dm = <usize> sam * 4, dk = <usize> sak * 4, db = <usize> ldb * 4;
  let m = m0;
  // 6 rows x 8 columns: 12 accumulators, 2 vectors of B and one broadcast fill 15 of the 16
  // vector registers V8 has on x64; wider blocks spill (measured: 47 vs 38 GFLOP/s for 4 x 8).
  for (; m + 6 <= m1; m += 6) {
    let n = n0;
    for (; n + 8 <= n1; n += 8) {
      let c00 = start(c, ldc, m, n, more), c01 = start(c, ldc, m, n + 4, more);
      let c10 = start(c, ldc, m + 1, n, more), c11 = start(c, ldc, m + 1, n + 4, more);
      let c20 = start(c, ldc, m + 2, n, more), c21 = start(c, ldc, m + 2, n + 4, more);
      let c30 = start(c, ldc, m + 3, n, more), c31 = start(c, ldc, m + 3, n + 4, more);
      let c40 = start(c, ldc, m + 4, n, more), c41 = start(c, ldc, m + 4, n + 4, more);
      let c50 = start(c, ldc, m + 5, n, more), c51 = start(c, ldc, m + 5, n + 4, more);
      let ap = a + <usize>m * dm;
      let bp = b + <usize>n * 4;
      for (let p = 0; p < k; p++) {
        const b0 = v128.load(bp), b1 = v128.load(bp, 16);
        let s = v128.load32_splat(ap);
        c00 = fma(s, b0, c00); c01 = fma(s, b1, c01);
        s = v128.load32_splat(ap + dm);
        c10 = fma(s, b0, c10); c11 = fma(s, b1, c11);
        s = v128.load32_splat(ap + 2 * dm);
        c20 = fma(s, b0, c20); c21 = fma(s, b1, c21);
        s = v128.load32_splat(ap + 3 * dm);
        c30 = fma(s, b0, c30); c31 = fma(s, b1, c31);
        s = v128.load32_splat(ap + 4 * dm);
        c40 = fma(s, b0, c40); c41 = fma(s, b1, c41);
        s = v128.load32_splat(ap + 5 * dm);
        c50 = fma(s, b0, c50); c51 = fma(s, b1, c51);
        ap += dk; bp += db;
      }
      store8(c, ldc, m, n, c00, c01, mask, ldm);
      store8(c, ldc, m + 1, n, c10, c11, mask, ldm);
      store8(c, ldc, m + 2, n, c20, c21, mask, ldm);
      store8(c, ldc, m + 3, n, c30, c31, mask, ldm);
      store8(c, ldc, m + 4, n, c40, c41, mask, ldm);
      store8(c, ldc, m + 5, n, c50, c51, mask, ldm);
    }
    if (n < n1) {
      let c0 = start(c, ldc, m, n, more), c1 = start(c, ldc, m + 1, n, more);
      let c2 = start(c, ldc, m + 2, n, more), c3 = start(c, ldc, m + 3, n, more);
      let c4 = start(c, ldc, m + 4, n, more), c5 = start(c, ldc, m + 5, n, more);
      let ap = a + <usize>m * dm;
      let bp = b + <usize>n * 4;
      for (let p = 0; p < k; p++) {
        const b0 = v128.load(bp);
        c0 = fma(v128.load32_splat(ap), b0, c0);
        c1 = fma(v128.load32_splat(ap + dm), b0, c1);
        c2 = fma(v128.load32_splat(ap + 2 * dm), b0, c2);
        c3 = fma(v128.load32_splat(ap + 3 * dm), b0, c3);
        c4 = fma(v128.load32_splat(ap + 4 * dm), b0, c4);
        c5 = fma(v128.load32_splat(ap + 5 * dm), b0, c5);
        ap += dk; bp += db;
      }
      store4(c, ldc, m, n, c0, mask, ldm);
      store4(c, ldc, m + 1, n, c1, mask, ldm);
      store4(c, ldc, m + 2, n, c2, mask, ldm);
      store4(c, ldc, m + 3, n, c3, mask, ldm);
      store4(c, ldc, m + 4, n, c4, mask, ldm);
      store4(c, ldc, m + 5, n, c5, mask, ldm);
    }
  }
  for (; m < m1; m++) {
    for (let n = n0; n < n1; n += 4) {
      let c0 = start(c, ldc, m, n, more);
      let ap = a + <usize> m * dm;
      let bp = b + <usize> n * 4;
      for (let p = 0; p < k; p++) {
        c0 = fma(v128.load32_splat(ap), v128.load(bp), c0);
        ap += dk;
        bp += db;
      }
      store4(c, ldc, m, n, c0, mask, ldm);
    }
  }
}

/** The accumulator of C[m, n..n+4]: its partial sum from an earlier pass when `more`, else 0. */
@inline function start(c: usize, ldc: i32, m: i32, n: i32, more: bool): v128 {
  return more ? v128.load(c + (<usize> m * <usize> ldc + <usize> n) * 4) : f32x4.splat(0);
}

@inline function store4(c: usize, ldc: i32, m: i32, n: i32, v: v128, mask: usize, ldm: i32): void {
  if (mask) v = maskPositive(v, v128.load(mask + (<usize> m * <usize> ldm + <usize> n) * 4));
  v128.store(c + (<usize> m * <usize> ldc + <usize> n) * 4, v);
}

@inline function store8(
  c: usize,
  ldc: i32,
  m: i32,
  n: i32,
  v0: v128,
  v1: v128,
  mask: usize,
  ldm: i32,
): void {
  const cp = c + (<usize> m * <usize> ldc + <usize> n) * 4;
  if (mask) {
    const mp = mask + (<usize> m * <usize> ldm + <usize> n) * 4;
    v0 = maskPositive(v0, v128.load(mp));
    v1 = maskPositive(v1, v128.load(mp, 16));
  }
  v128.store(cp, v0);
  v128.store(cp, v1, 16);
}
