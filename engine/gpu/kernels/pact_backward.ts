/**
 * PACT's backward over one hidden layer's input gradient G (rows x width, already masked by
 * pre > 0): entries whose unclipped value reached the clip a are zeroed (a clipped value passes no
 * gradient) and summed into a's gradient, one part per 8-column unit, in the CPU engine's order
 * (per unit, four partial sums by column modulo 4 over rows in order, combined as
 * (p0 + p2) + (p1 + p3)), so both engines find the same parts. One invocation per unit.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Columns per unit of a's gradient. */
export const PACT_UNIT = 8;

/** One invocation per 8-column unit of one layer. */
export const PACT_BACKWARD: KernelSource = {
  name: "pact_backward",
  bindings: ["uniform", "read", "rw", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { width: u32, layer: u32, partBase: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> alphas: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read> pre: array<f32>;
@group(0) @binding(4) var<storage, read_write> parts: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let u = id.x;
  let c0 = u * 8u;
  if (c0 >= g.width) { return; }
  let a = alphas[g.layer];
  var acc = vec4f(0.0);
  for (var r = 0u; r < it.rows; r++) {
    for (var c = c0; c < min(c0 + 8u, g.width); c++) {
      let i = r * g.width + c;
      if (pre[i] >= a) {
        acc[c % 4u] += grad[i];
        grad[i] = 0.0;
      }
    }
  }
  parts[g.partBase + u] = (acc.x + acc.z) + (acc.y + acc.w);
}
`,
};
