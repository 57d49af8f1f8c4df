// Whole-table passes over embedding tables, which live in memories of their own: finding a
// table's scale (DQRM every P steps, HAWQ every step) and HAWQ's fake-quantized table copy.

/** Largest |x| of the `count` floats at p (p 16-byte aligned). */
export function maxAbsFlat(p: usize, count: i32): f32 {
  let m0 = f32x4.splat(0), m1 = m0, m2 = m0, m3 = m0;
  const end = p + <usize>count * 4;
  let q = p;
  for (; q + 64 <= end; q += 64) {
    m0 = f32x4.max(m0, f32x4.abs(v128.load(q)));
    m1 = f32x4.max(m1, f32x4.abs(v128.load(q, 16)));
    m2 = f32x4.max(m2, f32x4.abs(v128.load(q, 32)));
    m3 = f32x4.max(m3, f32x4.abs(v128.load(q, 48)));
  }
  m0 = f32x4.max(f32x4.max(m0, m1), f32x4.max(m2, m3));
  let m = max(max(f32x4.extract_lane(m0, 0), f32x4.extract_lane(m0, 1)),
    max(f32x4.extract_lane(m0, 2), f32x4.extract_lane(m0, 3)));
  for (; q < end; q += 4) m = max(m, abs(load<f32>(q)));
  return m;
}

/**
 * dst[i] = clamp(roundHalfEven(src[i] / s), -n - 1, n) * s for `count` floats (float32 division,
 * IEEE nearest-even rounding, float32 product, as PyTorch computes it).
 */
export function fakeQuantizeFlat(src: usize, dst: usize, count: i32, s: f32, n: f32): void {
  const sv = f32x4.splat(s), hi = f32x4.splat(n), lo = f32x4.splat(-n - 1);
  const bytes = <usize>count * 4;
  let i: usize = 0;
  for (; i + 16 <= bytes; i += 16) {
    const x = f32x4.nearest(f32x4.div(v128.load(src + i), sv));
    v128.store(dst + i, f32x4.mul(f32x4.min(f32x4.max(x, lo), hi), sv));
  }
  for (; i < bytes; i += 4) {
    const x = nearest<f32>(load<f32>(src + i) / s);
    store<f32>(dst + i, min(max(x, -n - 1), n) * s);
  }
}
