/**
 * WGSL piece: float32 arithmetic done in integers, correctly rounded (half to even), so that the
 * gradient compression kernels give exactly what `comm/compression.ts` computes in JavaScript
 * (float64 arithmetic rounded to float32 by `Math.fround` or a `Float32Array` store). Native WGSL
 * arithmetic cannot promise that: a division may be off by 2.5 ULP, a driver may flush subnormals
 * to zero or contract `a * b + c` into an FMA. Integer operations are exact on every device.
 *
 * - `divRn(a, b)`: `fround(a / b)` (float64 division then float32 rounding is the correctly
 *   rounded float32 quotient: 53 >= 2 * 24 + 2 bits, so the double rounding is innocuous).
 * - `addRn(a, b)`: `fround(a + b)`, for the same reason.
 * - `residualRn(x, r, s)`: `x - r * s` for an integer level `|r| <= 2^15` and a scale `s > 0`,
 *   rounded once to float32. JavaScript rounds it to float64 first; the two agree whenever the
 *   exact difference fits in 53 bits, which holds for `|x| <= 2^28 s` (the scale is a mean of
 *   local scales that include this worker's, so `|x| <= levels * workers * s`).
 * - `subF64Rn(w, dLo, dHi)`: `fround(w - d)` for a float64 `d` (JavaScript's `table[i] -= d` on a
 *   Float32Array: the difference rounded to float64, then to float32).
 * - `levelOf(x, s, n)`: `quantizeRange`'s level: `fround(x / s)` rounded half to even, clamped to
 *   `[-n - 1, n]`; NaN gives 0 (as a store of NaN into an Int8Array does).
 *
 * Not a kernel: kernels include it.
 *
 * @module
 */

