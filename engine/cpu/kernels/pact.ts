// PACT's learned activation clipping (Choi et al. 2018): y = round(clip(x, 0, a) k / a) a / k.

/**
 * In place over rows r < rows and columns [n0, n1) (multiples of 4) of the ReLU output X: keeps
 * the unclipped value in pre, then writes the k-level quantization of min(x, a) back into X.
 */
export function pactForward(
  x: usize, pre: usize, ld: i32, rows: i32, n0: i32, n1: i32, a: f32, k: f32,
): void {
  const av = f32x4.splat(a), up = f32x4.splat(k / a), down = f32x4.splat(a / k);
  for (let r = 0; r < rows; r++) {
    const row = <usize>r * <usize>ld * 4;
    for (let c = <usize>n0 * 4; c < <usize>n1 * 4; c += 16) {
      const v = v128.load(x + row + c);
      v128.store(pre + row + c, v);
      const q = f32x4.mul(f32x4.nearest(f32x4.mul(f32x4.min(v, av), up)), down);
      v128.store(x + row + c, q);
    }
  }
}

/**
 * PACT's backward over the same region of the input gradient G (already masked by x > 0): the
 * entries whose unclipped value reached a are summed (the gradient of a) and zeroed (clipped
 * values pass no gradient to x). Returns the sum.
 */
export function pactBackward(g: usize, pre: usize, ld: i32, rows: i32, n0: i32, n1: i32, a: f32): f32 {
  const av = f32x4.splat(a);
  let acc = f32x4.splat(0);
  for (let r = 0; r < rows; r++) {
    const row = <usize>r * <usize>ld * 4;
    for (let c = <usize>n0 * 4; c < <usize>n1 * 4; c += 16) {
      const gv = v128.load(g + row + c);
      const clipped = f32x4.ge(v128.load(pre + row + c), av);
      acc = f32x4.add(acc, v128.and(gv, clipped));
      v128.store(g + row + c, v128.andnot(gv, clipped));
    }
  }
  const h = f32x4.add(acc, v128.shuffle<f32>(acc, acc, 2, 3, 0, 1));
  return f32x4.extract_lane(h, 0) + f32x4.extract_lane(h, 1);
}
