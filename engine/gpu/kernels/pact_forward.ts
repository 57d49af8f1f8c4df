/**
 * PACT's learned activation clip on one hidden layer's ReLU output Y (rows x width): keeps the
 * unclipped value in `pre` and writes y = round(min(x, a) k / a) a / k back, with the layer's
 * learned clip a = alphas[layer] and k = 2^bits - 1 levels (k / a and a / k in float32, as the
 * CPU engine computes them).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** x = column block of 64, y = row of the batch. */
export const PACT_FORWARD: KernelSource = {
  name: "pact_forward",
  bindings: ["uniform", "read", "rw", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { width: u32, layer: u32, k: f32, pad0: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> alphas: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> pre: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let c = id.x;
  let r = id.y;
  if (c >= g.width || r >= it.rows) { return; }
  let a = alphas[g.layer];
  let up = g.k / a;
  let down = a / g.k;
  let i = r * g.width + c;
  let v = y[i];
  pre[i] = v;
  y[i] = round(min(v, a) * up) * down;
}
`,
};
