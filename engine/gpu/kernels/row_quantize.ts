/**
 * Channel-wise fake quantization of one MLP weight matrix: per output row, s = max(max|w|, 1e-8)
 * / n and q = clamp(round(w / s), -n - 1, n) s (round is half to even in WGSL); the bias too when
 * flag 1 is set. One workgroup per row; the maximum is reduced in workgroup memory.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Flag: quantize the bias with its row's scale. */
export const ROW_QUANTIZE_BIAS = 1;

/** One workgroup per output row of one layer. */
export const ROW_QUANTIZE: KernelSource = {
  name: "row_quantize",
  bindings: ["uniform", "read", "rw", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G {
  outputs: u32, inputs: u32, wBase: u32, bBase: u32,
  levels: f32, flags: u32, sBase: u32, pad: u32,
}
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;

var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let row = wg.x;
  if (row >= g.outputs) { return; }
  let base = g.wBase + row * g.inputs;
  var m = 0.0;
  for (var c = l.x; c < g.inputs; c += 64u) { m = max(m, abs(w[base + c])); }
  part[l.x] = m;
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    if (l.x < h) { part[l.x] = max(part[l.x], part[l.x + h]); }
    workgroupBarrier();
  }
  let n = g.levels;
  let s = max(part[0], 1e-8) / n;
  for (var c = l.x; c < g.inputs; c += 64u) {
    q[base + c] = clamp(round(w[base + c] / s), -n - 1.0, n) * s;
  }
  if (l.x == 0u) {
    scales[g.sBase + row] = s;
    if ((g.flags & 1u) != 0u) {
      q[g.bBase + row] = clamp(round(w[g.bBase + row] / s), -n - 1.0, n) * s;
    }
  }
}
`,
};
