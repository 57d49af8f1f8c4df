/**
 * PACT's update of the learned clips: for every layer whose output is clipped
 * (`units[layer]` > 0), a = max(a - lr * sum of its unit parts, 1e-3), the parts summed in unit
 * order. One invocation per layer.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** One invocation per linear layer. */
export const PACT_ALPHA: KernelSource = {
  name: "pact_alpha",
  bindings: ["uniform", "rw", "read", "read"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { layers: u32, unitsPerLayer: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read_write> alphas: array<f32>;
@group(0) @binding(2) var<storage, read> parts: array<f32>;
@group(0) @binding(3) var<storage, read> units: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let j = id.x;
  if (j >= g.layers || units[j] == 0u) { return; }
  var sum = 0.0;
  for (var u = 0u; u < units[j]; u++) { sum += parts[j * g.unitsPerLayer + u]; }
  alphas[j] = max(alphas[j] - it.lr * sum, 1e-3);
}
`,
};
