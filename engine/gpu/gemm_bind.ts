/**
 * Binding matrix products: {@linkcode bindGemm}, the one binding of a planned GEMM that the engine
 * and the kernel harness share (so kernel tests exercise the engine's own binding), and the
 * engine's products ({@linkcode GemmOp}), planned and bound once per batch size.
 *
 * @module
 */
import type { GemmBinder, KernelBinder } from "./binder.ts";
import {
  biasGradInReduce,
  enginePlan,
  gemmDispatch,
  gemmLoadOrder,
  type GemmPlan,
  gemmPlanKernel,
  gemmPlanTile,
  gemmReduceDispatch,
} from "./gemm_plan.ts";
import {
  GEMM_A_AT_S0,
  GEMM_B_AT_S0,
  GEMM_BIAS_GRAD,
  GEMM_FIELDS,
  GEMM_K_ROWS,
  GEMM_M_ROWS,
  gemmTileProblem,
  type GemmVec4,
} from "./kernels/gemm.ts";
import { GEMM_SPLIT_REDUCE, GEMM_SPLIT_REDUCE_BIAS_GRAD } from "./kernels/gemm_split_reduce.ts";
import type { Binding, BoundKernel } from "./pipelines.ts";

/** GEMM uniform fields by name (absent: 0). */
export type GemmFields = Partial<Record<typeof GEMM_FIELDS[number], number>>;

/** The uniform words of `fields`, in the kernel's order. */
function gemmWords(fields: GemmFields): number[] {
  return GEMM_FIELDS.map((name) => fields[name] ?? 0);
}

/**
 * The operands that `plan` loads as vec4s: with `plan.vec4`, each operand whose layout allows it
 * (contiguous along the dimension it is loaded along, its base and other stride, and its row
 * stride when it starts at the batch's first sample, multiples of 4) and whose tile loads split
 * evenly into vec4s. Either way each output sums the same products in the same order.
 */
export function gemmVec4(
  plan: GemmPlan,
  fields: GemmFields,
  aKFast: boolean,
  bKFast: boolean,
): GemmVec4 {
  const tile = gemmPlanTile(plan);
  if (!plan.vec4 || !tile) return { a: false, b: false };
  const f = (name: typeof GEMM_FIELDS[number]) => fields[name] ?? 0;
  const flags = f("flags");
  const aligned = (base: number, along: number, other: number, s0Row: number, atS0: boolean) =>
    along === 1 && base % 4 === 0 && other % 4 === 0 && (!atS0 || s0Row % 4 === 0);
  const a = aKFast
    ? aligned(f("aBase"), f("aCol"), f("aRow"), f("aRow"), (flags & GEMM_A_AT_S0) !== 0)
    : aligned(f("aBase"), f("aRow"), f("aCol"), f("aRow"), (flags & GEMM_A_AT_S0) !== 0);
  const b = bKFast
    ? aligned(f("bBase"), f("bRow"), f("bCol"), f("bRow"), (flags & GEMM_B_AT_S0) !== 0)
    : aligned(f("bBase"), f("bCol"), f("bRow"), f("bRow"), (flags & GEMM_B_AT_S0) !== 0);
  return {
    a: a && !gemmTileProblem(tile, { a: true, b: false }),
    b: b && !gemmTileProblem(tile, { a: false, b: true }),
  };
}

/**
 * Whether `plan` stores C as vec4s: with `plan.vec4`, on a register-tiled kernel, where N, C's
 * base and row stride are multiples of 4 (then so are the split partials' rows and stride).
 */
export function gemmStoresVec4(plan: GemmPlan, fields: GemmFields): boolean {
  if (!plan.vec4 || !gemmPlanTile(plan)) return false;
  return [fields.n ?? 0, fields.cBase ?? 0, fields.cRow ?? 0].every((x) => x % 4 === 0);
}

/**
 * Binds the kernels of `plan` over `buffers` (A, B, C, bias, mask): the GEMM alone, or with K
 * splits the GEMM writing partial sums into `scratch` (`splitStride` floats apart, rows n floats
 * apart) and the reduction summing them into C. With `biasGrad` (a split weight gradient whose A is
 * dY), the reduction also writes A's column sums to `c[biasBase + row]`.
 */
export function bindGemm(
  binder: GemmBinder,
  plan: GemmPlan,
  fields: GemmFields,
  buffers: Binding[],
  scratch?: GPUBuffer,
  splitStride = 0,
  biasGrad = false,
): BoundKernel[] {
  const [a, b, c, bias, mask] = buffers;
  const { aKFast, bKFast } = gemmLoadOrder(fields);
  const aligned = gemmVec4(plan, fields, aKFast, bKFast);
  // A binding of a size not a multiple of 16 bytes hides its last floats from vec4 reads.
  const vec4 = { a: aligned.a && a.size % 16 === 0, b: aligned.b && b.size % 16 === 0 };
  const stores = gemmStoresVec4(plan, fields) && c.size % 16 === 0 &&
    (plan.splits === 1 || (scratch !== undefined && scratch.size % 16 === 0));
  const source = gemmPlanKernel(plan, aKFast, bKFast, { ...vec4, c: stores });
  if (plan.splits === 1) {
    return [binder.bind(source, [binder.uniform("gemm", gemmWords(fields)), a, b, c, bias, mask])];
  }
  if (!scratch) throw new Error("Expected a scratch buffer for a split-K GEMM but found none");
  const split = { ...fields, splits: plan.splits, splitStride };
  const reduceUniform = binder.uniform("gemm", gemmWords(split));
  // The partials' rows are n floats apart: C's layout for the main pass.
  const partUniform = binder.uniform(
    "gemm",
    gemmWords({ ...split, cRow: fields.n ?? 0, cBase: 0 }),
  );
  return [
    binder.bind(source, [partUniform, a, b, scratch, bias, mask]),
    biasGrad
      ? binder.bind(GEMM_SPLIT_REDUCE_BIAS_GRAD, [reduceUniform, scratch, c, bias, mask, a])
      : binder.bind(GEMM_SPLIT_REDUCE, [reduceUniform, scratch, c, bias, mask]),
  ];
}

