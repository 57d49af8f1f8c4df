/**
 * Strided matrix product C = A B (+ bias, ReLU, ReLU-derivative mask), the one kernel of every
 * MLP product: forward Y = X Wᵀ, input gradient dX = dY W (masked by X > 0) and weight gradient
 * dW = dYᵀ X, by choosing strides.
 *
 * Register-blocked: a workgroup computes a `bm x bn` tile of C, each invocation a `tm x tn`
 * block of it held in vec4 registers (the invocation's rows and columns are contiguous, so its
 * operands come out of workgroup memory as vec4 loads). K advances `bk` at a time through
 * workgroup memory (rows padded by 4 floats against bank conflicts), the next K-step's global
 * values being loaded into registers while the current one is multiplied. Global loads use
 * generic strides, scalar or (where an operand's layout is aligned) vec4 along its contiguous
 * dimension; the kernel is compiled for the operand layouts it is used with, so that consecutive
 * invocations load consecutive addresses (`aKFast`: A's contiguous dimension is k, else m;
 * `bKFast`: B's is k, else n).
 *
 * Split-K (`splits` > 1): workgroup z sums k in [z * chunk, (z + 1) * chunk) and writes its raw
 * partial sum to `c[cBase + z * splitStride + row * cRow + col]`; the epilogue (bias, ReLU, mask)
 * then belongs to {@linkcode GEMM_SPLIT_REDUCE}, which adds the partials in z order. Without
 * split, each output is summed over k in ascending order, as the CPU engine does; with it, each
 * partial is, and the partials are added in a fixed order: the result is deterministic.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Flag: M is the batch's rows. */
export const GEMM_M_ROWS = 1;
/** Flag: K is the batch's rows. */
export const GEMM_K_ROWS = 2;
/** Flag: A starts at sample s0 (A is the chunk's dense input): base += s0 * aRow. */
export const GEMM_A_AT_S0 = 4;
/** Flag: add bias[n]. */
export const GEMM_BIAS = 8;
/** Flag: ReLU on the output. */
export const GEMM_RELU = 16;
/** Flag: zero the output where mask[m * maskRow + n] <= 0 (ReLU derivative). */
export const GEMM_MASK = 32;
/** Flag: B starts at sample s0 (B is the chunk's dense input): base += s0 * bRow. */
export const GEMM_B_AT_S0 = 64;
/**
 * Flag (the small-product kernel only, `gemm_naive.ts`): column n is a column of ones whose
 * outputs go to `c[biasBase + row]`, the bias gradient beside the weight gradient.
 */
export const GEMM_BIAS_GRAD = 128;

/**
 * Words of the kernel's uniform block, in order. `splits` (0 or 1: no split) and `splitStride`
 * (floats between the partial sums of consecutive splits) serve split-K; `biasBase`,
 * {@linkcode GEMM_BIAS_GRAD}; the pads fill the block to a multiple of 16 bytes.
 */
export const GEMM_FIELDS = [
  "m",
  "n",
  "k",
  "flags",
  "aRow",
  "aCol",
  "bRow",
  "bCol",
  "cRow",
  "maskRow",
  "aBase",
  "bBase",
  "cBase",
  "maskBase",
  "splits",
  "splitStride",
  "biasBase",
  "pad0",
  "pad1",
  "pad2",
] as const;

/** WGSL of the uniform block (shared with the split-K reduction). */
export const GEMM_UNIFORM_WGSL = /* wgsl */ `
struct G {
  m: u32, n: u32, k: u32, flags: u32,
  aRow: u32, aCol: u32, bRow: u32, bCol: u32,
  cRow: u32, maskRow: u32, aBase: u32, bBase: u32,
  cBase: u32, maskBase: u32, splits: u32, splitStride: u32,
  biasBase: u32, pad0: u32, pad1: u32, pad2: u32,
}
@group(0) @binding(0) var<uniform> g: G;
`;

/**
 * WGSL of the GEMM's bindings with scalar operands (the small-product and column-sum kernels,
 * which bind as the GEMM does): A, B, C, bias, mask.
 */
export const GEMM_SCALAR_BINDINGS_WGSL = /* wgsl */ `
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;
`;

