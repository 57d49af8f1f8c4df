/**
 * How the engine runs one matrix product: which tile shape of the GEMM kernel, how many K splits,
 * and the workgroup counts of its dispatches. Chosen per shape at record time, so that a product
 * fills the GPU (an H100/H200 has 132 SMs; a few workgroups would leave most idle).
 *
 * @module
 */
import { gemmTileByName } from "./gemm_candidates.ts";
import { GEMM_TUNED, gemmTunedKey, type TunedGemm } from "./gemm_tuned.ts";
import {
  gemmKernel,
  type GemmTile,
  type GemmTileName,
  gemmTileWorkgroupBytes,
  type GemmVec4,
  gemmWorkgroup,
} from "./kernels/gemm.ts";
import { GEMM_NAIVE16 } from "./kernels/gemm_naive.ts";
import { gemmKMajorKernel, gemmRunsKMajor } from "./kernels/gemm_kmajor.ts";
import { BIAS_GRAD, BIAS_GRAD_ROWS, BIAS_GRAD_WORKGROUP } from "./kernels/bias_grad.ts";
import { splitReduceGrid } from "./kernels/gemm_split_reduce.ts";
import type { KernelSource } from "./pipelines.ts";

/**
 * A GEMM kernel: a register-tiled shape (an engine shape such as "128x64", or any
 * `BMxBN_TMxTN_kBK` name, see gemm_candidates.ts), or the one-output-per-invocation 16 x 16 kernel.
 */
export type GemmKernelName = string;

/**
 * A product's kernel and K splits (1: no split, no reduction pass; naive16 never splits), and
 * whether to load operands as vec4s where their layout allows (same results as scalar loads).
 */
export interface GemmPlan {
  tile: GemmKernelName;
  splits: number;
  vec4?: boolean;
  /** Keep the register-tiled kernel's k loop rolled (the kernel before; for comparisons). */
  loop?: boolean;
}

/** Knobs of {@linkcode planGemm}. */
export interface GemmPlanOptions {
  /** Workgroups wanted in flight (default 256: about two per SM of a 132-SM GPU). */
  target?: number;
  /** Most K splits (default 32). */
  maxSplits?: number;
  /** Least k per split (default 128): below it, the reduction pass costs more than it gains. */
  minSplitK?: number;
  /**
   * An unsplit product with fewer 32 x 32 tiles than this (default 128) runs on the naive16
   * kernel, whose four times more workgroups win there (H200: 1.3-2x at batch 128).
   */
  naiveBelow?: number;
  /** The operands' layout ({@linkcode gemmLoadOrder}): with it, a tuned plan is looked up. */
  layout?: { aKFast: boolean; bKFast: boolean };
  /** Tuned plans by `gemmTunedKey` (default: `GEMM_TUNED`). */
  tuned?: Readonly<Record<string, TunedGemm>>;
  /**
   * The device's workgroup memory in bytes: a tuned plan whose tile needs more (a tile tuned on
   * a GPU with 48 KiB, run on one with 16) gives way to the rule's plan.
   */
  maxWorkgroupBytes?: number;
}

/** Tile shapes from the largest down. */
const ORDER: readonly GemmTileName[] = ["128x128", "128x64", "64x64", "32x32"];

/** The C block of a workgroup of `tile`. */
function blockOf(tile: GemmKernelName): { bm: number; bn: number } {
  if (tile === "bias_grad") return { bm: BIAS_GRAD_WORKGROUP[0], bn: 1 };
  return tile === "naive16" ? { bm: 16, bn: 16 } : gemmTileByName(tile);
}

/**
 * The plan of a bias gradient (an `m x 1` product over `k` batch rows with a column of ones):
 * the column-sum kernel past the small-product kernel's sizes ({@linkcode planGemm} still plans
 * the batches where that kernel wins), with a K split per `BIAS_GRAD_ROWS` rows.
 */
export function planBiasGrad(m: number, k: number): GemmPlan {
  const plan = planGemm(m, 1, k);
  return plan.tile === "naive16"
    ? plan
    : { tile: "bias_grad", splits: Math.max(1, Math.ceil(k / BIAS_GRAD_ROWS)) };
}

/**
 * Whether a split weight gradient of `m` outputs over `k` batch rows sums its bias gradient in its
 * split-K reduction's dispatch: where the bias gradient's own plan is the unsplit column-sum
 * kernel, whose order (and so bits) the folded sums keep.
 */
export function biasGradInReduce(m: number, k: number): boolean {
  const plan = planBiasGrad(m, k);
  return plan.tile === "bias_grad" && plan.splits === 1;
}

/**
 * The engine's plan of a product, as it binds it: a bias gradient (`columnSum`) by
 * {@linkcode planBiasGrad}, else {@linkcode planGemm} with the product's tuned entry where the
 * device's workgroup memory fits it. The benches time this plan.
 */
export function enginePlan(
  m: number,
  n: number,
  k: number,
  options: {
    layout: { aKFast: boolean; bKFast: boolean };
    maxWorkgroupBytes: number;
    columnSum?: boolean;
  },
): GemmPlan {
  const { layout, maxWorkgroupBytes } = options;
  return options.columnSum ? planBiasGrad(m, k) : planGemm(m, n, k, { layout, maxWorkgroupBytes });
}

/** Workgroups of one split of an `m x n` product with `tile`. */
export function gemmTiles(tile: GemmKernelName, m: number, n: number): number {
  const t = blockOf(tile);
  return Math.ceil(m / t.bm) * Math.ceil(n / t.bn);
}

