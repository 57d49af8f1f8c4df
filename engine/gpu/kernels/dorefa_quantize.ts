/**
 * DoReFa fake quantization of one MLP weight matrix (the public DQRM code's "PACT" weights):
 * q = 2 round(k (tanh(w) / (2 m) + 1/2)) / k - 1, k = 2^bits - 1, m = max(tanh(max|W|), 1e-8)
 * over the whole matrix, from the row maxima `row_max_abs` left. One workgroup per output row;
 * each reduces the layer's row maxima itself (outputs reads), then quantizes its row.
 * `tanh` is evaluated at |x| <= 10 (tanh(10) is 1 in float32), which keeps every implementation
 * finite.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** One workgroup per output row of one layer. */
export const DOREFA_QUANTIZE: KernelSource = {
  name: "dorefa_quantize",
  bindings: ["uniform", "read", "rw", "read"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { outputs: u32, inputs: u32, wBase: u32, sBase: u32, k: f32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read> rowMax: array<f32>;

var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let row = wg.x;
  if (row >= g.outputs) { return; }
  var m = 0.0;
  for (var r = l.x; r < g.outputs; r += 64u) { m = max(m, rowMax[g.sBase + r]); }
  part[l.x] = m;
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    if (l.x < h) { part[l.x] = max(part[l.x], part[l.x + h]); }
    workgroupBarrier();
  }
  let tanhMax = max(tanh(min(part[0], 10.0)), 1e-8);
  let inv = 1.0 / (2.0 * tanhMax);
  let k = g.k;
  let base = g.wBase + row * g.inputs;
  for (var c = l.x; c < g.inputs; c += 64u) {
    let t = tanh(clamp(w[base + c], -10.0, 10.0)) * inv + 0.5;
    q[base + c] = (2.0 * round(k * t)) / k - 1.0;
  }
}
`,
};
