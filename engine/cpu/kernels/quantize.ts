// Symmetric uniform fake quantization of weight rows (QAT of the MLPs) and of gathered embedding
// rows (DQRM).

/**
 * out[r] = max_c |W[r, c]| for rows r in [r0, r1); cols a multiple of 4 (zero padding).
 *
 * The maximum is taken on the bits: an |x| is a non-negative float, and non-negative floats
 * order as their bit patterns do, NaNs above +inf. So an integer maximum of the bits (one
 * instruction, four independent accumulators) is the float maximum, NaN when any |x| is NaN, as
 * `f32x4.max` gives (whose NaN-aware lowering is several instructions, in one dependency chain).
 */
export function rowMaxAbs(w: usize, ld: i32, cols: i32, r0: i32, r1: i32, out: usize): void {
  const rowBytes = <usize>ld * 4, colBytes = <usize>cols * 4;
  const abs = i32x4.splat(0x7fffffff);
  for (let r = r0; r < r1; r++) {
    const p = w + <usize>r * rowBytes;
    let m0 = i32x4.splat(0), m1 = m0, m2 = m0, m3 = m0;
    let c: usize = 0;
    for (; c + 64 <= colBytes; c += 64) {
      m0 = i32x4.max_u(m0, v128.and(v128.load(p + c), abs));
      m1 = i32x4.max_u(m1, v128.and(v128.load(p + c, 16), abs));
      m2 = i32x4.max_u(m2, v128.and(v128.load(p + c, 32), abs));
      m3 = i32x4.max_u(m3, v128.and(v128.load(p + c, 48), abs));
    }
    for (; c < colBytes; c += 16) m0 = i32x4.max_u(m0, v128.and(v128.load(p + c), abs));
    let m = i32x4.max_u(i32x4.max_u(m0, m1), i32x4.max_u(m2, m3));
    m = i32x4.max_u(m, v128.shuffle<i32>(m, m, 2, 3, 0, 1));
    m = i32x4.max_u(m, v128.shuffle<i32>(m, m, 1, 0, 3, 2));
    store<i32>(out + <usize>r * 4, i32x4.extract_lane(m, 0));
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
      v128.store(dst + c, f32x4.mul(clamp(x, lo, hi), sv));
    }
  }
}

/**
 * min(max(x, lo), hi) lane-wise for bounds lo < 0 < hi, as `f32x4.max` and `f32x4.min` give it,
 * in one instruction each: `pmax(x, lo)` is `x < lo ? lo : x` and `pmin(y, hi)` is
 * `hi < y ? hi : y`, which keep a NaN `x` (a NaN compares false) and, as the bounds are not
 * zero, the sign of a zero `x`.
 */
// @ts-ignore: decorator
@inline function clamp(x: v128, lo: v128, hi: v128): v128 {
  return f32x4.pmin(f32x4.pmax(x, lo), hi);
}

/**
 * In place, X[r, c] = 0 + clamp(roundHalfEven(X[r, c] / s), -n - 1, n) * s for rows r in
 * [0, rows) and columns c in [0, cols) at x (row stride ld floats): the fake-quantized value as
 * the first term of a sum that starts at +0 (a zero comes out +0), as DQRM's gather sums a bag
 * of one row. x 16-byte aligned, ld a multiple of 4.
 */
export function fakeQuantizeTerms(x: usize, ld: i32, cols: i32, rows: i32, s: f32, n: f32): void {
  const rowBytes = <usize>ld * 4, vecBytes = <usize>(cols & ~3) * 4, colBytes = <usize>cols * 4;
  const sv = f32x4.splat(s), hi = f32x4.splat(n), lo = f32x4.splat(-n - 1);
  const zero = f32x4.splat(0);
  for (let r = 0; r < rows; r++) {
    const p = x + <usize>r * rowBytes;
    let c: usize = 0;
    for (; c < vecBytes; c += 16) {
      const v = f32x4.nearest(f32x4.div(v128.load(p + c), sv));
      v128.store(p + c, f32x4.add(zero, f32x4.mul(clamp(v, lo, hi), sv)));
    }
    for (; c < colBytes; c += 4) {
      const v = nearest<f32>(load<f32>(p + c) / s);
      store<f32>(p + c, <f32>0 + min(max(v, -n - 1), n) * s);
    }
  }
}

/**
 * DQRM's MLP update of rows r in [r0, r1) of W (row stride and width ld floats, a multiple of
 * 4): W[r] -= lr * G[r] as `sgd` does it, then the row's per-channel min-max fake quantization
 * into Q as `rowMaxAbs`, quant.ts's `scaleOf` (into scales[r]) and `fakeQuantizeRows` do it, so
 * the same bits. The row's max |w| is taken while the update writes it, and its quantization
 * reads it back from L1 in the same loop as the next row's update (which keeps the memory busy
 * while the divisions run), instead of three passes over every row of the share.
 * n = 2^(bits-1) - 1.
 */
