// Shared SIMD helpers of the CPU kernels (AssemblyScript, compiled to WebAssembly SIMD).

/** Horizontal sums of four vectors: lane i of the result is the sum of the lanes of vector i. */
@inline export function hsum4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const s01 = f32x4.add(
    v128.shuffle<f32>(a0, a1, 0, 4, 1, 5),
    v128.shuffle<f32>(a0, a1, 2, 6, 3, 7),
  );
  const s23 = f32x4.add(
    v128.shuffle<f32>(a2, a3, 0, 4, 1, 5),
    v128.shuffle<f32>(a2, a3, 2, 6, 3, 7),
  );
  return f32x4.add(
    v128.shuffle<f32>(s01, s23, 0, 1, 4, 5),
    v128.shuffle<f32>(s01, s23, 2, 3, 6, 7),
  );
}

/** Sum of the four lanes of one vector. */
@inline export function hsum1(a: v128): f32 {
  const s = f32x4.add(a, v128.shuffle<f32>(a, a, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** Multiply-add `a * b + c`; fused where the CPU has FMA (relaxed SIMD). */
@inline export function fma(a: v128, b: v128, c: v128): v128 {
  return f32x4.relaxed_madd(a, b, c);
}

/** Keeps the lanes of `v` where `m > 0` and zeroes the others (ReLU's derivative). */
@inline export function maskPositive(v: v128, m: v128): v128 {
  return v128.and(v, f32x4.gt(m, f32x4.splat(0)));
}
