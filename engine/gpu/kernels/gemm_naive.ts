/**
 * The GEMM for small products: 16 x 16 outputs per workgroup, one per invocation, k ascending.
 * Where a product has few tiles (batch 128's MLP layers), its four times more workgroups than the
 * smallest register-tiled shape keep more SMs busy and beat it (measured on an H200 by
 * `cli/bench_gpu_kernels.ts`); the same uniform block and bindings as `gemm.ts`'s kernels.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { GEMM_UNIFORM_WGSL } from "./gemm.ts";
import { ITER_WGSL } from "./iter.ts";

/** The small-product GEMM: bindings and uniform block as {@linkcode gemmKernel}'s, no K splits. */
export const GEMM_NAIVE16: KernelSource = {
  name: "gemm_naive16",
  bindings: ["uniform", "read", "read", "rw", "read", "read"],
  code: /* wgsl */ `
${ITER_WGSL}
${GEMM_UNIFORM_WGSL}
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
  if (w.y * 16u >= M) { return; }
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
