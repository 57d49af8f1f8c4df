// Bias gradient: the sum of the output gradient over the batch.

/**
 * out[n] = sum_{r < rows} A[r, n] for n in [n0, n1) (multiples of 4), each column added in row
 * order from 0. Up to 32 columns (two cache lines of a row) are summed at once, in independent
 * accumulators, so that the rows are read once, not once per 4 columns, and the adds overlap.
 */
export function columnSum(a: usize, lda: i32, rows: i32, n0: i32, n1: i32, out: usize): void {
  const sa = <usize> lda * 4;
  let n = n0;
  for (; n + 32 <= n1; n += 32) {
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    let p = a + <usize> n * 4;
    for (let r = 0; r < rows; r++) {
      a0 = f32x4.add(a0, v128.load(p));
      a1 = f32x4.add(a1, v128.load(p, 16));
      a2 = f32x4.add(a2, v128.load(p, 32));
      a3 = f32x4.add(a3, v128.load(p, 48));
      a4 = f32x4.add(a4, v128.load(p, 64));
      a5 = f32x4.add(a5, v128.load(p, 80));
      a6 = f32x4.add(a6, v128.load(p, 96));
      a7 = f32x4.add(a7, v128.load(p, 112));
      p += sa;
    }
    const o = out + <usize> n * 4;
    v128.store(o, a0);
    v128.store(o, a1, 16);
    v128.store(o, a2, 32);
    v128.store(o, a3, 48);
    v128.store(o, a4, 64);
    v128.store(o, a5, 80);
    v128.store(o, a6, 96);
    v128.store(o, a7, 112);
  }
  for (; n + 16 <= n1; n += 16) {
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    let p = a + <usize> n * 4;
    for (let r = 0; r < rows; r++) {
      a0 = f32x4.add(a0, v128.load(p));
      a1 = f32x4.add(a1, v128.load(p, 16));
      a2 = f32x4.add(a2, v128.load(p, 32));
      a3 = f32x4.add(a3, v128.load(p, 48));
      p += sa;
    }
    const o = out + <usize> n * 4;
    v128.store(o, a0);
    v128.store(o, a1, 16);
    v128.store(o, a2, 32);
    v128.store(o, a3, 48);
  }
  for (; n < n1; n += 4) {
    let acc = f32x4.splat(0);
    let p = a + <usize> n * 4;
    for (let r = 0; r < rows; r++) {
      acc = f32x4.add(acc, v128.load(p));
      p += sa;
    }
    v128.store(out + <usize> n * 4, acc);
  }
}
