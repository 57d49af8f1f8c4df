/**
 * Data-parallel gradient compression, first step: each gradient tensor's largest |g| (NaN
 * skipped, as `maxAbsOf` in `comm/compression.ts` skips it) as float bits in `maxBits[scale]`,
 * after adding the error-compensation residual in place (`g = fround(g + e)`) when asked. The
 * bits of a non-negative float order as the float does, so a `u32` atomic max reduces them.
 * `maxBits` must be zeroed first. Dispatch: x = blocks of 256 × 4 elements (grid-stride),
 * y = tensor.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { EXACT_F32_WGSL } from "./exact_f32.ts";

/** Flag: add the residual first (error compensation). */
export const GRAD_MAX_ABS_COMPENSATE = 1;

/** The per-tensor largest |g| of a packed gradient. */
export const GRAD_MAX_ABS: KernelSource = {
  name: "grad_max_abs",
  bindings: ["uniform", "read", "rw", "read", "rw"],
  code: /* wgsl */ `
${EXACT_F32_WGSL}
struct G { tensors: u32, flags: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
// Per tensor: (offset in grad, offset in the compact message, length, scale index).
@group(0) @binding(1) var<storage, read> tensors: array<vec4u>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> maxBits: array<atomic<u32>>;

var<workgroup> best: atomic<u32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u,
        @builtin(num_workgroups) nw: vec3u) {
  if (l.x == 0u) { atomicStore(&best, 0u); }
  workgroupBarrier();
  let t = tensors[wg.y];
  var m = 0u;
  for (var i = wg.x * 256u + l.x; i < t.z; i += nw.x * 256u) {
    var v = grad[t.x + i];
    if ((g.flags & 1u) != 0u) {
      v = addRn(v, residual[t.x + i]);
      grad[t.x + i] = v;
    }
    let b = bitcast<u32>(v) & 0x7fffffffu;
    if (b <= 0x7f800000u) { m = max(m, b); }
  }
  atomicMax(&best, m);
  workgroupBarrier();
  if (l.x == 0u) { atomicMax(&maxBits[t.w], atomicLoad(&best)); }
}
`,
};
