/**
 * Sigmoid and mean binary cross-entropy of a batch (log clamped at -100, as PyTorch's BCELoss),
 * the logits' gradient (p - y) / B, and the probabilities. One workgroup; the loss is reduced in
 * workgroup memory in a fixed order and written to the iteration's loss slot.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Loss, gradient and probabilities of one batch. */
export const LOSS: KernelSource = {
  name: "loss",
  bindings: ["read", "read", "rw", "rw", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> dz: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> losses: array<f32>;

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3u) {
  let rows = it.rows;
  var sum = 0.0;
  for (var r = l.x; r < rows; r += 256u) {
    let p = 1.0 / (1.0 + exp(-z[r]));
    let y = labels[it.s0 + r];
    sum -= y * max(log(p), -100.0) + (1.0 - y) * max(log(1.0 - p), -100.0);
    if ((it.mode & 1u) != 0u) { dz[r] = (p - y) / f32(rows); }
    if ((it.mode & 2u) != 0u) { probs[it.out + r] = p; }
  }
  part[l.x] = sum;
  workgroupBarrier();
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (l.x < h) { part[l.x] += part[l.x + h]; }
    workgroupBarrier();
  }
  if (l.x == 0u) { losses[it.slot] = part[0] / f32(rows); }
}
`,
};
