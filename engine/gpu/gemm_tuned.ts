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
 * 2026-12-02, `--batch-size 128,2048,16384 --sweep --sweep-min-gflop 0.05`), each 3 % or more
 * faster there than the rule's plan.
 */
export const GEMM_TUNED: Readonly<Record<string, TunedGemm>> = {
  "2048x512x256/akbn": { tile: "64x128_8x4_k16", splits: 1, vec4: true }, // kaggle b2048 dX bottom[1] 512->256: 183.6 µs, 1.11x the rule
  "256x512x2048/ambn": { tile: "64x64_8x4_k16", splits: 16, vec4: true }, // kaggle b2048 dW bottom[1] 512->256: 180.4 µs, 1.09x the rule
  "2048x64x256/akbk": { tile: "32x32_4x4_k32", splits: 1, vec4: true }, // kaggle b2048 forward bottom[2] 256->64: 116.1 µs, 1.14x the rule
  "2048x256x64/akbn": { tile: "64x64_4x4_k32", splits: 1, vec4: true }, // kaggle b2048 dX bottom[2] 256->64: 54.0 µs, 1.16x the rule
  "64x256x2048/ambn": { tile: "32x32_4x4_k32", splits: 16, vec4: true }, // kaggle b2048 dW bottom[2] 256->64: 85.5 µs, 1.09x the rule
  "2048x512x367/akbk": { tile: "64x128_8x4_k16", splits: 1, vec4: false }, // kaggle b2048 forward top[0] 367->512: 284.4 µs, 1.04x the rule
  "2048x367x512/akbn": { tile: "32x32_4x4_k16", splits: 1, vec4: true }, // kaggle b2048 dX top[0] 367->512: 335.6 µs, 1.13x the rule
  "512x367x2048/ambn": { tile: "128x32_8x4_k16", splits: 11, vec4: true }, // kaggle b2048 dW top[0] 367->512: 248.3 µs, 1.05x the rule
  "16384x512x13/akbk": { tile: "64x64_4x4_k16", splits: 1, vec4: false }, // kaggle b16384 forward bottom[0] 13->512: 199.8 µs, 1.73x the rule
  "16384x13x512/akbn": { tile: "32x32_4x4_k32", splits: 1, vec4: true }, // kaggle b16384 dX bottom[0] 13->512: 210.1 µs, 1.81x the rule
  "512x13x16384/ambn": { tile: "128x32_8x4_k16", splits: 64, vec4: true }, // kaggle b16384 dW bottom[0] 13->512: 53.8 µs, 8.07x the rule
  "16384x256x512/akbk": { tile: "128x128_8x8_k16s", splits: 1, vec4: true, loop: true }, // kaggle b16384 forward bottom[1] 512->256: 168.2 µs, 1.18x the rule
  "16384x512x256/akbn": { tile: "64x128_4x8_k16s", splits: 1, vec4: true }, // kaggle b16384 dX bottom[1] 512->256: 200.1 µs, 1.20x the rule
  "256x512x16384/ambn": { tile: "128x128_8x8_k16s", splits: 32, vec4: false }, // kaggle b16384 dW bottom[1] 512->256: 178.3 µs, 1.42x the rule
  "16384x64x256/akbk": { tile: "64x64_4x4_k32", splits: 1, vec4: true }, // kaggle b16384 forward bottom[2] 256->64: 36.6 µs, 1.09x the rule
  "16384x256x64/akbn": { tile: "64x64_4x4_k16s", splits: 1, vec4: true }, // kaggle b16384 dX bottom[2] 256->64: 42.1 µs, 1.57x the rule
  "64x256x16384/ambn": { tile: "64x64_8x4_k32", splits: 64, vec4: true }, // kaggle b16384 dW bottom[2] 256->64: 48.7 µs, 1.46x the rule
  "16384x367x512/akbn": { tile: "64x128_8x8_k16s", splits: 1, vec4: true }, // kaggle b16384 dX top[0] 367->512: 306.4 µs, 1.34x the rule
  "512x367x16384/ambn": { tile: "128x128_8x8_k16s", splits: 22, vec4: false }, // kaggle b16384 dW top[0] 367->512: 249.9 µs, 1.32x the rule
  "2048x512x415/akbk": { tile: "128x64_8x4_k32", splits: 1, vec4: false }, // terabyte b2048 forward top[0] 415->512: 227.0 µs, 1.04x the rule
  "2048x415x512/akbn": { tile: "64x64_8x4_k32", splits: 1, vec4: true }, // terabyte b2048 dX top[0] 415->512: 291.5 µs, 1.23x the rule
  "512x415x2048/ambn": { tile: "64x64_4x8_k16s", splits: 8, vec4: false }, // terabyte b2048 dW top[0] 415->512: 95.3 µs, 3.34x the rule
  "2048x512x512/akbk": { tile: "64x128_4x8_k16s", splits: 1, vec4: true }, // terabyte b2048 forward top[1] 512->512: 105.8 µs, 1.11x the rule
  "2048x512x512/akbn": { tile: "64x128_8x4_k16", splits: 1, vec4: true }, // terabyte b2048 dX top[1] 512->512: 97.5 µs, 1.15x the rule
  "512x512x2048/ambn": { tile: "128x64_8x8_k16s", splits: 8, vec4: true }, // terabyte b2048 dW top[1] 512->512: 64.1 µs, 2.01x the rule
  "16384x512x415/akbk": { tile: "128x128_8x8_k8s", splits: 1, vec4: false }, // terabyte b16384 forward top[0] 415->512: 350.9 µs, 1.07x the rule
  "16384x415x512/akbn": { tile: "64x256_8x8_k16", splits: 1, vec4: true, loop: true }, // terabyte b16384 dX top[0] 415->512: 348.2 µs, 1.29x the rule
  "512x415x16384/ambn": { tile: "128x128_8x8_k16s", splits: 16, vec4: false }, // terabyte b16384 dW top[0] 415->512: 326.5 µs, 1.15x the rule
  "16384x512x512/akbk": { tile: "128x128_8x8_k16s", splits: 1, vec4: true, loop: true }, // terabyte b16384 forward top[1] 512->512: 329.0 µs, 1.17x the rule
  "16384x512x512/akbn": { tile: "64x128_8x8_k16s", splits: 1, vec4: true }, // terabyte b16384 dX top[1] 512->512: 359.2 µs, 1.11x the rule
  "512x512x16384/ambn": { tile: "128x128_8x8_k16s", splits: 16, vec4: false }, // terabyte b16384 dW top[1] 512->512: 327.3 µs, 1.17x the rule
  // Batch 128, K splits allowed (`--batch-size 128 --sweep --sweep-split-all --sweep-min-gflop
  // 0.01`, H200, 2026-12-02): the one product where a split plan still beat the small-product
  // kernel with 64 k a step written out (50 in a pass: 13.3 against 15.2 µs); every other split
  // plan tied or lost to it, by up to 1.7x, and was dropped.
  "512x512x128/ambn": { tile: "64x64_4x4_k32", splits: 2, vec4: true }, // terabyte b128 dW top[1] 512->512: 60.8 µs, 1.25x the rule
  // Rolled k loop 3-7% faster than written out (`bench_gpu_kernels --batch-size 2048,16384
  // --skip-update`, plan against plan_loop, H200, 2026-12-02; the entries above marked `loop`
  // were measured the same way): kaggle b16384 forward top[0] 293.5 against 314.3 µs.
  "16384x512x367/akbk": { tile: "128x128", splits: 1, vec4: false, loop: true },
};
