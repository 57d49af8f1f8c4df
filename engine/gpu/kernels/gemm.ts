/**
 * Strided matrix product C = A B (+ bias, ReLU, ReLU-derivative mask), the one kernel of every
 * MLP product: forward Y = X Wᵀ, input gradient dX = dY W (masked by X > 0) and weight gradient
 * dW = dYᵀ X, by choosing strides. 16 x 16 tiles in workgroup memory; each invocation sums its
 * output over k in ascending order.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Flag: M is the batch's rows. */
export const GEMM_M_ROWS = 1;
/** Flag: K is the batch's rows. */
export const GEMM_K_ROWS = 2;
/** Flag: A starts at sample s0 (A is the chunk's dense input): base += s0 * aRow. */
export const GEMM_A_AT_S0 = 4;
/** Flag: add bias[n]. */
export const GEMM_BIAS = 8;
/** Flag: ReLU on the output. */
export const GEMM_RELU = 16;
/** Flag: zero the output where mask[m * maskRow + n] <= 0 (ReLU derivative). */
export const GEMM_MASK = 32;
/** Flag: B starts at sample s0 (B is the chunk's dense input): base += s0 * bRow. */
export const GEMM_B_AT_S0 = 64;

/** Words of the kernel's uniform block, in order. */
export const GEMM_FIELDS = [
  "m",
  "n",
  "k",
  "flags",
  "aRow",
  "aCol",
  "bRow",
  "bCol",
  "cRow",
  "maskRow",
  "aBase",
  "bBase",
  "cBase",
  "maskBase",
] as const;

/** C[m, n] = sum_k A[m, k] B[k, n] over strided views of A, B, C. */
export const GEMM: KernelSource = {
  name: "gemm",
  bindings: ["uniform", "read", "read", "rw", "read", "read"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G {
  m: u32, n: u32, k: u32, flags: u32,
  aRow: u32, aCol: u32, bRow: u32, bCol: u32,
  cRow: u32, maskRow: u32, aBase: u32, bBase: u32,
  cBase: u32, maskBase: u32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;

var<workgroup> ta: array<array<f32, 16>, 16>;
var<workgroup> tb: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let M = select(g.m, it.rows, (g.flags & 1u) != 0u);
  let K = select(g.k, it.rows, (g.flags & 2u) != 0u);
  let N = g.n;
  let aBase = g.aBase + select(0u, it.s0 * g.aRow, (g.flags & 4u) != 0u);
  let bBase = g.bBase + select(0u, it.s0 * g.bRow, (g.flags & 64u) != 0u);
  let row = w.y * 16u + l.y;
  let col = w.x * 16u + l.x;
  if (w.y * 16u >= M) { return; } // uniform per workgroup
  var acc = 0.0;
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    let ak = k0 + l.x;
    var va = 0.0;
    if (row < M && ak < K) { va = a[aBase + row * g.aRow + ak * g.aCol]; }
    ta[l.y][l.x] = va;
    let bk = k0 + l.y;
    var vb = 0.0;
    if (bk < K && col < N) { vb = b[bBase + bk * g.bRow + col * g.bCol]; }
    tb[l.y][l.x] = vb;
    workgroupBarrier();
    let kn = min(16u, K - k0);
    for (var kk = 0u; kk < kn; kk++) { acc += ta[l.y][kk] * tb[kk][l.x]; }
    workgroupBarrier();
  }
  if (row >= M || col >= N) { return; }
  if ((g.flags & 8u) != 0u) { acc += bias[col]; }
  if ((g.flags & 16u) != 0u) { acc = max(acc, 0.0); }
  if ((g.flags & 32u) != 0u && !(mask[g.maskBase + row * g.maskRow + col] > 0.0)) { acc = 0.0; }
  c[g.cBase + row * g.cRow + col] = acc;
}
`,
};
