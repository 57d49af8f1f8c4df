/**
 * LSQ's update of one MLP matrix's learned row steps: s_r = max(s_r - lr g ds_r, 1e-8) with the
 * gradient scale g = 1 / sqrt(Qp numel) of the whole matrix (`root` = sqrt(Qp numel)).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** One invocation per output row of one layer. */
export const LSQ_ROW_STEP: KernelSource = {
  name: "lsq_row_step",
  bindings: ["uniform", "rw", "read"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { outputs: u32, sBase: u32, root: f32, pad0: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read_write> steps: array<f32>;
@group(0) @binding(2) var<storage, read> stepGrads: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let row = id.x;
  if (row >= g.outputs) { return; }
  let at = g.sBase + row;
  steps[at] = max(steps[at] - (it.lr / g.root) * stepGrads[at], 1e-8);
}
`,
};
