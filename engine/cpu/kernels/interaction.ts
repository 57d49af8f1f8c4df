// DLRM's dot interaction without self-interaction, forward and backward.
import { fma, hsum1, hsum4, maskPositive } from "./simd";

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
      let j = 0;
      // Eight or four dot products at once: independent accumulators, one horizontal sum per four
      // (hsum4 adds each vector's lanes as hsum1 does, so every product is the same).
      for (; j + 8 <= i; j += 8) {
        const t0 = tr + <usize> j * vb, t1 = t0 + vb, t2 = t1 + vb, t3 = t2 + vb;
        const t4 = t3 + vb, t5 = t4 + vb, t6 = t5 + vb, t7 = t6 + vb;
        let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (let p: usize = 0; p < vb; p += 16) {
          const x = v128.load(ti + p);
          a0 = fma(x, v128.load(t0 + p), a0);
          a1 = fma(x, v128.load(t1 + p), a1);
          a2 = fma(x, v128.load(t2 + p), a2);
          a3 = fma(x, v128.load(t3 + p), a3);
          a4 = fma(x, v128.load(t4 + p), a4);
          a5 = fma(x, v128.load(t5 + p), a5);
          a6 = fma(x, v128.load(t6 + p), a6);
          a7 = fma(x, v128.load(t7 + p), a7);
        }
        v128.store(o, hsum4(a0, a1, a2, a3));
        v128.store(o + 16, hsum4(a4, a5, a6, a7));
        o += 32;
      }
      for (; j + 4 <= i; j += 4) {
        const t0 = tr + <usize> j * vb, t1 = t0 + vb, t2 = t1 + vb, t3 = t2 + vb;
        let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (let p: usize = 0; p < vb; p += 16) {
          const x = v128.load(ti + p);
          a0 = fma(x, v128.load(t0 + p), a0);
          a1 = fma(x, v128.load(t1 + p), a1);
          a2 = fma(x, v128.load(t2 + p), a2);
          a3 = fma(x, v128.load(t3 + p), a3);
        }
        v128.store(o, hsum4(a0, a1, a2, a3));
        o += 16;
      }
      for (; j < i; j++) {
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
