// Symmetric uniform fake quantization of weight rows (QAT of the MLPs).

/** out[r] = max_c |W[r, c]| for rows r in [r0, r1); cols a multiple of 4 (zero padding). */
export function rowMaxAbs(w: usize, ld: i32, cols: i32, r0: i32, r1: i32, out: usize): void {
  const rowBytes = <usize>ld * 4, colBytes = <usize>cols * 4;
  for (let r = r0; r < r1; r++) {
    const p = w + <usize>r * rowBytes;
    let m = f32x4.splat(0);
    for (let c: usize = 0; c < colBytes; c += 16) m = f32x4.max(m, f32x4.abs(v128.load(p + c)));
    const h = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
    store<f32>(out + <usize>r * 4, max(f32x4.extract_lane(h, 0), f32x4.extract_lane(h, 1)));
  }
}

/**
 * Q[r, c] = clamp(roundHalfEven(W[r, c] / s_r), -n - 1, n) * s_r for rows r in [r0, r1), where
 * s_r = scales[r] (scales != 0) or the single scale s. n = 2^(bits-1) - 1. The division, the
 * rounding (IEEE nearest-even) and the product are float32, as PyTorch computes them.
 */
export function fakeQuantizeRows(
  w: usize, q: usize, ld: i32, cols: i32, r0: i32, r1: i32, scales: usize, s: f32, n: f32,
): void {
  const rowBytes = <usize>ld * 4, colBytes = <usize>cols * 4;
  const hi = f32x4.splat(n), lo = f32x4.splat(-n - 1);
  for (let r = r0; r < r1; r++) {
    const sr = scales ? load<f32>(scales + <usize>r * 4) : s;
    const sv = f32x4.splat(sr);
    const src = w + <usize>r * rowBytes, dst = q + <usize>r * rowBytes;
    for (let c: usize = 0; c < colBytes; c += 16) {
      const x = f32x4.nearest(f32x4.div(v128.load(src + c), sv));
      v128.store(dst + c, f32x4.mul(f32x4.min(f32x4.max(x, lo), hi), sv));
    }
  }
}