/** A tile shape: C tile `bm x bn`, `tm x tn` outputs per invocation, `bk` k per step. */
export interface GemmTile {
  bm: number;
  bn: number;
  tm: number;
  tn: number;
  bk: number;
  /**
   * How an invocation's outputs lie in the block: false (default), `tm` consecutive rows and `tn`
   * consecutive columns; true, groups of 4 rows (and of 4 columns) one workgroup width apart, so
   * that neighbouring invocations read neighbouring vec4s of workgroup memory (no bank
   * conflicts) and write neighbouring columns of C. Each output sums the same products in the
   * same order either way.
   */
  strided?: boolean;
  /**
   * Two workgroup-memory buffers per operand: the next K-step is stored into one while the other
   * is multiplied, so a step needs one barrier instead of two (twice the workgroup memory).
   */
  double?: boolean;
  /**
   * Operands contiguous in k stay so in workgroup memory (`gemm_kmajor.ts`), where the layout
   * and loads allow it (A contiguous in k, vec4 loads); elsewhere the tile runs this kernel.
   */
  kMajor?: boolean;
  /**
   * The multiply reads round kk + 1's values of A and B from workgroup memory before it issues
   * round kk's multiply-adds (registers for two rounds), instead of each round reading its own
   * first: an order for the driver's scheduler to keep or not (a rolled multiply, `unroll`
   * false, reads each round's own). The same sums in the same order.
   */
  prefetch?: boolean;
}

/**
 * The name of `tile`: `BMxBN_TMxTN_kBK`, then `s` when strided, `d` when double-buffered, `m`
 * when k-major, `p` when prefetching (`gemm_candidates.ts` reads such names back).
 */
export function gemmTileName(tile: GemmTile): string {
  return `${tile.bm}x${tile.bn}_${tile.tm}x${tile.tn}_k${tile.bk}${tile.strided ? "s" : ""}${
    tile.double ? "d" : ""
  }${tile.kMajor ? "m" : ""}${tile.prefetch ? "p" : ""}`;
}

/**
 * The tile shapes the engine's rule picks from (largest first, see gemm_plan.ts), and two thin
 * ones for tuned plans of products with a single column or row (a bias gradient: n = 1; the last
 * layer's weight gradient: m = 1), where a square tile multiplies mostly masked-out zeros. Each
 * stays within WebGPU's default 16 KiB of workgroup memory.
 */
export const GEMM_TILES = {
  "128x128": { bm: 128, bn: 128, tm: 8, tn: 8, bk: 8 },
  "128x64": { bm: 128, bn: 64, tm: 8, tn: 4, bk: 16 },
  "64x64": { bm: 64, bn: 64, tm: 4, tn: 4, bk: 16 },
  "32x32": { bm: 32, bn: 32, tm: 4, tn: 4, bk: 16 },
  "256x4": { bm: 256, bn: 4, tm: 4, tn: 4, bk: 16 },
  "4x256": { bm: 4, bn: 256, tm: 4, tn: 4, bk: 16 },
} as const satisfies Record<string, GemmTile>;

/** Name of a tile shape. */
export type GemmTileName = keyof typeof GEMM_TILES;

/** Invocations of a workgroup of `tile`: (x over n, y over m). */
export function gemmWorkgroup(tile: GemmTile): [number, number] {
  return [tile.bn / tile.tn, tile.bm / tile.tm];
}

/**
 * Which operands the kernel loads from global memory as vec4s, and whether it stores C (or its
 * split partials) as vec4s (see {@linkcode gemmKernel}).
 */
export interface GemmVec4 {
  a: boolean;
  b: boolean;
  c?: boolean;
}

/**
 * One operand's global loads and workgroup-memory stores of a K-step, in WGSL lines.
 * `x`: the operand (a or b), `o`: its other dimension (m or n), `bo`: the tile's extent along it,
 * `kFast`: its contiguous dimension is k, `vec4`: loaded as vec4s along the contiguous dimension
 * (the values and where they land are those of the scalar loads: only the load width changes).
 */
