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

/**
 * A tuned plan: tile name (`BMxBN_TMxTN_kBK` or an engine shape), K splits, vec4 loads, and
 * whether the k loop stays rolled (where that measured faster than written out).
 */
export interface TunedGemm {
  tile: string;
  splits: number;
  vec4: boolean;
  loop?: boolean;
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

/**
 * Tuned plans by {@linkcode gemmTunedKey}: swept on an NVIDIA H200 (Vulkan, Deno 2.9.6,
 * 2026-12-02), each 3 % or more faster there than the rule's plan. The four k-major entries
 * (2026-12-03, a sweep of the k-major tiles alone) each beat the plan they replace by 3 % or more
 * in that sweep; each replaces an unsplit plan, so the outputs are the same bits. Checked end to
 * end: Kaggle FP32 wall ms/it b2048 0.815 -> 0.799, b16384 3.387 -> 3.131 against the table
 * before (same run). Seven entries marked 2026-12-03 come from a sweep of the prefetching tiles
 * beside their plain twins (`--sweep-tiles 64x128_8x8_k16sp,64x128_8x8_k16s,...`), each 3 % or
 * more ahead of the entry it replaced in that sweep; the splits of a weight gradient are the
 * only change of summation order (Terabyte b16384 dW top[0]: 32 -> 16). Three more from a sweep of
 * every candidate at b16384 the same day (marked "full b16384 sweep"; Kaggle dW bottom[2]'s
 * splits 32 -> 64); the other b16384 entries stayed within 3 % of the sweep's best.
 */
export const GEMM_TUNED: Readonly<Record<string, TunedGemm>> = {
  // Batches 2048 and 16384, the register-tiled kernels written out (`--batch-size 2048,16384
  // --skip-update --sweep --sweep-tiles 128x128_8x8_k8s,128x128_8x8_k16s,128x64_8x8_k8s,
  // 64x128_8x8_k16s,128x128_8x16_k8s,128x128_16x8_k8s,256x128_16x8_k8s,128x256_8x16_k8s`, every
  // candidate compiled first and the GPU's clock settled before the timings; vec4 plans store C
  // as vec4s). The Terabyte b16384 entries replace ones swept while compiles slowed the GPU.
  "16384x512x367/akbk": { tile: "128x64_8x8_k8s", splits: 1, vec4: true }, // kaggle b16384 forward top[0] 367->512: 210.6 µs, 1.51x the rule
  "16384x367x512/akbn": { tile: "64x64_8x4_k16s", splits: 1, vec4: true }, // kaggle b16384 dX top[0] 367->512: 225.2 µs, 1.55x the rule (2026-12-03, full b16384 sweep; the entry before 232.1)
  "512x367x16384/ambn": { tile: "128x64_8x8_k16s", splits: 16, vec4: true }, // kaggle b16384 dW top[0] 367->512: 202.6 µs, 1.32x the rule
  "16384x256x512/akbk": { tile: "64x64_8x4_k16s", splits: 1, vec4: true }, // kaggle b16384 forward bottom[1] 512->256: 147.7 µs, 1.45x the rule
  "16384x512x256/akbn": { tile: "64x64_8x4_k16s", splits: 1, vec4: true }, // kaggle b16384 dX bottom[1] 512->256: 145.7 µs, 1.55x the rule (2026-12-03; the entry before 152.4)
  "256x512x16384/ambn": { tile: "64x64_8x4_k16s", splits: 32, vec4: true }, // kaggle b16384 dW bottom[1] 512->256: 135.3 µs, 1.43x the rule (2026-12-03; the entry before 140.2)
  "2048x512x512/akbk": { tile: "64x64_8x4_k32m", splits: 1, vec4: true }, // terabyte b2048 forward top[1] 512->512: 38.0 µs, 1.30x the rule (k-major)
  "2048x512x512/akbn": { tile: "64x64_8x4_k32", splits: 1, vec4: true }, // terabyte b2048 dX top[1] 512->512: 42.2 µs, 1.25x the rule
  "512x512x2048/ambn": { tile: "128x128_8x8_k16sdp", splits: 8, vec4: true }, // terabyte b2048 dW top[1] 512->512: 36.1 µs, 2.25x the rule (2026-12-03; the entry before 37.3)
  "2048x512x415/akbk": { tile: "64x64_8x4_k32", splits: 1, vec4: true }, // terabyte b2048 forward top[0] 415->512: 37.1 µs, 1.15x the rule
  "2048x415x512/akbn": { tile: "64x64_8x4_k32", splits: 1, vec4: true }, // terabyte b2048 dX top[0] 415->512: 47.0 µs, 1.23x the rule
  "512x415x2048/ambn": { tile: "64x64_8x4_k16s", splits: 8, vec4: true }, // terabyte b2048 dW top[0] 415->512: 43.2 µs, 1.73x the rule (2026-12-03; the entry before 46.8)
  "2048x512x367/akbk": { tile: "64x64_8x4_k16", splits: 1, vec4: true }, // kaggle b2048 forward top[0] 367->512: 33.4 µs, 1.15x the rule
  "2048x367x512/akbn": { tile: "32x32_4x4_k16", splits: 1, vec4: true }, // kaggle b2048 dX top[0] 367->512: 43.2 µs, 1.07x the rule
  "512x367x2048/ambn": { tile: "64x64_8x4_k16s", splits: 8, vec4: true }, // kaggle b2048 dW top[0] 367->512: 40.2 µs, 1.04x the rule
  "2048x256x512/akbk": { tile: "64x64_4x4_k32m", splits: 1, vec4: true }, // kaggle b2048 forward bottom[1] 512->256: 26.0 µs, 1.22x the rule (k-major)
  "2048x512x256/akbn": { tile: "64x64_4x4_k32m", splits: 1, vec4: true }, // kaggle b2048 dX bottom[1] 512->256: 22.6 µs, 1.30x the rule (k-major)
  "256x512x2048/ambn": { tile: "128x128_8x8_k16sdp", splits: 16, vec4: true }, // kaggle b2048 dW bottom[1] 512->256: 22.6 µs, 1.42x the rule (2026-12-03; the entry before 24.3)
  "16384x64x256/akbk": { tile: "64x64_8x4_k32m", splits: 1, vec4: true }, // kaggle b16384 forward bottom[2] 256->64: 21.8 µs, 1.33x the rule (k-major)
  "16384x256x64/akbn": { tile: "128x128_8x8_k8sd", splits: 1, vec4: true }, // kaggle b16384 dX bottom[2] 256->64: 26.6 µs, 2.42x the rule (2026-12-03, full b16384 sweep; the entry before 27.7)
  "64x256x16384/ambn": { tile: "64x64_8x4_k32", splits: 64, vec4: true }, // kaggle b16384 dW bottom[2] 256->64: 25.6 µs, 1.82x the rule (2026-12-03, full b16384 sweep; the entry before 27.9)
  "16384x512x13/akbk": { tile: "64x64_4x4_k16", splits: 1, vec4: false }, // kaggle b16384 forward bottom[0] 13->512: 45.2 µs, 2.01x the rule
  "16384x13x512/akbn": { tile: "32x32_4x4_k32", splits: 1, vec4: true }, // kaggle b16384 dX bottom[0] 13->512: 35.0 µs, 1.76x the rule
  "512x13x16384/ambn": { tile: "128x32_8x4_k16", splits: 64, vec4: true }, // kaggle b16384 dW bottom[0] 13->512: 48.5 µs, 2.30x the rule
  // Terabyte b16384, from the sweep before (rolled kernels): this sweep timed these products
  // 3-4x slower than the kernel table did the same plans, so its picks were not taken.
  "16384x512x512/akbk": { tile: "64x128_8x8_k16s", splits: 1, vec4: true }, // terabyte b16384 forward top[1] 512->512: 277.9 µs, 1.49x the rule
  "16384x512x512/akbn": { tile: "64x128_8x8_k16s", splits: 1, vec4: true }, // terabyte b16384 dX top[1] 512->512: 278.6 µs, 1.50x the rule
  "512x512x16384/ambn": { tile: "64x128_8x8_k16s", splits: 32, vec4: true }, // terabyte b16384 dW top[1] 512->512: 267.3 µs, 1.28x the rule
  "16384x512x415/akbk": { tile: "128x64_8x8_k8s", splits: 1, vec4: true }, // terabyte b16384 forward top[0] 415->512: 238.8 µs, 1.48x the rule
  "16384x415x512/akbn": { tile: "64x64_8x4_k16s", splits: 1, vec4: true }, // terabyte b16384 dX top[0] 415->512: 260.0 µs, 1.35x the rule (2026-12-03; the entry before 301.0)
  "512x415x16384/ambn": { tile: "64x64_8x4_k16s", splits: 16, vec4: true }, // terabyte b16384 dW top[0] 415->512: 233.2 µs, 1.40x the rule (2026-12-03; the entry before 290.6)
  // Batch 128, K splits allowed (`--batch-size 128 --sweep --sweep-split-all --sweep-min-gflop
  // 0.01`, H200, 2026-12-02): the one product where a split plan still beat the small-product
  // kernel with 64 k a step written out (50 in a pass: 13.3 against 15.2 µs); every other split
  // plan tied or lost to it, by up to 1.7x, and was dropped.
  "512x512x128/ambn": { tile: "64x64_4x4_k32", splits: 2, vec4: true }, // terabyte b128 dW top[1] 512->512: 60.8 µs, 1.25x the rule
};
