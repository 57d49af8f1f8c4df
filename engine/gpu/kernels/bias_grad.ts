/**
 * The bias gradient of a layer at batch sizes past the small-product kernel's: dB[j] = sum over
 * the batch of dY[b, j], one dispatch where the register-tiled GEMM (a product with one column of
 * ones) needed a K-split pass and a reduction, its 32-column tiles holding one real column. A
 * workgroup owns 16 outputs; its 16 row groups each sum a contiguous sixteenth of the rows, b
 * ascending, 16 loads in flight at a time, and the 16 sums are added in row-group order: a fixed
 * order, so the result is deterministic. With `splits` > 1, workgroup z does the z-th part of the
 * rows and writes its partial sum where the split-K reduction (`gemm_split_reduce.ts`) adds them.
 * The GEMM's uniform block and bindings (A = dYᵀ: element (j, b) at aBase + j aRow + b aCol; B,
 * the column of ones, is not read), so it binds wherever a GEMM plan does.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { GEMM_SCALAR_BINDINGS_WGSL, GEMM_UNIFORM_WGSL } from "./gemm.ts";
import { ITER_WGSL } from "./iter.ts";

/** Outputs (x) and row groups (y) of a workgroup. */
export const BIAS_GRAD_WORKGROUP: [number, number] = [16, 16];

/** Most batch rows one workgroup sums (more take K splits). */
export const BIAS_GRAD_ROWS = 2048;

/** Loads each lane keeps in flight. */
const UNROLL = 16;

const loads = Array.from({ length: UNROLL }, (_, i) => i);

/** The column-sum kernel: bindings and uniform block as the GEMM's. */
export const BIAS_GRAD: KernelSource = {
  name: "bias_grad",
  bindings: ["uniform", "read", "read", "rw", "read", "read"],
  code: /* wgsl */ `
${ITER_WGSL}
${GEMM_UNIFORM_WGSL}
${GEMM_SCALAR_BINDINGS_WGSL}
var<workgroup> parts: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let M = select(g.m, it.rows, (g.flags & 1u) != 0u);
  let K = select(g.k, it.rows, (g.flags & 2u) != 0u);
  let aBase = g.aBase + select(0u, it.s0 * g.aRow, (g.flags & 4u) != 0u);
  let row = w.y * 16u + l.x;
  let splits = max(g.splits, 1u);
  let chunk = (K + splits - 1u) / splits;
  let kBegin = min(K, w.z * chunk);
  let kEnd = min(K, kBegin + chunk);
  let sub = (kEnd - kBegin + 15u) / 16u;
  let k1 = min(kEnd, kBegin + l.y * sub);
  let k2 = min(kEnd, k1 + sub);
  var acc = 0.0;
  if (row < M) {
    let at = aBase + row * g.aRow;
    var k = k1;
    for (; k + ${UNROLL}u <= k2; k += ${UNROLL}u) {
      ${loads.map((i) => `let v${i} = a[at + (k + ${i}u) * g.aCol];`).join("\n      ")}
      ${loads.map((i) => `acc += v${i};`).join("\n      ")}
    }
    for (; k < k2; k++) { acc += a[at + k * g.aCol]; }
  }
  parts[l.y][l.x] = acc;
  workgroupBarrier();
  if (l.y != 0u || row >= M) { return; }
  var sum = parts[0][l.x];
  for (var q = 1u; q < 16u; q++) { sum += parts[q][l.x]; }
  c[g.cBase + select(0u, w.z * g.splitStride, g.splits > 1u) + row * g.cRow] = sum;
}
`,
};
