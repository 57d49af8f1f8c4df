/**
 * Data-parallel gradient compression, last step for the MLP: every gradient value quantized with
 * its tensor's shared scale (the mean of the workers' local scales) into the compact INT8/INT16
 * message that is read back, exactly as `quantizeRange` of `comm/compression.ts`; under error
 * compensation the residual `e = fround(x - level * s)` is kept in place. One invocation per
 * 32-bit word of the message (4 INT8 or 2 INT16 levels, little-endian as the host reads them).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { EXACT_F32_WGSL } from "./exact_f32.ts";

/** The MLP's INT8/INT16 message from its packed gradient. */
export const GRAD_QUANTIZE: KernelSource = {
  name: "grad_quantize",
  bindings: ["uniform", "read", "read", "rw", "read", "rw"],
  code: /* wgsl */ `
${EXACT_F32_WGSL}
struct G {
  elements: u32,  // values in the message
  bits: u32,      // 8 or 16
  n: u32,         // levels: 2^(bits-1) - 1
  compensate: u32,
  tensors: u32,
  words: u32,     // 32-bit words of the message
  pad0: u32,
  pad1: u32,
}
@group(0) @binding(0) var<uniform> g: G;
// Per tensor: (offset in grad, offset in the compact message, length, scale index).
@group(0) @binding(1) var<storage, read> tensors: array<vec4u>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> residual: array<f32>;
@group(0) @binding(4) var<storage, read> scales: array<f32>;
@group(0) @binding(5) var<storage, read_write> message: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let word = id.x + id.y * nw.x * 256u;
  if (word >= g.words) { return; }
  let per = 32u / g.bits;
  let mask = (1u << g.bits) - 1u;
  var out = 0u;
  var t = 0u;
  for (var k = 0u; k < per; k++) {
    let j = word * per + k;
    if (j >= g.elements) { break; }
    while (j >= tensors[t].y + tensors[t].z) { t++; }
    let slot = tensors[t];
    let src = slot.x + j - slot.y;
    let s = scales[slot.w];
    let x = grad[src];
    let level = levelOf(x, s, i32(g.n));
    if (g.compensate == 1u) { residual[src] = residualRn(x, level, s); }
    out |= (u32(level) & mask) << (k * g.bits);
  }
  message[word] = out;
}
`,
};