function operandLoads(
  x: "a" | "b",
  o: "m" | "n",
  bo: number,
  bk: number,
  threads: number,
  kFast: boolean,
  vec4: boolean,
  double: boolean,
  inner: number,
): { regs: string[]; load: string[]; store: string[] } {
  const O = o.toUpperCase();
  // The vec4 of workgroup memory at k-row `kk`, vec4 `r4` of the row (see `tileRowsWgsl`); with
  // two buffers, stores go to buffer `pw`.
  const at = (kk: string, r4: string) =>
    `s${x}${double ? "[pw]" : ""}[${kk}].v[(${r4}) / ${inner}u][(${r4}) % ${inner}u]`;
  // Strides of the operand along its other dimension and along k.
  const [oStride, kStride] = x === "a" ? ["g.aRow", "g.aCol"] : ["g.bCol", "g.bRow"];
  const base = `${x}Base`, regs: string[] = [], load: string[] = [], store: string[] = [];
  if (!vec4) {
    for (let r = 0; r < (bo * bk) / threads; r++) {
      const e = `(li + ${r * threads}u)`;
      const [kk, oo] = kFast
        ? [`${e} % ${bk}u`, `${e} / ${bk}u`]
        : [`${e} / ${bo}u`, `${e} % ${bo}u`];
      regs.push(`var r${x}${r} = 0.0;`);
      load.push(
        `{ let kk = ${kk}; let oo = ${oo}; let go = ${o}0 + oo; let gk = kl + kk;`,
        `  r${x}${r} = select(0.0, ${x}[${base} + min(go, ${O} - 1u) * ${oStride} + min(gk, K - 1u) * ${kStride}], go < ${O} && gk < kEnd); }`,
      );
      store.push(
        `{ let kk = ${kk}; let oo = ${oo}; ${at("kk", "oo / 4u")}[oo % 4u] = r${x}${r}; }`,
      );
    }
    return { regs, load, store };
  }
  // vec4 loads: 4 consecutive k (kFast) or 4 consecutive m / n of one element's neighbours; the
  // clamped index stays inside the operand, out-of-range lanes are zeroed as the scalar loads do.
  for (let r = 0; r < (bo * bk) / 4 / threads; r++) {
    const e = `(li + ${r * threads}u)`;
    regs.push(`var r${x}${r} = vec4f(0.0);`);
    if (kFast) {
      const kk = `(${e} % ${bk / 4}u) * 4u`, oo = `${e} / ${bk / 4}u`;
      load.push(
        `{ let kk = ${kk}; let oo = ${oo}; let go = ${o}0 + oo; let gk = kl + kk;`,
        `  let v = ${x}[(${base} + min(go, ${O} - 1u) * ${oStride}) / 4u + min(gk, K - 1u) / 4u];`,
        `  r${x}${r} = select(vec4f(0.0), v, vec4<bool>(go < ${O}) & (vec4u(gk) + vec4u(0u, 1u, 2u, 3u) < vec4u(kEnd))); }`,
      );
      store.push(
        `{ let kk = ${kk}; let oo = ${oo};`,
        ...[0, 1, 2, 3].map((q) => `  ${at(`kk + ${q}u`, "oo / 4u")}[oo % 4u] = r${x}${r}[${q}];`),
        `}`,
      );
    } else {
      const oo = `(${e} % ${bo / 4}u) * 4u`, kk = `${e} / ${bo / 4}u`;
      load.push(
        `{ let kk = ${kk}; let oo = ${oo}; let go = ${o}0 + oo; let gk = kl + kk;`,
        `  let v = ${x}[(${base} + min(gk, K - 1u) * ${kStride}) / 4u + min(go, ${O} - 1u) / 4u];`,
        `  r${x}${r} = select(vec4f(0.0), v, (vec4u(go) + vec4u(0u, 1u, 2u, 3u) < vec4u(${O})) & vec4<bool>(gk < kEnd)); }`,
      );
      store.push(`{ let kk = ${kk}; let oo = ${oo}; ${at("kk", "oo / 4u")} = r${x}${r}; }`);
    }
  }
  return { regs, load, store };
}

/** WGSL: the epilogue writing 4 columns of one output row (those inside C), a value at a time. */
export const PUT_SCALAR_WGSL = /* wgsl */ `
fn put(row: u32, col: u32, v: vec4f, M: u32, N: u32, z: u32) {
  if (row >= M) { return; }
  let split = g.splits > 1u;
  for (var q = 0u; q < 4u; q++) {
    let n = col + q;
    if (n >= N) { return; }
    var acc = v[q];
    if (split) {
      c[g.cBase + z * g.splitStride + row * g.cRow + n] = acc;
      continue;
    }
    if ((g.flags & 8u) != 0u) { acc += bias[n]; }
    if ((g.flags & 16u) != 0u) { acc = max(acc, 0.0); }
    if ((g.flags & 32u) != 0u && !(mask[g.maskBase + row * g.maskRow + n] > 0.0)) { acc = 0.0; }
    c[g.cBase + row * g.cRow + n] = acc;
  }
}`;

/**
 * WGSL: the same epilogue storing the 4 columns as one vec4 (N, C's base, row and split strides
 * multiples of 4, so a group of 4 columns is inside C whole or not at all).
 */
