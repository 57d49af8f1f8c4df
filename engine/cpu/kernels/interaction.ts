// DLRM's dot interaction without self-interaction, forward and backward.
import { fma, hsum1, maskPositive } from "./simd";

/**
 * For each sample r in [r0, r1): T[r] holds f vectors of dp floats (dp a multiple of 4, zero
 * padded past d); out[r] = [T[r][0][0..d), T[r][i] . T[r][j] for i = 1..f-1, j = 0..i-1].
 */
export function interactForward(
  t: usize,
  ldt: i32,
  f: i32,
  dp: i32,
  d: i32,
  r0: i32,
  r1: i32,
  out: usize,
  ldo: i32,
): void {
  const vb = <usize> dp * 4;
  for (let r = r0; r < r1; r++) {
    const tr = t + <usize> r * <usize> ldt * 4;
    let o = out + <usize> r * <usize> ldo * 4;
    for (let q = 0; q < d; q++) store<f32>(o + <usize> q * 4, load<f32>(tr + <usize> q * 4));
    o += <usize> d * 4;
    for (let i = 1; i < f; i++) {
      const ti = tr + <usize> i * vb;
      for (let j = 0; j < i; j++) {
        const tj = tr + <usize> j * vb;
        let acc = f32x4.splat(0);
        for (let p: usize = 0; p < vb; p += 16) {
          acc = fma(v128.load(ti + p), v128.load(tj + p), acc);
        }
        store<f32>(o, hsum1(acc));
        o += 4;
      }
    }
  }
}

/**
 * Gradient of interactForward: dT[r] = d out[r] / d T[r] for r in [r0, r1), given dOut. Vector 0
 * (the bottom MLP's output, after ReLU) gets the ReLU derivative applied.
 */
export function interactBackward(
  t: usize,
  ldt: i32,
  f: i32,
  dp: i32,
  d: i32,
  r0: i32,
  r1: i32,
  dout: usize,
  lddo: i32,
  dt: usize,
): void {
  const vb = <usize> dp * 4;
  const row = <usize> ldt * 4;
  for (let r = r0; r < r1; r++) {
    const tr = t + <usize> r * row;
    const gr = dt + <usize> r * row;
    memory.fill(gr, 0, <usize> f * vb);
    let o = dout + <usize> r * <usize> lddo * 4;
    for (let q = 0; q < d; q++) store<f32>(gr + <usize> q * 4, load<f32>(o + <usize> q * 4));
    o += <usize> d * 4;
    for (let i = 1; i < f; i++) {
      const ti = tr + <usize> i * vb, gi = gr + <usize> i * vb;
      for (let j = 0; j < i; j++) {
        const tj = tr + <usize> j * vb, gj = gr + <usize> j * vb;
        const g = v128.load32_splat(o);
        o += 4;
        for (let p: usize = 0; p < vb; p += 16) {
          v128.store(gi + p, fma(g, v128.load(tj + p), v128.load(gi + p)));
          v128.store(gj + p, fma(g, v128.load(ti + p), v128.load(gj + p)));
        }
      }
    }
    for (let p: usize = 0; p < vb; p += 16) {
      v128.store(gr + p, maskPositive(v128.load(gr + p), v128.load(tr + p)));
    }
  }
}
