/**
 * DLRM's dot interaction without self-interaction: for each sample, R = [T0, Ti . Tj for
 * i = 1..F-1, j = 0..i-1], T holding F vectors of d floats per sample.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** One invocation per (sample, output column). */
export const INTERACTION_FORWARD: KernelSource = {
  name: "interaction_forward",
  bindings: ["uniform", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { f: u32, d: u32, ldt: u32, ldr: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> t: array<f32>;
@group(0) @binding(2) var<storage, read_write> r: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let c = id.x;
  let s = id.y;
  // R's row is ldr floats, the output width rounded up to 4: the pad is left alone.
  if (c >= g.d + g.f * (g.f - 1u) / 2u || s >= it.rows) { return; }
  let tr = s * g.ldt;
  if (c < g.d) {
    r[s * g.ldr + c] = t[tr + c];
    return;
  }
  // Pair p = i (i - 1) / 2 + j, 0 <= j < i.
  let p = c - g.d;
  var i = u32(floor((1.0 + sqrt(1.0 + 8.0 * f32(p))) * 0.5));
  while (i * (i - 1u) / 2u > p) { i--; }
  while ((i + 1u) * i / 2u <= p) { i++; }
  let j = p - i * (i - 1u) / 2u;
  var acc = 0.0;
  for (var q = 0u; q < g.d; q++) { acc += t[tr + i * g.d + q] * t[tr + j * g.d + q]; }
  r[s * g.ldr + c] = acc;
}
`,
};
