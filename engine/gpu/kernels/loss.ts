/**
 * Sigmoid and mean binary cross-entropy of a batch (log clamped at -100, as PyTorch's BCELoss),
 * the logits' gradient (p - y) / B, and the probabilities, in two dispatches: {@linkcode LOSS}
 * over `ceil(rows / LOSS_ROWS_PER_WORKGROUP)` workgroups, each reducing its rows' losses in
 * workgroup memory in a fixed order to one partial sum; then {@linkcode LOSS_SUM}, one invocation
 * adding the partials in workgroup order into the iteration's loss slot. The summation order
 * depends only on the batch's rows: the loss is deterministic. (One workgroup over the whole
 * batch left all but one SM idle at large batches.)
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Invocations per workgroup of {@linkcode LOSS}. */
export const LOSS_WORKGROUP = 256;
/** Rows per workgroup of {@linkcode LOSS} (4 per invocation). */
export const LOSS_ROWS_PER_WORKGROUP = 4 * LOSS_WORKGROUP;

/** Workgroups of the {@linkcode LOSS} dispatch (and partial sums) of a batch of `rows`. */
export function lossWorkgroups(rows: number): number {
  return Math.max(1, Math.ceil(rows / LOSS_ROWS_PER_WORKGROUP));
}

/** Loss terms, gradient and probabilities of a batch; bindings: z, labels, dz, probs, partials. */
export const LOSS: KernelSource = {
  name: "loss",
  bindings: ["read", "read", "rw", "rw", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> dz: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

var<workgroup> part: array<f32, ${LOSS_WORKGROUP}>;

@compute @workgroup_size(${LOSS_WORKGROUP})
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let rows = it.rows;
  let first = w.x * ${LOSS_ROWS_PER_WORKGROUP}u;
  let last = min(rows, first + ${LOSS_ROWS_PER_WORKGROUP}u);
  var sum = 0.0;
  for (var r = first + l.x; r < last; r += ${LOSS_WORKGROUP}u) {
    let p = 1.0 / (1.0 + exp(-z[r]));
    let y = labels[it.s0 + r];
    sum -= y * max(log(p), -100.0) + (1.0 - y) * max(log(1.0 - p), -100.0);
    if ((it.mode & 1u) != 0u) { dz[r] = (p - y) / f32(rows); }
    if ((it.mode & 2u) != 0u) { probs[it.out + r] = p; }
  }
  part[l.x] = sum;
  workgroupBarrier();
  for (var h = ${LOSS_WORKGROUP / 2}u; h > 0u; h >>= 1u) {
    if (l.x < h) { part[l.x] += part[l.x + h]; }
    workgroupBarrier();
  }
  if (l.x == 0u) { partials[w.x] = part[0]; }
}
`,
};

/** The batch's mean loss from the partial sums; bindings: partials, losses. One workgroup. */
export const LOSS_SUM: KernelSource = {
  name: "loss_sum",
  bindings: ["read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> losses: array<f32>;

@compute @workgroup_size(1)
fn main() {
  let rows = it.rows;
  let count = (rows + ${LOSS_ROWS_PER_WORKGROUP - 1}u) / ${LOSS_ROWS_PER_WORKGROUP}u;
  var sum = 0.0;
  for (var i = 0u; i < count; i++) { sum += partials[i]; }
  losses[it.slot] = sum / f32(rows);
}
`,
};
