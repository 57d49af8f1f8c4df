/**
 * How the engine runs one matrix product: which tile shape of the GEMM kernel, how many K splits,
 * and the workgroup counts of its dispatches. Chosen per shape at record time, so that a product
 * fills the GPU (an H100/H200 has 132 SMs; a few workgroups would leave most idle).
 *
 * @module
 */
import { GEMM_TILES, type GemmTileName, gemmWorkgroup } from "./kernels/gemm.ts";
import { GEMM_SPLIT_REDUCE_WORKGROUP } from "./kernels/gemm_split_reduce.ts";

/** A product's tile shape and K splits (1: no split, no reduction pass). */
export interface GemmPlan {
  tile: GemmTileName;
  splits: number;
}

/** Knobs of {@linkcode planGemm}. */
export interface GemmPlanOptions {
  /** Workgroups wanted in flight (default 256: about two per SM of a 132-SM GPU). */
  target?: number;
  /** Most K splits (default 32). */
  maxSplits?: number;
  /** Least k per split (default 512): below it, the reduction pass costs more than it gains. */
  minSplitK?: number;
}

/** Tile shapes from the largest down. */
const ORDER: readonly GemmTileName[] = ["128x128", "128x64", "64x64", "32x32"];

/** Workgroups of one split of an `m x n` product with `tile`. */
export function gemmTiles(tile: GemmTileName, m: number, n: number): number {
  const t = GEMM_TILES[tile];
  return Math.ceil(m / t.bm) * Math.ceil(n / t.bn);
}

/**
 * The plan of an `m x n` product over `k`: the largest tile whose workgroups (times the K splits
 * that `k` allows) reach the target; failing that, the smallest tile with as many splits as
 * allowed. The splits never decrease as `k` grows (so a buffer sized for the largest `k` holds
 * every partial).
 */
export function planGemm(m: number, n: number, k: number, options: GemmPlanOptions = {}): GemmPlan {
  const target = options.target ?? 256;
  const maxSplits = options.maxSplits ?? 32;
  const minSplitK = options.minSplitK ?? 512;
  const allowed = Math.max(1, Math.min(maxSplits, Math.floor(k / minSplitK)));
  for (const tile of ORDER) {
    const count = gemmTiles(tile, m, n);
    const splits = Math.min(allowed, Math.ceil(target / count));
    if (count * splits >= target) return { tile, splits };
  }
  const tile = ORDER[ORDER.length - 1];
  return { tile, splits: Math.min(allowed, Math.ceil(target / gemmTiles(tile, m, n))) };
}

/** Workgroup counts (x, y, z) of the GEMM dispatch of an `m x n` product under `plan`. */
export function gemmDispatch(plan: GemmPlan, m: number, n: number): [number, number, number] {
  const t = GEMM_TILES[plan.tile];
  return [Math.ceil(n / t.bn), Math.ceil(m / t.bm), plan.splits];
}

/** Workgroup counts (x, y) of the split-K reduction of an `m x n` product. */
export function gemmReduceDispatch(m: number, n: number): [number, number] {
  const [x, y] = GEMM_SPLIT_REDUCE_WORKGROUP;
  return [Math.ceil(n / x), Math.ceil(m / y)];
}

/**
 * The operand layouts to compile for, from the strides: A is loaded along k when its k stride is
 * 1 (or its m stride is not), B along k when its k stride is 1 (or its n stride is not).
 */
export function gemmLoadOrder(
  s: { aRow: number; aCol: number; bRow: number; bCol: number },
): { aKFast: boolean; bKFast: boolean } {
  return {
    aKFast: s.aCol === 1 || s.aRow !== 1,
    bKFast: s.bRow === 1 || s.bCol !== 1,
  };
}

/** Invocations per workgroup of a tile (for reports). */
export function gemmThreads(tile: GemmTileName): number {
  const [x, y] = gemmWorkgroup(GEMM_TILES[tile]);
  return x * y;
}