export function sgdQuantizeRows(
  w: usize, g: usize, q: usize, ld: i32, r0: i32, r1: i32, lr: f32, scales: usize, n: f32,
): void {
  if (r0 >= r1) return;
  const rowBytes = <usize>ld * 4;
  const l = f32x4.splat(lr), abs = i32x4.splat(0x7fffffff);
  const hi = f32x4.splat(n), lo = f32x4.splat(-n - 1);
  // Row r0's update alone; then each row's quantization beside the next one's update.
  let s = rowScale(sgdRow(w + <usize>r0 * rowBytes, g + <usize>r0 * rowBytes, rowBytes, l), n);
  for (let r = r0; r < r1; r++) {
    store<f32>(scales + <usize>r * 4, s);
    const sv = f32x4.splat(s);
    const pw = w + <usize>r * rowBytes, pq = q + <usize>r * rowBytes;
    let c: usize = 0;
    if (r + 1 < r1) {
      const nw = pw + rowBytes, ng = g + <usize>(r + 1) * rowBytes;
      let m0 = i32x4.splat(0), m1 = m0;
      for (; c + 32 <= rowBytes; c += 32) {
        const x0 = f32x4.sub(v128.load(nw + c), f32x4.mul(l, v128.load(ng + c)));
        const x1 = f32x4.sub(v128.load(nw + c, 16), f32x4.mul(l, v128.load(ng + c, 16)));
        v128.store(nw + c, x0);
        v128.store(nw + c, x1, 16);
        m0 = i32x4.max_u(m0, v128.and(x0, abs));
        m1 = i32x4.max_u(m1, v128.and(x1, abs));
        const y0 = f32x4.nearest(f32x4.div(v128.load(pw + c), sv));
        const y1 = f32x4.nearest(f32x4.div(v128.load(pw + c, 16), sv));
        v128.store(pq + c, f32x4.mul(clamp(y0, lo, hi), sv));
        v128.store(pq + c, f32x4.mul(clamp(y1, lo, hi), sv), 16);
      }
      for (; c < rowBytes; c += 16) {
        const x = f32x4.sub(v128.load(nw + c), f32x4.mul(l, v128.load(ng + c)));
        v128.store(nw + c, x);
        m0 = i32x4.max_u(m0, v128.and(x, abs));
        const y = f32x4.nearest(f32x4.div(v128.load(pw + c), sv));
        v128.store(pq + c, f32x4.mul(clamp(y, lo, hi), sv));
      }
      s = rowScale(i32x4.max_u(m0, m1), n);
      continue;
    }
    for (; c < rowBytes; c += 16) {
      const y = f32x4.nearest(f32x4.div(v128.load(pw + c), sv));
      v128.store(pq + c, f32x4.mul(clamp(y, lo, hi), sv));
    }
  }
}

/**
 * One row's SGD step, W -= l * G over `bytes` (a multiple of 16), and the lane-wise maxima of
 * |w|'s bits (see rowMaxAbs).
 */
// @ts-ignore: decorator
@inline function sgdRow(pw: usize, pg: usize, bytes: usize, l: v128): v128 {
  const abs = i32x4.splat(0x7fffffff);
  let m0 = i32x4.splat(0), m1 = m0;
  let c: usize = 0;
  for (; c + 32 <= bytes; c += 32) {
    const x0 = f32x4.sub(v128.load(pw + c), f32x4.mul(l, v128.load(pg + c)));
    const x1 = f32x4.sub(v128.load(pw + c, 16), f32x4.mul(l, v128.load(pg + c, 16)));
    v128.store(pw + c, x0);
    v128.store(pw + c, x1, 16);
    m0 = i32x4.max_u(m0, v128.and(x0, abs));
    m1 = i32x4.max_u(m1, v128.and(x1, abs));
  }
  for (; c < bytes; c += 16) {
    const x = f32x4.sub(v128.load(pw + c), f32x4.mul(l, v128.load(pg + c)));
    v128.store(pw + c, x);
    m0 = i32x4.max_u(m0, v128.and(x, abs));
  }
  return i32x4.max_u(m0, m1);
}

/**
 * quant.ts's `scaleOf` of the largest of the lane maxima `m` of |w|'s bits:
 * fround(max(maxAbs, 1e-8) / n), the maximum and the division in float64 as JavaScript has them.
 */
// @ts-ignore: decorator
@inline function rowScale(m: v128, n: f32): f32 {
  m = i32x4.max_u(m, v128.shuffle<i32>(m, m, 2, 3, 0, 1));
  m = i32x4.max_u(m, v128.shuffle<i32>(m, m, 1, 0, 3, 2));
  const maxAbs = reinterpret<f32>(i32x4.extract_lane(m, 0));
  return <f32>(max<f64>(<f64>maxAbs, 1e-8) / <f64>n);
}
