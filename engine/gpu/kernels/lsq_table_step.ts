/**
 * LSQ's update of each table's learned step after `lsq_embedding_update`: ds = the sum of the
 * batch's step-gradient parts of the table (a fixed-order tree in workgroup memory, so the result
 * does not depend on timing), then s = max(s - lr ds / sqrt(n count), 1e-8) over the `count`
 * values the batch gathered (no change when it gathered none). One workgroup per table.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** One workgroup per table. */
export const LSQ_TABLE_STEP: KernelSource = {
  name: "lsq_table_step",
  bindings: ["uniform", "read", "read", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, d: u32, partStride: u32, levels: f32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read> parts: array<f32>;
@group(0) @binding(4) var<storage, read_write> scales: array<f32>;

var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let tb = wg.x;
  if (tb >= g.tables) { return; }
  let ob = dir[tb].y + it.s0;
  let count = (offsets[ob + it.rows] - offsets[ob]) * g.d;
  var acc = 0.0;
  for (var i = l.x; i < count; i += 64u) { acc += parts[tb * g.partStride + i]; }
  part[l.x] = acc;
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    if (l.x < h) { part[l.x] = part[l.x] + part[l.x + h]; }
    workgroupBarrier();
  }
  if (l.x == 0u && count > 0u) {
    let s = scales[tb];
    scales[tb] = max(s - (it.lr * part[0]) / sqrt(g.levels * f32(count)), 1e-8);
  }
}
`,
};
