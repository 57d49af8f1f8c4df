/**
 * Second pass of a split-K matrix product: C[m, n] = sum over z of the partial sums
 * `partials[z * splitStride + m * n_ + n]` (added in z order, so the result is deterministic), then
 * the product's epilogue (bias, ReLU, ReLU-derivative mask). Reads the same uniform block as
 * the GEMM kernel: `cRow`, `cBase` and the flags describe the final C, `splits` and
 * `splitStride` the partials, whose rows are `n` floats apart.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { GEMM_UNIFORM_WGSL } from "./gemm.ts";
import { ITER_WGSL } from "./iter.ts";

/** Invocations of a workgroup: (x over n, y over m). */
export const GEMM_SPLIT_REDUCE_WORKGROUP: [number, number] = [64, 4];

/** Bindings: uniform, partials, C, bias, mask. */
export const GEMM_SPLIT_REDUCE: KernelSource = {
  name: "gemm_split_reduce",
  bindings: ["uniform", "read", "rw", "read", "read"],
  code: /* wgsl */ `
${ITER_WGSL}
${GEMM_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;

@compute @workgroup_size(64, 4)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let M = select(g.m, it.rows, (g.flags & 1u) != 0u);
  let N = g.n;
  let row = id.y;
  let col = id.x;
  if (row >= M || col >= N) { return; }
  var acc = 0.0;
  for (var z = 0u; z < g.splits; z++) { acc += partials[z * g.splitStride + row * N + col]; }
  if ((g.flags & 8u) != 0u) { acc += bias[col]; }
  if ((g.flags & 16u) != 0u) { acc = max(acc, 0.0); }
  if ((g.flags & 32u) != 0u && !(mask[g.maskBase + row * g.maskRow + col] > 0.0)) { acc = 0.0; }
  c[g.cBase + row * g.cRow + col] = acc;
}
`,
};
