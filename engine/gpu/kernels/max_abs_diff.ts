/**
 * Largest |x - y| over two equal-length float arrays, and largest |y|, folded into
 * `out[2 slot]` and `out[2 slot + 1]` by atomic max on the floats' bits (non-negative floats
 * order as their bits do; a NaN's bits lie above +Inf's, so a NaN shows as the largest). Grid-stride over `n`, so any number of workgroups covers any length. Used by
 * the GEMM sweep to check each candidate's output against the reference plan's on the GPU.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";

/** Invocations per workgroup. */
export const MAX_ABS_DIFF_WORKGROUP = 256;

/** Bindings: uniform (n, slot), x, y, out (u32 pairs, zeroed before the first use of a slot). */
export const MAX_ABS_DIFF: KernelSource = {
  name: "max_abs_diff",
  bindings: ["uniform", "read", "read", "rw"],
  code: /* wgsl */ `
struct P { n: u32, slot: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<atomic<u32>>;

@compute @workgroup_size(${MAX_ABS_DIFF_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  var diff = 0u;
  var mag = 0u;
  for (var i = id.x; i < p.n; i += nw.x * ${MAX_ABS_DIFF_WORKGROUP}u) {
    let d = x[i] - y[i];
    diff = max(diff, bitcast<u32>(abs(d)));
    mag = max(mag, bitcast<u32>(abs(y[i])));
  }
  atomicMax(&out[2u * p.slot], diff);
  atomicMax(&out[2u * p.slot + 1u], mag);
}
`,
};
