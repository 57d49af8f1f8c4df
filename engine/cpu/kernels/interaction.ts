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
 *
 * Vector k's gradient is dT_k = sum over m != k, m ascending, of g(k, m) T_m (g(k, m) the output
 * gradient of the pair), accumulated by fused multiply-adds from 0 (vector 0: from its pass-through
 * gradient). It is computed vector by vector in registers, 8, 4 or 1 SIMD vectors at a time: the
 * same operations in the same order as adding each pair's two terms to both vectors in memory.
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
    // Vector 0's gradient starts as the pass-through part of dOut (zero padded).
    memory.fill(gr, 0, vb);
    const o0 = dout + <usize> r * <usize> lddo * 4;
    for (let q = 0; q < d; q++) store<f32>(gr + <usize> q * 4, load<f32>(o0 + <usize> q * 4));
    // The gradient of pair (i, j), j < i, is at o + 4 (i (i - 1) / 2 + j).
    const o = o0 + <usize> d * 4;
    for (let k = 0; k < f; k++) {
      const gk = gr + <usize> k * vb;
      const below = o + <usize> ((k * (k - 1)) >> 1) * 4;
      let p: usize = 0;
      for (; p + 128 <= vb; p += 128) {
        let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        if (k === 0) {
          a0 = v128.load(gk + p);
          a1 = v128.load(gk + p, 16);
          a2 = v128.load(gk + p, 32);
          a3 = v128.load(gk + p, 48);
          a4 = v128.load(gk + p, 64);
          a5 = v128.load(gk + p, 80);
          a6 = v128.load(gk + p, 96);
          a7 = v128.load(gk + p, 112);
        }
        for (let m = 0; m < f; m++) {
          if (m === k) continue;
          const g = v128.load32_splat(
            m < k ? below + <usize> m * 4 : o + <usize> (((m * (m - 1)) >> 1) + k) * 4,
          );
          const tm = tr + <usize> m * vb + p;
          a0 = fma(g, v128.load(tm), a0);
          a1 = fma(g, v128.load(tm, 16), a1);
          a2 = fma(g, v128.load(tm, 32), a2);
          a3 = fma(g, v128.load(tm, 48), a3);
          a4 = fma(g, v128.load(tm, 64), a4);
          a5 = fma(g, v128.load(tm, 80), a5);
          a6 = fma(g, v128.load(tm, 96), a6);
          a7 = fma(g, v128.load(tm, 112), a7);
        }
        v128.store(gk + p, a0);
        v128.store(gk + p, a1, 16);
        v128.store(gk + p, a2, 32);
        v128.store(gk + p, a3, 48);
        v128.store(gk + p, a4, 64);
        v128.store(gk + p, a5, 80);
        v128.store(gk + p, a6, 96);
        v128.store(gk + p, a7, 112);
      }
      for (; p + 64 <= vb; p += 64) {
        let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
        if (k === 0) {
          a0 = v128.load(gk + p);
          a1 = v128.load(gk + p, 16);
          a2 = v128.load(gk + p, 32);
          a3 = v128.load(gk + p, 48);
        }
        for (let m = 0; m < f; m++) {
          if (m === k) continue;
          const g = v128.load32_splat(
            m < k ? below + <usize> m * 4 : o + <usize> (((m * (m - 1)) >> 1) + k) * 4,
          );
          const tm = tr + <usize> m * vb + p;
          a0 = fma(g, v128.load(tm), a0);
          a1 = fma(g, v128.load(tm, 16), a1);
          a2 = fma(g, v128.load(tm, 32), a2);
          a3 = fma(g, v128.load(tm, 48), a3);
        }
        v128.store(gk + p, a0);
        v128.store(gk + p, a1, 16);
        v128.store(gk + p, a2, 32);
        v128.store(gk + p, a3, 48);
      }
      for (; p < vb; p += 16) {
        let a = k === 0 ? v128.load(gk + p) : f32x4.splat(0);
        for (let m = 0; m < f; m++) {
          if (m === k) continue;
          const g = v128.load32_splat(
            m < k ? below + <usize> m * 4 : o + <usize> (((m * (m - 1)) >> 1) + k) * 4,
          );
          a = fma(g, v128.load(tr + <usize> m * vb + p), a);
        }
        v128.store(gk + p, a);
      }
    }
    for (let p: usize = 0; p < vb; p += 16) {
      v128.store(gr + p, maskPositive(v128.load(gr + p), v128.load(tr + p)));
    }
  }
}
