/**
 * Scale finding, step 2: each table's scale s = max(maxAbs, 1e-8) / n from the bits that
 * `table_max_abs` left, which it clears for the next search.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** One invocation per table. */
export const TABLE_SCALE: KernelSource = {
  name: "table_scale",
  bindings: ["uniform", "rw", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, levels: f32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read_write> maxBits: array<u32>;
@group(0) @binding(2) var<storage, read_write> scales: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let t = id.x;
  if (t >= g.tables) { return; }
  scales[t] = max(bitcast<f32>(maxBits[t]), 1e-8) / g.levels;
  maxBits[t] = 0u;
}
`,
};
