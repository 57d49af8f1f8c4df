/**
 * Data-parallel gradient compression, second step: each tensor's local scale from its largest
 * |g| (`grad_max_abs.ts`), exactly `scaleOf` of `engine/quant.ts`:
 * `fround(max(maxAbs, 1e-8) / n)`; with counts, a table this worker did not touch gets 0 (it
 * adds nothing to the mean of the scales). One invocation per scale.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { EXACT_F32_WGSL } from "./exact_f32.ts";

/** Scales `[first, first + count)` from their largest |g|. */
export const GRAD_SCALES: KernelSource = {
  name: "grad_scales",
  bindings: ["uniform", "read", "read", "rw"],
  code: /* wgsl */ `
${EXACT_F32_WGSL}
struct G {
  first: u32,
  count: u32,
  n: u32,          // levels: 2^(bits-1) - 1
  useCounts: u32,  // 1: scale 0 where counts[i] == 0 (embedding tables)
  threshold: u32,  // bits of the smallest float32 above 1e-8
  tiny: u32,       // bits of fround(1e-8 / n)
  pad0: u32,
  pad1: u32,
}
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> maxBits: array<u32>;
@group(0) @binding(2) var<storage, read> counts: array<i32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let i = id.x;
  if (i >= g.count) { return; }
  let m = maxBits[g.first + i];
  var s = bitcast<f32>(g.tiny);
  if (m >= g.threshold) { s = divRn(bitcast<f32>(m), f32(g.n)); }
  if (g.useCounts == 1u && counts[i] == 0) { s = 0.0; }
  scales[g.first + i] = s;
}
`,
};
