/**
 * Plain SGD over a whole packed parameter buffer: w[i] -= lr * g[i]. Every MLP weight and bias
 * lives in one buffer (zero padding between tensors, whose gradient stays zero), so one dispatch
 * updates the whole MLP.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** w[i] -= lr * g[i] for i < count. */
export const SGD: KernelSource = {
  name: "sgd",
  bindings: ["uniform", "rw", "read"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { count: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = id.x + id.y * nw.x * 256u;
  if (i >= g.count) { return; }
  w[i] = w[i] - it.lr * grad[i];
}
`,
};
