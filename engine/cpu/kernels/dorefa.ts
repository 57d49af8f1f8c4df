// DoReFa weight quantization (the public DQRM code's "PACT" baseline).

/**
 * Q[r, c] = 2 round(k (tanh(W[r, c]) / (2 m) + 1/2)) / k - 1 for rows r in [r0, r1) and the
 * first `cols` columns, with k = 2^bits - 1 levels and m = max |tanh(W)| over the whole matrix:
 * values in [-1, 1] on k + 1 evenly spaced levels.
 */
export function dorefaRows(
  w: usize, q: usize, ld: i32, cols: i32, r0: i32, r1: i32, m: f32, k: f32,
): void {
  const inv: f32 = <f32>1.0 / (<f32>2.0 * m);
  for (let r = r0; r < r1; r++) {
    const src = w + <usize>r * <usize>ld * 4, dst = q + <usize>r * <usize>ld * 4;
    for (let c = 0; c < cols; c++) {
      const t: f32 = Mathf.tanh(load<f32>(src + <usize>c * 4)) * inv + <f32>0.5;
      store<f32>(dst + <usize>c * 4, (<f32>2.0 * nearest<f32>(k * t)) / k - <f32>1.0);
    }
  }
}