export const PUT_VEC4_WGSL = /* wgsl */ `
fn put(row: u32, col: u32, v: vec4f, M: u32, N: u32, z: u32) {
  if (row >= M || col >= N) { return; }
  var acc = v;
  if (g.splits > 1u) {
    c[(g.cBase + z * g.splitStride + row * g.cRow + col) / 4u] = acc;
    return;
  }
  if ((g.flags & 8u) != 0u) { acc += vec4f(bias[col], bias[col + 1u], bias[col + 2u], bias[col + 3u]); }
  if ((g.flags & 16u) != 0u) { acc = max(acc, vec4f(0.0)); }
  if ((g.flags & 32u) != 0u) {
    let at = g.maskBase + row * g.maskRow + col;
    let m = vec4f(mask[at], mask[at + 1u], mask[at + 2u], mask[at + 3u]);
    acc = select(vec4f(0.0), acc, m > vec4f(0.0));
  }
  c[(g.cBase + row * g.cRow + col) / 4u] = acc;
}`;

/**
 * WGSL of one operand's workgroup memory: `bk` k-rows (two sets of them when double-buffered),
 * each `outer x inner` vec4s plus one of padding (against bank conflicts of the transposing
 * stores), the vec4 at `r4` of a row being `v[r4 / inner][r4 % inner]`. The multiply's reads name
 * the k-row and the invocation's group by constants and only its own lane (`l.x` or `l.y`) by a
 * variable: each dynamic index of a workgroup array is clamped to the array (WGSL's bounds rule,
 * as naga compiles it), and one clamp of the lane serves every read of the K-step, where a
 * flat index would need one per read.
 */
function tileRowsWgsl(x: "a" | "b", outer: number, inner: number, bk: number, double: boolean) {
  const R = `Rows${x.toUpperCase()}`;
  return `struct ${R} { v: array<array<vec4f, ${inner}>, ${outer}>, pad: vec4f }
var<workgroup> s${x}: ${double ? `array<array<${R}, ${bk}>, 2>` : `array<${R}, ${bk}>`};`;
}

/**
 * WGSL of the register-tiled kernels' bindings: the uniform block, then A, B and C as vec4s or
 * floats as `vec4` says, bias and mask.
 */
export function gemmBindingsWgsl(vec4: GemmVec4): string {
  return `${GEMM_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> a: array<${vec4.a ? "vec4f" : "f32"}>;
@group(0) @binding(2) var<storage, read> b: array<${vec4.b ? "vec4f" : "f32"}>;
@group(0) @binding(3) var<storage, read_write> c: array<${vec4.c ? "vec4f" : "f32"}>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;`;
}

/**
 * WGSL opening a register-tiled kernel's main: the product's M, K, N and operand bases for this
 * iteration, the workgroup's block (`m0`, `n0`) and K split (`z`, k in [`kBegin`, `kEnd`));
 * workgroups past M return.
 */
function gemmPrologueWgsl(bm: number, bn: number, bk: number): string {
  return `let M = select(g.m, it.rows, (g.flags & 1u) != 0u);
  let K = select(g.k, it.rows, (g.flags & 2u) != 0u);
  let N = g.n;
  let aBase = g.aBase + select(0u, it.s0 * g.aRow, (g.flags & 4u) != 0u);
  let bBase = g.bBase + select(0u, it.s0 * g.bRow, (g.flags & 64u) != 0u);
  let m0 = w.y * ${bm}u;
  let n0 = w.x * ${bn}u;
  let z = w.z;
  if (m0 >= M || K == 0u) { return; } // uniform per workgroup
  let splits = max(g.splits, 1u);
  let chunk = ((K + splits - 1u) / splits + ${bk - 1}u) / ${bk}u * ${bk}u;
  let kBegin = min(K, z * chunk);
  let kEnd = min(K, kBegin + chunk);`;
}

/**
 * WGSL of a register-tiled kernel's K loop with one workgroup-memory buffer: store the step
 * loaded, load the next into registers, multiply (`multiply`, WGSL), one barrier either side.
 */
export function gemmStepLoopWgsl(
  bk: number,
  store: string[],
  load: string[],
  multiply: string,
): string {
  return `for (; k0 < kEnd; k0 += ${bk}u) {
    ${store.join("\n    ")}
    workgroupBarrier();
    kl = k0 + ${bk}u;
    if (kl < kEnd) {
      ${load.join("\n      ")}
    }
    ${multiply}
    workgroupBarrier();
  }`;
}

