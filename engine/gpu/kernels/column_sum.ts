/**
 * Bias gradient: gb[n] = sum over the batch's rows of dY[r, n], rows in ascending order.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** gb[n] = sum_r dY[r * ld + n] for n < width. */
export const COLUMN_SUM: KernelSource = {
  name: "column_sum",
  bindings: ["uniform", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { width: u32, ld: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> gb: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let n = id.x;
  if (n >= g.width) { return; }
  var acc = 0.0;
  for (var r = 0u; r < it.rows; r++) { acc += dy[r * g.ld + n]; }
  gb[n] = acc;
}
`,
};
