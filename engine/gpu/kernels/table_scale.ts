/**
 * Scale finding, step 2: each table's scale s = max(maxAbs, 1e-8) / n from the bits that
 * `table_max_abs` left, which it clears for the next search. With `TABLE_SCALE_DOREFA`, the
 * table's DoReFa normaliser s = max(tanh(maxAbs), 1e-8) instead (tanh at most at 10, where it is 1
 * in float32).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Flag: DoReFa's max |tanh(w)| instead of the symmetric scale. */
export const TABLE_SCALE_DOREFA = 1;

/** One invocation per table. */
export const TABLE_SCALE: KernelSource = {
  name: "table_scale",
  bindings: ["uniform", "rw", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, levels: f32, flags: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read_write> maxBits: array<u32>;
@group(0) @binding(2) var<storage, read_write> scales: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let t = id.x;
  if (t >= g.tables) { return; }
  let m = bitcast<f32>(maxBits[t]);
  if ((g.flags & 1u) != 0u) {
    scales[t] = max(tanh(min(m, 10.0)), 1e-8);
  } else {
    scales[t] = max(m, 1e-8) / g.levels;
  }
  maxBits[t] = 0u;
}
`,
};
