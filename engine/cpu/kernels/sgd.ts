// Plain SGD on a dense buffer.

/** w[i] -= lr * g[i] for i in [i0, i1) (multiples of 4). */
export function sgd(w: usize, g: usize, i0: i32, i1: i32, lr: f32): void {
  const l = f32x4.splat(lr);
  for (let i = <usize> i0 * 4; i < <usize> i1 * 4; i += 16) {
    v128.store(w + i, f32x4.sub(v128.load(w + i), f32x4.mul(l, v128.load(g + i))));
  }
}
