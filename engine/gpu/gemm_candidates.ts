/**
 * The tile shapes a GEMM sweep tries (`cli/bench_gpu_kernels.ts --sweep`), named
 * `BMxBN_TMxTN_kBK`: a `BM x BN` block of C per workgroup, a `TM x TN` register block per
 * invocation, K advancing BK at a time; a trailing `s` names the strided placement of the
 * register block (`GemmTile.strided`), a `d` two workgroup-memory buffers (`GemmTile.double`), an
 * `m` k-contiguous operands kept so in workgroup memory (`GemmTile.kMajor`), a `p` the multiply's
 * workgroup-memory reads issued a round ahead (`GemmTile.prefetch`). A name resolves to its tile
 * wherever a plan names one ({@linkcode gemmTileByName}); the engine's own four shapes keep their
 * short names.
 *
 * @module
 */
import {
  GEMM_TILES,
  type GemmTile,
  gemmTileName,
  gemmTileProblem,
  gemmTileWorkgroupBytes,
  gemmWorkgroup,
} from "./kernels/gemm.ts";

const TILE_NAME = /^(\d+)x(\d+)_(\d+)x(\d+)_k(\d+)(s?)(d?)(m?)(p?)$/;

/** The name of a tile ({@linkcode gemmTileByName} reads it back). */
export { gemmTileName };

/**
 * The tile a name stands for: one of the engine's shapes (`GEMM_TILES`, e.g. "128x64") or a
 * `BMxBN_TMxTN_kBK` name. Throws on anything else, or on a tile the kernel cannot compile.
 */
export function gemmTileByName(name: string): GemmTile {
  const own = (GEMM_TILES as Record<string, GemmTile>)[name];
  if (own) return own;
  const match = TILE_NAME.exec(name);
  if (!match) {
    throw new RangeError(
      `Expected a GEMM tile name like "128x64_8x4_k16" or one of ${
        Object.keys(GEMM_TILES).join(", ")
      }, found "${name}"`,
    );
  }
  const [bm, bn, tm, tn, bk] = match.slice(1, 6).map(Number);
  const tile: GemmTile = {
    bm,
    bn,
    tm,
    tn,
    bk,
    ...(match[6] ? { strided: true } : {}),
    ...(match[7] ? { double: true } : {}),
    ...(match[8] ? { kMajor: true } : {}),
    ...(match[9] ? { prefetch: true } : {}),
  };
  const problem = gemmTileProblem(tile);
  if (problem) throw new RangeError(`GEMM tile "${name}" cannot be compiled: ${problem}`);
  return tile;
}

/**
 * The sweep's candidates: register blocks of 4x4 to 8x16 in 64 to 256 invocations, K steps of 8
 * to 32, every one loadable with vec4s (so each is tried with scalar and vec4 loads); the larger
 * register blocks also strided, and some of those double-buffered; k-major tiles of 4x4 to 16x8;
 * the engine's strided 8x8 and 8x4 tiles with their workgroup-memory reads a round ahead.
 */
export const GEMM_CANDIDATES: readonly string[] = [
  "128x128_8x8_k8",
  "128x128_8x8_k16",
  "128x64_8x8_k8",
  "128x64_8x8_k16",
  "128x64_8x8_k32",
  "64x128_8x8_k8",
  "64x128_8x8_k16",
  "64x128_8x8_k32",
  "128x64_8x4_k16",
  "128x64_8x4_k32",
  "128x64_4x8_k16",
  "64x128_4x8_k16",
  "64x128_4x8_k32",
  "64x128_8x4_k16",
  "256x64_8x8_k16",
  "64x256_8x8_k16",
  "64x64_8x8_k8",
  "64x64_8x8_k16",
  "64x64_8x8_k32",
  "64x64_8x4_k16",
  "64x64_8x4_k32",
  "64x64_4x8_k16",
  "64x64_4x4_k16",
  "64x64_4x4_k32",
  "128x32_8x8_k16",
  "32x128_8x8_k16",
  "128x32_8x4_k16",
  "32x64_4x8_k16",
  "32x32_4x4_k16",
  "32x32_4x4_k32",
  "128x128_8x8_k8s",
  "128x128_8x8_k16s",
  "128x64_8x8_k8s",
  "128x64_8x8_k16s",
  "64x128_8x8_k8s",
  "64x128_8x8_k16s",
  "128x64_8x4_k16s",
  "64x128_4x8_k16s",
  "64x64_8x8_k16s",
  "64x64_8x4_k16s",
  "64x64_4x8_k16s",
  "64x64_4x4_k16s",
  "128x128_8x8_k8sd",
  "128x128_8x8_k16sd",
  "128x64_8x8_k16sd",
  "64x128_8x8_k16sd",
  "64x64_8x8_k16sd",
  "128x64_8x4_k16sd",
  // Register blocks of 8 x 16: 32 FMAs per vec4 loaded from workgroup memory instead of 16.
  "128x128_8x16_k8s",
  "128x128_16x8_k8s",
  "256x128_16x8_k8s",
  "128x256_8x16_k8s",
  // K-major (products whose A is contiguous in k, loaded as vec4s; `gemm_kmajor.ts`).
  "128x128_8x8_k8m",
  "128x128_8x8_k16m",
  "128x64_8x8_k16m",
  "64x128_8x8_k16m",
  "64x128_8x8_k32m",
  "64x64_8x8_k16m",
  "64x64_8x8_k32m",
  "64x64_8x4_k16m",
  "64x64_8x4_k32m",
  "64x128_8x4_k16m",
  "128x64_8x4_k16m",
  "64x64_4x4_k32m",
  "128x128_8x16_k16m",
  "128x128_16x8_k16m",
  // Round kk + 1's workgroup-memory reads issued before round kk's multiply-adds.
  "64x128_8x8_k16sp",
  "128x64_8x8_k16sp",
  "128x64_8x8_k8sp",
  "128x128_8x8_k8sp",
  "64x64_8x4_k16sp",
  "128x128_8x8_k16sdp",
];

/** The candidates that fit `maxWorkgroupBytes` of workgroup memory and `maxThreads` invocations. */
export function gemmCandidateTiles(maxWorkgroupBytes: number, maxThreads = 256): string[] {
  return GEMM_CANDIDATES.filter((name) => {
    const tile = gemmTileByName(name);
    const [x, y] = gemmWorkgroup(tile);
    return gemmTileWorkgroupBytes(tile) <= maxWorkgroupBytes && x * y <= maxThreads;
  });
}

/**
 * K splits worth trying for an `m x n` product over `k` with `tile`: none when the product must
 * keep its summation order (`current` is 1: the unsplit product equals the CPU engine's) unless
 * `anySplit`, else powers of two while each split keeps at least `minSplitK` of k and the
 * workgroups number from `minWorkgroups` (fewer leave most of a GPU idle) to `maxWorkgroups`,
 * plus `current`.
 */
export function gemmSplitChoices(
  tile: GemmTile,
  m: number,
  n: number,
  k: number,
  current: number,
  {
    minSplitK = 128,
    maxSplits = 64,
    minWorkgroups = 64,
    maxWorkgroups = 4096,
    anySplit = false,
  } = {},
): number[] {
  if (current <= 1 && !anySplit) return [1];
  const tiles = Math.ceil(m / tile.bm) * Math.ceil(n / tile.bn);
  const out = new Set<number>([current]);
  for (let s = 1; s <= maxSplits && k / s >= minSplitK; s *= 2) {
    if (tiles * s > maxWorkgroups) break;
    if (tiles * s >= minWorkgroups) out.add(s);
  }
  return [...out].sort((x, y) => x - y);
}
