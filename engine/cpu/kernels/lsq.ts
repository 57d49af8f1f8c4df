// LSQ (learned step size quantization) gradients of weight rows.

/**
 * For rows r in [r0, r1) with learned step s_r = steps[r]: masks the weight gradient G (in
 * place) to the clipping range, G[r, c] = 0 where W[r, c] / s_r falls outside [-n - 1, n], and
 * writes ds[r] = sum_c G[r, c] * t(W[r, c] / s_r), where t(v) = -n - 1 below the range, n above
 * it and roundHalfEven(v) - v inside (the derivative of the fake-quantized weight by its step).
 */
export function lsqRows(
  w: usize, g: usize, ld: i32, cols: i32, r0: i32, r1: i32, steps: usize, ds: usize, n: f32,
): void {
  const rowBytes = <usize>ld * 4, colBytes = <usize>cols * 4;
  const hi = f32x4.splat(n), lo = f32x4.splat(-n - 1);
  for (let r = r0; r < r1; r++) {
    const sv = f32x4.splat(load<f32>(steps + <usize>r * 4));
    const wp = w + <usize>r * rowBytes, gp = g + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let c: usize = 0; c < colBytes; c += 16) {
      const v = f32x4.div(v128.load(wp + c), sv);
      const gv = v128.load(gp + c);
      const below = f32x4.lt(v, lo), above = f32x4.gt(v, hi);
      const inside = v128.not(v128.or(below, above));
      const t = v128.bitselect(lo, v128.bitselect(hi, f32x4.sub(f32x4.nearest(v), v), above), below);
      acc = f32x4.add(acc, f32x4.mul(gv, t));
      v128.store(gp + c, v128.and(gv, inside));
    }
    const h = f32x4.add(acc, v128.shuffle<f32>(acc, acc, 2, 3, 0, 1));
    store<f32>(ds + <usize>r * 4, f32x4.extract_lane(h, 0) + f32x4.extract_lane(h, 1));
  }
}

/** steps[r] = 2 mean_c |W[r, c]| / sqrt(n) over the first `cols` columns: LSQ's initial step. */
export function lsqInitRows(w: usize, ld: i32, cols: i32, r0: i32, r1: i32, steps: usize, n: f32): void {
  for (let r = r0; r < r1; r++) {
    const p = w + <usize>r * <usize>ld * 4;
    let sum: f32 = 0;
    for (let c = 0; c < cols; c++) sum += abs(load<f32>(p + <usize>c * 4));
    store<f32>(steps + <usize>r * 4, max<f32>((2 * sum) / <f32>cols / sqrt<f32>(n), 1e-8));
  }
}
