/**
 * The largest |w| of every output row of one MLP weight matrix, into `rowMax[sBase + row]`: the
 * first step of the whole-matrix scales (matrix-wise minmax, DoReFa's max |tanh(w)|). One
 * workgroup per row, reduced in workgroup memory.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** One workgroup per output row of one layer. */
export const ROW_MAX_ABS: KernelSource = {
  name: "row_max_abs",
  bindings: ["uniform", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { outputs: u32, inputs: u32, wBase: u32, sBase: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> rowMax: array<f32>;

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
  if (l.x == 0u) { rowMax[g.sBase + row] = part[0]; }
}
`,
};
