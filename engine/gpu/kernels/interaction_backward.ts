/**
 * Gradient of the dot interaction: dT[s, v, q] = [v = 0] dR[s, q] + sum over u != v of
 * dR[s, pair(v, u)] T[s, u, q], u ascending; vector 0 (the bottom MLP's ReLU output) is masked by
 * T > 0. No atomics: each invocation owns one value of dT.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** One invocation per (sample, vector, lane). */
export const INTERACTION_BACKWARD: KernelSource = {
  name: "interaction_backward",
  bindings: ["uniform", "read", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { f: u32, d: u32, ldt: u32, ldr: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> t: array<f32>;
@group(0) @binding(2) var<storage, read> dr: array<f32>;
@group(0) @binding(3) var<storage, read_write> dt: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let x = id.x;
  let s = id.y;
  if (x >= g.f * g.d || s >= it.rows) { return; }
  let v = x / g.d;
  let q = x % g.d;
  let tr = s * g.ldt;
  let rr = s * g.ldr + g.d;
  var acc = 0.0;
  if (v == 0u) { acc = dr[s * g.ldr + q]; }
  for (var u = 0u; u < g.f; u++) {
    if (u == v) { continue; }
    let i = max(u, v);
    let j = min(u, v);
    acc += dr[rr + i * (i - 1u) / 2u + j] * t[tr + u * g.d + q];
  }
  if (v == 0u && !(t[tr + q] > 0.0)) { acc = 0.0; }
  dt[tr + x] = acc;
}
`,
};