/** WGSL functions of exact float32 arithmetic. */
export const EXACT_F32_WGSL = /* wgsl */ `
// A finite nonzero |x| as m * 2^e with m in [2^23, 2^24) (subnormals normalised).
struct Unpacked { m: u32, e: i32 }
fn unpackF32(x: f32) -> Unpacked {
  let b = bitcast<u32>(x) & 0x7fffffffu;
  let bexp = i32(b >> 23u);
  let frac = b & 0x7fffffu;
  if (bexp == 0) {
    let shift = countLeadingZeros(frac) - 8u;
    return Unpacked(frac << shift, -149 - i32(shift));
  }
  return Unpacked(frac | 0x800000u, bexp - 150);
}

// (hi:lo + sticky) * 2^e rounded half to even to a float32 with sign neg. sticky (a nonzero
// amount below the lowest bit) needs at least one bit dropped by the rounding, which every caller
// guarantees. An exact zero is +0, as IEEE's round to nearest gives for x - x.
fn packRne(neg: bool, hi: u32, lo: u32, e: i32, sticky: bool) -> f32 {
  if (hi == 0u && lo == 0u) { return 0.0; }
  var m = lo;
  var ee = e;
  var st = sticky;
  if (hi != 0u) {
    let k = 32u - countLeadingZeros(hi);
    if (k == 32u) {
      m = hi;
      st = st || lo != 0u;
    } else {
      m = (hi << (32u - k)) | (lo >> k);
      st = st || (lo & ((1u << k) - 1u)) != 0u;
    }
    ee = e + i32(k);
  }
  let top = 31 - i32(countLeadingZeros(m));
  let lsbE = max(ee + top - 23, -149);
  let shift = lsbE - ee;
  var keep = 0u;
  if (shift <= 0) {
    keep = m << u32(-shift);
  } else if (shift <= 32) {
    let s = u32(shift);
    var rem = m;
    var half = 0x80000000u;
    if (s < 32u) {
      keep = m >> s;
      rem = m & ((1u << s) - 1u);
      half = 1u << (s - 1u);
    }
    if (rem > half || (rem == half && (st || (keep & 1u) == 1u))) { keep += 1u; }
  }
  let sign = select(0u, 0x80000000u, neg);
  if (keep == 0u) { return bitcast<f32>(sign); }
  if (lsbE + 149 >= 255) { return bitcast<f32>(sign | 0x7f800000u); }
  let bits = (u32(lsbE + 149) << 23u) + keep;
  return bitcast<f32>(sign | min(bits, 0x7f800000u));
}

fn isFiniteBits(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
fn isZeroBits(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0u; }
fn isNegBits(x: f32) -> bool { return (bitcast<u32>(x) & 0x80000000u) != 0u; }

// hi:lo << k for k < 64 (WGSL shifts take the amount modulo 32).
fn shl64(hi: u32, lo: u32, k: u32) -> vec2u {
  if (k == 0u) { return vec2u(hi, lo); }
  if (k >= 32u) { return vec2u(lo << (k - 32u), 0u); }
  return vec2u((hi << k) | (lo >> (32u - k)), lo << k);
}
fn add64(a: vec2u, b: vec2u) -> vec2u {
  let lo = a.y + b.y;
  return vec2u(a.x + b.x + select(0u, 1u, lo < a.y), lo);
}
fn sub64(a: vec2u, b: vec2u) -> vec2u {
  return vec2u(a.x - b.x - select(0u, 1u, a.y < b.y), a.y - b.y);
}
fn less64(a: vec2u, b: vec2u) -> bool { return a.x < b.x || (a.x == b.x && a.y < b.y); }

// hi:lo >> k with the bits shifted out as (hi, lo, nonzero).
fn shr64Sticky(v: vec2u, k: u32) -> vec3u {
  if (k == 0u) { return vec3u(v, 0u); }
  if (k >= 64u) { return vec3u(0u, 0u, select(0u, 1u, v.x != 0u || v.y != 0u)); }
  if (k >= 32u) {
    let lost = (v.x & ((1u << (k - 32u)) - 1u)) != 0u || v.y != 0u;
    return vec3u(0u, v.x >> (k - 32u), select(0u, 1u, lost));
  }
  let lost = (v.y & ((1u << k) - 1u)) != 0u;
  return vec3u(v.x >> k, (v.y >> k) | (v.x << (32u - k)), select(0u, 1u, lost));
}

// sa * A + sb * B for aligned 64-bit magnitudes, as (magnitude, negative); sticky is a fraction
// below the lowest bit that belongs to the smaller of the two (which must be strictly the
// smaller): big - (small + f) = (big - small - 1) + (1 - f), 0 < 1 - f < 1, still sticky.
struct SignedSum { m: vec2u, neg: bool }
fn signedSum(negA: bool, a: vec2u, negB: bool, b: vec2u, sticky: bool) -> SignedSum {
  if (negA == negB) { return SignedSum(add64(a, b), negA); }
  var big = a;
  var small = b;
  var neg = negA;
  if (less64(a, b)) { big = b; small = a; neg = negB; }
  var d = sub64(big, small);
  if (sticky) { d = sub64(d, vec2u(0u, 1u)); }
  return SignedSum(d, neg);
}

// (sa * A + sb * B) * 2^L rounded to float32 (see signedSum).
fn signedSumRne(negA: bool, a: vec2u, negB: bool, b: vec2u, l: i32, sticky: bool) -> f32 {
  let r = signedSum(negA, a, negB, b, sticky);
  return packRne(r.neg, r.m.x, r.m.y, l, sticky);
}

// fround(a / b) for finite b != 0.
fn divRn(a: f32, b: f32) -> f32 {
  let neg = isNegBits(a) != isNegBits(b);
  if (!isFiniteBits(a) || !isFiniteBits(b)) { return a / b; }
  if (isZeroBits(a)) { return bitcast<f32>(select(0u, 0x80000000u, neg)); }
  let ua = unpackF32(a);
  let ub = unpackF32(b);
  var r = ua.m;
  var e = ua.e - ub.e;
  if (r < ub.m) { r = r << 1u; e -= 1; }
  var q = 0u;
  for (var i = 0u; i < 26u; i++) {
    q = q << 1u;
    if (r >= ub.m) { r -= ub.m; q |= 1u; }
    r = r << 1u;
  }
  return packRne(neg, 0u, q, e - 25, r != 0u);
}

// fround(a + b).
fn addRn(a: f32, b: f32) -> f32 {
  if (!isFiniteBits(a) || !isFiniteBits(b)) { return a + b; }
  if (isZeroBits(a) && isZeroBits(b)) {
    return bitcast<f32>(select(0u, 0x80000000u, isNegBits(a) && isNegBits(b)));
  }
  if (isZeroBits(a)) { return b; }
  if (isZeroBits(b)) { return a; }
  var big = unpackF32(a);
  var small = unpackF32(b);
  var negBig = isNegBits(a);
  var negSmall = isNegBits(b);
  if (big.e < small.e) {
    let t = big; big = small; small = t;
    let n = negBig; negBig = negSmall; negSmall = n;
  }
  let d = u32(big.e - small.e);
  // Farther apart, the smaller is below a quarter of the larger's last place: no effect.
  if (d > 40u) { return select(b, a, unpackF32(a).e >= unpackF32(b).e); }
  return signedSumRne(negBig, shl64(0u, big.m, d), negSmall, vec2u(0u, small.m), small.e, false);
}

// fround(x - r * s) for an integer |r| <= 2^15 and finite s > 0 (see the module notes).
fn residualRn(x: f32, r: i32, s: f32) -> f32 {
  if (r == 0 || !isFiniteBits(x)) { return x; }
  let us = unpackF32(s);
  let ar = u32(abs(r));
  // |r| * m_s, up to 39 bits, as hi:lo.
  let p0 = ar * (us.m & 0xffffu);
  let p1 = ar * (us.m >> 16u);
  let c = add64(vec2u(p1 >> 16u, p1 << 16u), vec2u(0u, p0));
  let ux = unpackF32(x);
  // A common lowest bit at which both fit in 63 bits (so that their sum fits in 64); the
  // smaller one, if it reaches below it, keeps what it loses as a sticky fraction.
  let l = max(min(ux.e, us.e), max(ux.e - 39, us.e - 24));
  var xa = shl64(0u, ux.m, u32(max(ux.e - l, 0)));
  var ca = shl64(c.x, c.y, u32(max(us.e - l, 0)));
  var sticky = false;
  if (ux.e < l) { let t = shr64Sticky(vec2u(0u, ux.m), u32(l - ux.e)); xa = t.xy; sticky = t.z != 0u; }
  if (us.e < l) { let t = shr64Sticky(c, u32(l - us.e)); ca = t.xy; sticky = t.z != 0u; }
  return signedSumRne(isNegBits(x), xa, r > 0, ca, l, sticky);
}

// (v + sticky) * 2^e rounded half to even to 53 significant bits: (mantissa, exponent).
struct Wide { m: vec2u, e: i32 }
fn roundTo53(v: vec2u, e: i32, sticky: bool) -> Wide {
  var top = 31 - i32(countLeadingZeros(v.y));
  if (v.x != 0u) { top = 63 - i32(countLeadingZeros(v.x)); }
  if (top <= 52) { return Wide(v, e); }
  let k = u32(top - 52);
  let cut = shr64Sticky(v, k);
  let rem = v.y & ((1u << k) - 1u);
  let half = 1u << (k - 1u);
  var q = cut.xy;
  if (rem > half || (rem == half && (sticky || (q.y & 1u) == 1u))) { q = add64(q, vec2u(0u, 1u)); }
  return Wide(q, e + i32(k));
}

// fround(w - d) for a float32 w and a float64 d given by its bits (lo, hi): JavaScript's
// \`table[i] -= delta\` on a Float32Array, the subtraction rounded to float64 first.
fn subF64Rn(w: f32, dLo: u32, dHi: u32) -> f32 {
  let negD = (dHi & 0x80000000u) != 0u;
  let bexp = (dHi >> 20u) & 0x7ffu;
  let frac = vec2u(dHi & 0xfffffu, dLo);
  if (bexp == 0x7ffu) {
    if (frac.x != 0u || frac.y != 0u || !isFiniteBits(w)) { return w - bitcast<f32>(0x7fc00000u); }
    return bitcast<f32>(select(0xff800000u, 0x7f800000u, negD));
  }
  if (!isFiniteBits(w)) { return w; }
  if (bexp == 0u) {
    // Zero or below 2^-1022: no effect on a nonzero float32; -d's sign on a zero.
    if (!isZeroBits(w)) { return w; }
    if (frac.x == 0u && frac.y == 0u) {
      return bitcast<f32>(select(0u, 0x80000000u, isNegBits(w) && !negD));
    }
    return bitcast<f32>(select(0x80000000u, 0u, negD));
  }
  let md = vec2u(frac.x | 0x100000u, frac.y);
  let ed = i32(bexp) - 1075;
  if (isZeroBits(w)) { return packRne(!negD, md.x, md.y, ed, false); }
  let uw = unpackF32(w);
  // A common lowest bit at which both fit in 63 bits (so that their sum fits in 64); the
  // smaller one, if it reaches below it, keeps what it loses as a sticky fraction.
  let l = max(min(uw.e, ed), max(uw.e - 39, ed - 10));
  var wa = shl64(0u, uw.m, u32(max(uw.e - l, 0)));
  var da = shl64(md.x, md.y, u32(max(ed - l, 0)));
  var sticky = false;
  if (uw.e < l) { let t = shr64Sticky(vec2u(0u, uw.m), u32(l - uw.e)); wa = t.xy; sticky = t.z != 0u; }
  if (ed < l) { let t = shr64Sticky(md, u32(l - ed)); da = t.xy; sticky = t.z != 0u; }
  let r = signedSum(isNegBits(w), wa, !negD, da, sticky);
  let wide = roundTo53(r.m, l, sticky);
  return packRne(r.neg, wide.m.x, wide.m.y, wide.e, false);
}

// The integer level of x at scale s > 0 with n = 2^(bits-1) - 1.
fn levelOf(x: f32, s: f32, n: i32) -> i32 {
  let b = bitcast<u32>(x) & 0x7fffffffu;
  if (b > 0x7f800000u) { return 0; }
  let q = divRn(x, s);
  if ((bitcast<u32>(q) & 0x7fffffffu) > 0x7f800000u) { return 0; }
  if (!isFiniteBits(q)) { return select(n, -n - 1, isNegBits(q)); }
  return i32(clamp(round(q), f32(-n - 1), f32(n)));
}
`;
