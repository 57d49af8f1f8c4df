/**
 * Gradient of the dot interaction: dT[s, v, q] = [v = 0] dR[s, q] + sum over u != v of
 * dR[s, pair(v, u)] T[s, u, q], u ascending; vector 0 (the bottom MLP's ReLU output) is masked by
 * T > 0. No atomics: each invocation owns one value of dT.
 *
 * Staged where a sample's T and dR fit in workgroup memory (as the forward kernel,
 * `interaction_forward.ts`): one workgroup per sample copies both once, coalesced, and sums from
 * there; else one invocation per (sample, vector, lane) reads them from global memory. The same
 * sums in the same order either way.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import {
  INTERACTION_LANES,
  INTERACTION_UNIFORM_WGSL,
  interactionStages,
  stageTWgsl,
} from "./interaction_forward.ts";

/**
 * The interaction's backward kernel for `f` vectors of `d` floats: staged where it fits
 * (dispatch 1 x rows workgroups), else one invocation per value of dT (ceil(f d / 64) x rows).
 */
export function interactionBackwardKernel(
  f: number,
  d: number,
  staged = interactionStages(f, d) !== null,
): KernelSource {
  const stages = staged ? interactionStages(f, d) : null;
  const head = /* wgsl */ `${INTERACTION_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> t: array<f32>;
@group(0) @binding(2) var<storage, read> dr: array<f32>;
@group(0) @binding(3) var<storage, read_write> dt: array<f32>;`;
  if (stages) {
    return {
      name: "interaction_backward",
      bindings: ["uniform", "read", "read", "rw"],
      code: /* wgsl */ `${head}
var<workgroup> drs: array<f32, ${stages.r}>;
${stageTWgsl(stages.t)}
  for (var c = li; c < g.d + g.f * (g.f - 1u) / 2u; c += ${INTERACTION_LANES}u) {
    drs[c] = dr[s * g.ldr + c];
  }
  workgroupBarrier();
  for (var x = li; x < g.f * g.d; x += ${INTERACTION_LANES}u) {
    let v = x / g.d;
    let q = x % g.d;
    var acc = 0.0;
    if (v == 0u) { acc = drs[q]; }
    for (var u = 0u; u < g.f; u++) {
      if (u == v) { continue; }
      let i = max(u, v);
      let j = min(u, v);
      acc += drs[g.d + i * (i - 1u) / 2u + j] * ts[u * d1 + q];
    }
    if (v == 0u && !(ts[q] > 0.0)) { acc = 0.0; }
    dt[tr + x] = acc;
  }
}
`,
    };
  }
  return {
    name: "interaction_backward_global",
    bindings: ["uniform", "read", "read", "rw"],
    code: /* wgsl */ `${head}
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
}