/**
 * The plan of an `m x n` product over `k`: its tuned plan when `options.layout` is given and the
 * tuned table has one for the shape; else by rule, the largest tile whose workgroups (times the K
 * splits that `k` allows) reach the target; failing that, the smallest tile with as many splits as
 * allowed. The rule's splits never decrease as `k` grows (so a buffer sized for the largest `k`
 * holds every partial; see {@linkcode gemmMostSplits} for tuned plans).
 */
export function planGemm(m: number, n: number, k: number, options: GemmPlanOptions = {}): GemmPlan {
  if (options.layout) {
    const { aKFast, bKFast } = options.layout;
    const tuned = (options.tuned ?? GEMM_TUNED)[gemmTunedKey(m, n, k, aKFast, bKFast)];
    const fits = (tile: string) =>
      options.maxWorkgroupBytes === undefined || tile === "naive16" ||
      gemmTileWorkgroupBytes(gemmTileByName(tile)) <= options.maxWorkgroupBytes;
    if (tuned && fits(tuned.tile)) {
      return {
        tile: tuned.tile,
        splits: tuned.splits,
        ...(tuned.vec4 ? { vec4: true } : {}),
        ...(tuned.loop ? { loop: true } : {}),
      };
    }
  }
  const target = options.target ?? 256;
  const maxSplits = options.maxSplits ?? 64;
  const minSplitK = options.minSplitK ?? 128;
  const naiveBelow = options.naiveBelow ?? 128;
  // Short K (a layer's width) never splits: the reduction pass would cost more than it saves.
  const allowed = k < 1024 ? 1 : Math.max(1, Math.min(maxSplits, Math.floor(k / minSplitK)));
  let plan: GemmPlan | null = null;
  for (const tile of ORDER) {
    const count = gemmTiles(tile, m, n);
    const splits = Math.min(allowed, Math.ceil(target / count));
    if (count * splits >= target) {
      plan = { tile, splits };
      break;
    }
  }
  const tile = ORDER[ORDER.length - 1];
  plan ??= { tile, splits: Math.min(allowed, Math.ceil(target / gemmTiles(tile, m, n))) };
  if (plan.splits === 1 && gemmTiles(tile, m, n) < naiveBelow) {
    return { tile: "naive16", splits: 1 };
  }
  return plan;
}

/**
 * The most K splits any plan of an `m x n` product over `k` (the batch rows at most) may have:
 * the rule's at `k`, and every tuned plan of the same `m x n` over `k` or fewer, in any layout.
 * What a split-K scratch buffer must hold room for.
 */
export function gemmMostSplits(
  m: number,
  n: number,
  k: number,
  tuned: Readonly<Record<string, TunedGemm>> = GEMM_TUNED,
): number {
  let most = planGemm(m, n, k).splits;
  for (const [key, plan] of Object.entries(tuned)) {
    const [tm, tn, tk] = key.split("/")[0].split("x").map(Number);
    if (tm === m && tn === n && tk <= k) most = Math.max(most, plan.splits);
  }
  return most;
}

/**
 * The kernel source of `plan`, its global loads laid out per {@linkcode gemmLoadOrder}, vec4
 * loads for the operands `vec4` names (the caller checks their alignment); a k-major tile runs
 * `gemm_kmajor.ts` where its layout and loads allow.
 */
export function gemmPlanKernel(
  plan: GemmPlan,
  aKFast: boolean,
  bKFast: boolean,
  vec4?: GemmVec4,
): KernelSource {
  if (plan.tile === "bias_grad") return BIAS_GRAD;
  if (plan.tile === "naive16") return GEMM_NAIVE16;
  const tile = gemmTileByName(plan.tile);
  return gemmRunsKMajor(tile, aKFast, vec4)
    ? gemmKMajorKernel(tile, aKFast, bKFast, vec4!)
    : gemmKernel(tile, aKFast, bKFast, vec4, !plan.loop);
}

/** The register tile of `plan`, or null for the naive16 and bias_grad kernels. */
export function gemmPlanTile(plan: GemmPlan): GemmTile | null {
  return plan.tile === "naive16" || plan.tile === "bias_grad" ? null : gemmTileByName(plan.tile);
}

/** Workgroup counts (x, y, z) of the GEMM dispatch of an `m x n` product under `plan`. */
export function gemmDispatch(plan: GemmPlan, m: number, n: number): [number, number, number] {
  const t = blockOf(plan.tile);
  return [Math.ceil(n / t.bn), Math.ceil(m / t.bm), plan.splits];
}

/**
 * Workgroup counts (x, y) of the split-K reduction of an `m x n` product (with `biasGrad`, with
 * the bias gradient's column sums folded in: {@linkcode biasGradInReduce}).
 */
export function gemmReduceDispatch(m: number, n: number, biasGrad = false): [number, number] {
  return splitReduceGrid(m, n, biasGrad);
}

/**
 * The operand layouts to compile for, from the strides: A is loaded along k when its k stride is
 * 1 (or its m stride is not), B along k when its k stride is 1 (or its n stride is not). An absent
 * stride is 0.
 */
export function gemmLoadOrder(
  s: { aRow?: number; aCol?: number; bRow?: number; bCol?: number },
): { aKFast: boolean; bKFast: boolean } {
  return {
    aKFast: s.aCol === 1 || s.aRow !== 1,
    bKFast: s.bRow === 1 || s.bCol !== 1,
  };
}

/** Invocations per workgroup of a tile (for reports). */
export function gemmThreads(tile: GemmKernelName): number {
  if (tile === "naive16" || tile === "bias_grad") return 256;
  const [x, y] = gemmWorkgroup(gemmTileByName(tile));
  return x * y;
}
