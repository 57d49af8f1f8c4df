/**
 * The bias gradient of a layer at batch sizes past the small-product kernel's: dB[j] = sum over
 * the batch of dY[b, j], one dispatch where the register-tiled GEMM (a product with one column of
 * ones) needed a K-split pass and a reduction, its 32-column tiles holding one real column. A
 * workgroup owns 16 outputs; its 16 row groups each sum a contiguous sixteenth of the rows, b
 * ascending, 16 loads in flight at a time, and the 16 sums are added in row-group order: a fixed
 * order, so the result is deterministic. With `splits` > 1, workgroup z does the z-th part of the
 * rows and writes its partial sum where the split-K reduction (`gemm_split_reduce.ts`) adds them.
 * Each lane has 64 loads in flight (16 before: at batch 2048, 128 rows a lane took 8 rounds of
 * memory latency, now 2; the adds keep their order, so the sums keep their bits).
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

/** Loads each lane keeps in flight (fewer at the end of its rows): 128 rows in two rounds. */
const UNROLL = 64;

const loads = Array.from({ length: UNROLL }, (_, i) => i);

/**
 * WGSL piece: `columnSum(lx, ly, row, z, splits)`, the sum of A's row `row` (a column of dY)
 * over split `z` of `splits` by the 16 x 16 lanes (lx, ly) of a workgroup, as this kernel sums it;
 * every lane calls it (it holds a barrier) and gets the sum. Needs the GEMM's uniform block, the
 * iteration block and an `a` binding; the split-K reduction folds a weight gradient's bias
 * gradient in with it (`gemm_split_reduce.ts`).
 */
export const COLUMN_SUM_WGSL = /* wgsl */ `
var<workgroup> parts: array<array<f32, 16>, 16>;

fn columnSum(lx: u32, ly: u32, row: u32, z: u32, splits: u32) -> f32 {
  let M = select(g.m, it.rows, (g.flags & 1u) != 0u);
  let K = select(g.k, it.rows, (g.flags & 2u) != 0u);
  let aBase = g.aBase + select(0u, it.s0 * g.aRow, (g.flags & 4u) != 0u);
  let chunk = (K + splits - 1u) / splits;
  let kBegin = min(K, z * chunk);
  let kEnd = min(K, kBegin + chunk);
  let sub = (kEnd - kBegin + 15u) / 16u;
  let k1 = min(kEnd, kBegin + ly * sub);
  let k2 = min(kEnd, k1 + sub);
  var acc = 0.0;
  if (row < M) {
    let at = aBase + row * g.aRow;
    for (var k = k1; k < k2; k += ${UNROLL}u) {
      ${loads.map((i) => `var v${i} = 0.0;`).join("\n      ")}
      ${
  loads.map((i) => `if (k + ${i}u < k2) { v${i} = a[at + (k + ${i}u) * g.aCol]; }`).join("\n      ")
}
      ${loads.map((i) => `if (k + ${i}u < k2) { acc += v${i}; }`).join("\n      ")}
    }
  }
  parts[ly][lx] = acc;
  workgroupBarrier();
  var sum = parts[0][lx];
  for (var q = 1u; q < 16u; q++) { sum += parts[q][lx]; }
  return sum;
}
`;

/** The column-sum kernel: bindings and uniform block as the GEMM's. */
export const BIAS_GRAD: KernelSource = {
  name: "bias_grad",
  bindings: ["uniform", "read", "read", "rw", "read", "read"],
  code: /* wgsl */ `
${ITER_WGSL}
${GEMM_UNIFORM_WGSL}
${GEMM_SCALAR_BINDINGS_WGSL}
${COLUMN_SUM_WGSL}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let M = select(g.m, it.rows, (g.flags & 1u) != 0u);
  let row = w.y * 16u + l.x;
  let sum = columnSum(l.x, l.y, row, w.z, max(g.splits, 1u));
  if (l.y != 0u || row >= M) { return; }
  c[g.cBase + select(0u, w.z * g.splitStride, g.splits > 1u) + row * g.cRow] = sum;
}
`,
};