/**
 * WGSL of a register-tiled kernel's entry point: the prologue, `vars` (accumulators, load
 * registers), the first K-step's `load`, the K `loop` and the epilogue `out`.
 */
export function gemmMainWgsl(
  tile: GemmTile,
  vars: string[],
  load: string[],
  loop: string,
  out: string[],
): string {
  const [tx, ty] = gemmWorkgroup(tile);
  return `@compute @workgroup_size(${tx}, ${ty})
fn main(
  @builtin(local_invocation_id) l: vec3u,
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) w: vec3u,
) {
  ${gemmPrologueWgsl(tile.bm, tile.bn, tile.bk)}
  ${vars.join("\n  ")}
  var k0 = kBegin;
  var kl = kBegin;
  ${load.join("\n  ")}
  ${loop}
  ${out.join("\n  ")}
}`;
}

/** Why `tile` cannot be compiled (with vec4 loads where `vec4` says), or "" when it can. */
export function gemmTileProblem(tile: GemmTile, vec4: GemmVec4 = { a: false, b: false }): string {
  const { bm, bn, tm, tn, bk } = tile;
  if (tm % 4 || tn % 4 || bm % tm || bn % tn || bk % 4) {
    return "tm, tn and bk must be multiples of 4 dividing bm, bn";
  }
  if (tile.kMajor && tile.double) return "a k-major tile has one workgroup-memory buffer";
  if (tile.kMajor && tile.prefetch) return "a k-major tile has its own multiply (no prefetch)";
  const [tx, ty] = gemmWorkgroup(tile);
  const threads = tx * ty;
  const perA = vec4.a ? 4 * threads : threads, perB = vec4.b ? 4 * threads : threads;
  if ((bm * bk) % perA || (bk * bn) % perB) {
    return `the ${threads} invocations must load the bm x bk and bk x bn tiles evenly`;
  }
  return "";
}

/**
 * Bytes of workgroup memory `tile` uses (both operand tiles, rows padded by 4, per buffer; a
 * k-major tile's rows of k padded by 4, or the other layout's where that is larger).
 */
export function gemmTileWorkgroupBytes(tile: GemmTile): number {
  const rows = tile.bk * (tile.bm + 4 + tile.bn + 4) * 4 * (tile.double ? 2 : 1);
  return tile.kMajor ? Math.max(rows, (tile.bm + tile.bn) * (tile.bk + 4) * 4) : rows;
}

/**
 * The kernel for `tile`, with global loads laid out for A contiguous in k (`aKFast`) or m, and B
 * contiguous in k (`bKFast`) or n; `vec4` loads an operand 4 floats at a time along its
 * contiguous dimension, which needs its base and other stride (and the row stride of a *_AT_S0
 * operand) to be multiples of 4 (checked by the binder: {@linkcode GemmVec4}). Each output is
 * summed in the same order either way, so vec4 and scalar loads give identical results.
 * `vec4.c` stores 4 columns of C at once, which needs N, C's base and row stride (and under
 * splits the partials' stride) to be multiples of 4; the epilogue is the same per value.
 * Bindings: uniform, A, B, C, bias, mask.
 */