/** A GEMM planned for one batch size: its bound kernels (none for an empty product) and grids. */
export interface PlannedGemm {
  kernels: BoundKernel[];
  main: [number, number, number];
  reduce: [number, number];
  /** Whether the kernel writes the bias gradient too ({@linkcode GemmOp.biasGrad}). */
  withBiasGrad: boolean;
}

/**
 * A weight gradient's bias gradient, written by the small-product kernel beside it (flag
 * `GEMM_BIAS_GRAD`): C's binding widened to cover both, and where each starts in it (floats).
 */
export interface FusedBiasGrad {
  c: Binding;
  cBase: number;
  biasBase: number;
}

/**
 * One matrix product of an iteration: its GEMM uniform fields and buffers (A, B, C, bias, mask),
 * bound per plan (tile shape, K splits) when first recorded.
 */
export interface GemmOp {
  fields: GemmFields;
  buffers: Binding[];
  /** Bound kernels by plan (`tile/splits/vec4[/loop]`, and the partials' stride when split). */
  bound: Map<string, BoundKernel[]>;
  /** The plan, kernels and workgroup counts per batch rows (planned once per batch size). */
  byRows: Map<number, PlannedGemm>;
  /**
   * A weight gradient's bias gradient, computed in the same dispatch where the plan is the
   * small-product kernel, or in its split-K reduction where the bias product's plan is the
   * unsplit column-sum kernel (one dispatch fewer; the same sums as the bias product's).
   */
  biasGrad?: FusedBiasGrad;
  /** A bias gradient itself (B a column of ones): planned by `planBiasGrad`. */
  columnSum?: boolean;
}

/** A product whose M or K is the batch rows (flag `GEMM_M_ROWS` or `GEMM_K_ROWS`). */
export function gemmOp(
  fields: GemmFields,
  buffers: Binding[],
  options: { biasGrad?: FusedBiasGrad; columnSum?: boolean } = {},
): GemmOp {
  return { fields, buffers, bound: new Map(), byRows: new Map(), ...options };
}

/**
 * The plan of `op` at `rows` batch rows: its kernels (bound on first use, their uniforms listed
 * in `uniforms`) and workgroup counts. K splits are capped by the room in `scratch`.
 */
export function planGemmOp(
  binder: KernelBinder,
  uniforms: GPUBuffer[],
  scratch: GPUBuffer,
  op: GemmOp,
  rows: number,
): PlannedGemm {
  const f = op.fields;
  const m = f.flags! & GEMM_M_ROWS ? rows : f.m!;
  const k = f.flags! & GEMM_K_ROWS ? rows : f.k!;
  const n = f.n!;
  if (m === 0 || n === 0) {
    return { kernels: [], main: [0, 0, 0], reduce: [0, 0], withBiasGrad: false };
  }
  const layout = gemmLoadOrder(f);
  let plan = enginePlan(m, n, k, {
    layout,
    maxWorkgroupBytes: binder.maxWorkgroupBytes,
    columnSum: (f.flags! & GEMM_K_ROWS) !== 0 && op.columnSum,
  });
  // The partials of two K splits lie C's size apart (at this batch size, so that a small
  // batch's split plan is not refused for want of room a larger batch would need).
  const splitStride = m * n;
  const room = Math.floor(scratch.size / 4 / splitStride);
  if (plan.splits > room) plan = { ...plan, splits: Math.max(1, room) };
  const inNaive = plan.tile === "naive16";
  const inReduce = plan.splits > 1 && (f.flags! & GEMM_K_ROWS) !== 0 && biasGradInReduce(m, k);
  const fused = op.biasGrad && (inNaive || inReduce) ? op.biasGrad : null;
  const key = `${plan.tile}/${plan.splits}/${plan.vec4 ? 4 : 1}${plan.loop ? "/loop" : ""}` +
    (plan.splits > 1 ? `/${splitStride}` : "") + (fused ? "/bias" : "");
  let kernels = op.bound.get(key);
  if (!kernels) {
    const [a, b, , bias, mask] = op.buffers;
    // The small-product kernel's flag; the reduction's column sums need only `biasBase`.
    const flags = f.flags! | (inNaive ? GEMM_BIAS_GRAD : 0);
    const fields = fused ? { ...f, flags, cBase: fused.cBase, biasBase: fused.biasBase } : f;
    const buffers = fused ? [a, b, fused.c, bias, mask] : op.buffers;
    kernels = binder.collecting(
      uniforms,
      () =>
        bindGemm(binder, plan, fields, buffers, scratch, splitStride, fused !== null && !inNaive),
    );
    op.bound.set(key, kernels);
  }
  // In the small-product kernel, the bias gradient is C's column n.
  const main = gemmDispatch(plan, m, fused && inNaive ? n + 1 : n);
  const reduce = gemmReduceDispatch(m, n, fused !== null && !inNaive);
  return { kernels, main, reduce, withBiasGrad: fused !== null };
}
