/**
 * Second pass of a split-K matrix product: C[m, n] = sum over z of the partial sums
 * `partials[z * splitStride + m * n_ + n]` (added in z order, so the result is deterministic), then
 * the product's epilogue (bias, ReLU, ReLU-derivative mask). Reads the same uniform block as
 * the GEMM kernel: `cRow`, `cBase` and the flags describe the final C, `splits` and
 * `splitStride` the partials, whose rows are `n` floats apart. Each invocation loads its partials
 * up to {@linkcode SPLIT_REDUCE_LOADS} at a time before adding them, so that a sum of 4 to 16
 * splits waits for memory once rather than once per split (the adds keep their z order).
 *
 * With the bias gradient folded in (a weight gradient dW = dYᵀ X whose A is dY, bound at binding
 * 5), workgroups past the reduction's sum dY's columns as the unsplit column-sum kernel does
 * (`bias_grad.ts`, the same order and bits) into `c[biasBase + row]`: the bias gradient rides in
 * the dispatch the weight gradient needs anyway, instead of a dispatch of its own.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { COLUMN_SUM_WGSL } from "./bias_grad.ts";
import { GEMM_UNIFORM_WGSL } from "./gemm.ts";
import { ITER_WGSL } from "./iter.ts";
import { gridOf } from "./grid.ts";

/** Partials an invocation loads before adding them. */
export const SPLIT_REDUCE_LOADS = 16;

/** Invocations of a workgroup: 64 columns of 4 rows (the reduction), 16 x 16 (column sums). */
const WORKGROUP = 256;

const loads = Array.from({ length: SPLIT_REDUCE_LOADS }, (_, i) => i);

/**
 * The reduction; with `biasGrad`, the bias gradient's column sums too. Bindings: uniform,
 * partials, C, bias, mask (and A = dY with `biasGrad`).
 */
function splitReduceKernel(biasGrad: boolean): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "rw", "read", "read"];
  if (biasGrad) bindings.push("read");
  return {
    name: biasGrad ? "gemm_split_reduce_bias_grad" : "gemm_split_reduce",
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
${GEMM_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
${biasGrad ? `@group(0) @binding(5) var<storage, read> a: array<f32>;\n${COLUMN_SUM_WGSL}` : ""}

@compute @workgroup_size(${WORKGROUP})
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) groups: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  let M = select(g.m, it.rows, (g.flags & 1u) != 0u);
  let N = g.n;
  let across = (N + 63u) / 64u;
  let w = wg.y * groups.x + wg.x;
  let reduceGroups = across * ((M + 3u) / 4u);
  ${
      biasGrad
        ? `if (w >= reduceGroups) {
    let row = (w - reduceGroups) * 16u + li % 16u;
    let sum = columnSum(li % 16u, li / 16u, row, 0u, 1u);
    if (li < 16u && row < M) { c[g.biasBase + row] = sum; }
    return;
  }`
        : ""
    }
  let col = (w % across) * 64u + li % 64u;
  let row = (w / across) * 4u + li / 64u;
  if (row >= M || col >= N) { return; }
  let at = row * N + col;
  let stride = g.splitStride;
  var acc = 0.0;
  for (var z = 0u; z < g.splits; z += ${SPLIT_REDUCE_LOADS}u) {
    ${loads.map((i) => `var p${i} = 0.0;`).join("\n    ")}
    ${
      loads.map((i) => `if (z + ${i}u < g.splits) { p${i} = partials[(z + ${i}u) * stride + at]; }`)
        .join("\n    ")
    }
    ${loads.map((i) => `if (z + ${i}u < g.splits) { acc += p${i}; }`).join("\n    ")}
  }
  if ((g.flags & 8u) != 0u) { acc += bias[col]; }
  if ((g.flags & 16u) != 0u) { acc = max(acc, 0.0); }
  if ((g.flags & 32u) != 0u && !(mask[g.maskBase + row * g.maskRow + col] > 0.0)) { acc = 0.0; }
  c[g.cBase + row * g.cRow + col] = acc;
}
`,
  };
}

/** The split-K reduction. Bindings: uniform, partials, C, bias, mask. */
export const GEMM_SPLIT_REDUCE: KernelSource = splitReduceKernel(false);

/**
 * The split-K reduction of a weight gradient with its bias gradient's column sums (unsplit) into
 * `c[biasBase + row]`. Bindings: uniform, partials, C (weights and biases), bias, mask, A (dY).
 */
export const GEMM_SPLIT_REDUCE_BIAS_GRAD: KernelSource = splitReduceKernel(true);

/**
 * Workgroups (x, y) of the reduction of an `m x n` product (with `biasGrad`, and its `m` column
 * sums): 64 x 4 outputs a workgroup, then 16 column sums a workgroup, wrapped into y past 65,535.
 */
export function splitReduceGrid(m: number, n: number, biasGrad = false): [number, number] {
  const groups = Math.ceil(n / 64) * Math.ceil(m / 4) + (biasGrad ? Math.ceil(m / 16) : 0);
  return gridOf(groups);
}