export function gemmKernel(
  tile: GemmTile,
  aKFast: boolean,
  bKFast: boolean,
  vec4: GemmVec4 = { a: false, b: false },
  unroll = true,
): KernelSource {
  const { bm, bn, tm, tn, bk } = tile;
  const [tx, ty] = gemmWorkgroup(tile);
  const threads = tx * ty;
  const problem = gemmTileProblem(tile, vec4);
  if (problem) throw new RangeError(`Unsupported GEMM tile ${JSON.stringify(tile)}: ${problem}`);
  const lines: string[] = [];
  const double = tile.double ?? false;
  // Vec4s of an invocation's group along a k-row of workgroup memory (see `tileRowsWgsl`).
  const innerA = tile.strided ? ty : tm / 4, innerB = tile.strided ? tx : tn / 4;
  const opA = operandLoads("a", "m", bm, bk, threads, aKFast, vec4.a, double, innerA);
  const opB = operandLoads("b", "n", bn, bk, threads, bKFast, vec4.b, double, innerB);
  const load = [...opA.load, ...opB.load], store = [...opA.store, ...opB.store];
  // One k of the register block: acc[i][j] += a[i] * b[j], vec4 over columns; `r` names the
  // round's registers (prefetch: the next round's are read before this round's multiply-adds).
  const reads = (kk: string, r: string): string[] => {
    const out: string[] = [];
    for (let i = 0; i < tm / 4; i++) {
      const at = tile.strided ? `[${i}u][l.y]` : `[l.y][${i}u]`;
      out.push(`let a${i}${r} = sa${double ? "[pr]" : ""}[${kk}].v${at};`);
    }
    for (let j = 0; j < tn / 4; j++) {
      const at = tile.strided ? `[${j}u][l.x]` : `[l.x][${j}u]`;
      out.push(`let b${j}${r} = sb${double ? "[pr]" : ""}[${kk}].v${at};`);
    }
    return out;
  };
  const fmas = (r: string): string[] => {
    const out: string[] = [];
    for (let i = 0; i < tm; i++) {
      for (let j = 0; j < tn / 4; j++) {
        out.push(`c${i}_${j} += a${i >> 2}${r}[${i & 3}] * b${j}${r};`);
      }
    }
    return out;
  };
  const step = [...reads("kk", ""), ...fmas("")];
  // Epilogue.
  const out: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn / 4; j++) {
      out.push(
        tile.strided
          ? `put(m0 + (${(i >> 2) * ty}u + l.y) * 4u + ${i & 3}u, n0 + (${
            j * tx
          }u + l.x) * 4u, c${i}_${j}, M, N, z);`
          : `put(m0 + l.y * ${tm}u + ${i}u, n0 + l.x * ${tn}u + ${j * 4}u, c${i}_${j}, M, N, z);`,
      );
    }
  }
  const accs: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn / 4; j++) accs.push(`var c${i}_${j} = vec4f(0.0);`);
  }
  const regs = [...opA.regs, ...opB.regs];
  // A step's bk rounds written out, each with its k a constant (the compiler left the loop
  // rolled, each round waiting on its workgroup loads: the small-product kernel ran 2-3x faster
  // written out, gemm_naive.ts); or the loop (`unroll` false, for comparison). The same sums.
  const body = step.join("\n      ");
  const multiply = tile.prefetch && unroll
    ? Array.from(
      { length: bk },
      (_, kk) =>
        [
          ...(kk === 0 ? reads("0u", "_0") : []),
          ...(kk + 1 < bk ? reads(`${kk + 1}u`, `_${kk + 1}`) : []),
          ...fmas(`_${kk}`),
        ].join("\n    "),
    ).join("\n    ")
    : unroll
    ? Array.from({ length: bk }, (_, kk) => `{ const kk = ${kk}u;\n      ${body}\n    }`).join(
      "\n    ",
    )
    : `for (var kk = 0u; kk < ${bk}u; kk++) {
      ${body}
    }`;
  // One K-step per round: store the loaded step, load the next, multiply.
  const mainLoop = gemmStepLoopWgsl(bk, store, load, multiply);
  // Two buffers: multiply buffer pr while the next step goes into the other one.
  const mainLoopDouble = `var pr = 0u;
  var pw = 0u;
  if (k0 < kEnd) {
    ${store.join("\n    ")}
  }
  workgroupBarrier();
  for (; k0 < kEnd; k0 += ${bk}u) {
    kl = k0 + ${bk}u;
    if (kl < kEnd) {
      ${load.join("\n      ")}
    }
    ${multiply}
    pw = 1u - pr;
    if (kl < kEnd) {
      ${store.join("\n      ")}
    }
    workgroupBarrier();
    pr = pw;
  }`;
  lines.push(/* wgsl */ `
${ITER_WGSL}
${gemmBindingsWgsl(vec4)}

${tileRowsWgsl("a", bm / 4 / innerA, innerA, bk, double)}
${tileRowsWgsl("b", bn / 4 / innerB, innerB, bk, double)}

${vec4.c ? PUT_VEC4_WGSL : PUT_SCALAR_WGSL}

${gemmMainWgsl(tile, [...accs, ...regs], load, double ? mainLoopDouble : mainLoop, out)}
`);
  // A k-major tile's fallback is this kernel: the same name as its tile without the flag.
  const name = `gemm_${gemmTileName({ ...tile, kMajor: false })}_` +
    `${aKFast ? "ak" : "am"}${bKFast ? "bk" : "bn"}` +
    `${vec4.a ? "_a4" : ""}${vec4.b ? "_b4" : ""}${vec4.c ? "_c4" : ""}${unroll ? "" : "_loop"}`;
  return {
    name,
    bindings: ["uniform", "read", "read", "rw", "read", "read"],
    code: lines.join(""),
  };
}
