/**
 * Measured best plans for the engine's large products, pasted from the `GEMM_TUNED` lines that
 * `cli/bench_gpu_kernels.ts --sweep` prints (see engine/gpu/README.md, "GEMM tuning"). Keyed by
 * {@linkcode gemmTunedKey}: the product's shape and operand layout. `planGemm` takes an entry
 * over its own rule; a product without one is planned by the rule. Every entry was checked on the
 * GPU against the rule's plan: identical output where it keeps the summation order (always when
 * the rule does not split K), else within float tolerance.
 *
 * @module
 */

/** A tuned plan: tile name (`BMxBN_TMxTN_kBK` or an engine shape), K splits, vec4 loads. */
export interface TunedGemm {
  tile: string;
  splits: number;
  vec4: boolean;
}

/** The key of an `m x n` product over `k` with A contiguous in k or m and B in k or n. */
export function gemmTunedKey(
  m: number,
  n: number,
  k: number,
  aKFast: boolean,
  bKFast: boolean,
): string {
  return `${m}x${n}x${k}/${aKFast ? "ak" : "am"}${bKFast ? "bk" : "bn"}`;
}

/** Tuned plans by {@linkcode gemmTunedKey} (empty until a sweep's lines are pasted in). */
export const GEMM_TUNED: Readonly<Record<string, TunedGemm>> = {
  // GEMM_TUNED entries: paste here.
};
