// Bias gradient: the sum of the output gradient over the batch.

/** out[n] = sum_{r < rows} A[r, n] for n in [n0, n1) (multiples of 4). */
export function columnSum(a: usize, lda: i32, rows: i32, n0: i32, n1: i32, out: usize): void {
  const sa = <usize> lda * 4;
  for (let n = n0; n < n1; n += 4) {
    let acc = f32x4.splat(0);
    let p = a + <usize> n * 4;
    for (let r = 0; r < rows; r++) {
      acc = f32x4.add(acc, v128.load(p));
      p += sa;
    }
    v128.store(out + <usize> n * 4, acc);
  }
}
