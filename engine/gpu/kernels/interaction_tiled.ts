/**
 * The dot interaction and its gradient with register tiles, for vector widths that are a multiple
 * of 4 (both of the paper's models): each lane computes a 4 x 4 block of outputs from vec4 loads,
 * so a value of T is loaded once per block of 4 outputs that use it instead of once per output,
 * and no lane computes pair indices per term. The staged kernels (`interaction_forward.ts`,
 * `interaction_backward.ts`) ran one sample a 128-lane workgroup, each output a chain of scalar
 * workgroup-memory loads: on an H200 at Terabyte b16384 they took 0.35 and 1.03 ms against a
 * memory floor of ~0.04 and ~0.07 ms.
 *
 * Same sums in the same order as the staged and global kernels, so the same bits: each dot
 * product of the forward sums q ascending from 0; each value of dT starts from dR's copy of T0's
 * gradient (vector 0) or 0 and adds the pair terms u ascending, skipping u = v.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { INTERACTION_UNIFORM_WGSL } from "./interaction_forward.ts";

/** Lanes of a tiled interaction kernel's workgroup. */
export const INTERACTION_TILED_LANES = 128;
/** Lanes the tiled forward gives one sample (a warp on NVIDIA): 4 samples a workgroup. */
const FORWARD_SAMPLE_LANES = 32;
/** Most bytes of workgroup memory the tiled backward stages (any adapter has 16 KiB). */
const STAGE_BYTES = 16384;

const FOUR = [0, 1, 2, 3];

/** How the tiled kernels split a batch: samples per workgroup of each, or null where they don't apply. */
export interface InteractionTiling {
  /** Samples per workgroup of the forward kernel. */
  forwardSamples: number;
  /** Samples per workgroup of the backward kernel. */
  backwardSamples: number;
}

/** The tiling of `f` vectors of `d` floats, or null (d not a multiple of 4, or S too large). */
export function interactionTiling(f: number, d: number): InteractionTiling | null {
  if (d % 4 !== 0 || f < 2) return null;
  const padded = Math.ceil(f / 4) * 4;
  const perSample = backwardLanes(f, d);
  // As many samples as fill the workgroup's lanes and whose S fit its memory.
  const backwardSamples = Math.min(
    Math.max(1, Math.floor(INTERACTION_TILED_LANES / perSample)),
    Math.floor(STAGE_BYTES / (padded * padded * 4)),
  );
  if (backwardSamples === 0) return null;
  return { forwardSamples: INTERACTION_TILED_LANES / FORWARD_SAMPLE_LANES, backwardSamples };
}

/** Blocks of 4 x 4 values of dT in one sample (a lane each). */
function backwardLanes(f: number, d: number): number {
  return Math.ceil(f / 4) * (d / 4);
}

/**
 * The tiled forward: lane l of a sample's 32 computes the lower-triangle blocks l, l + 32, ... of
 * the F x F Gram matrix (blocks of vectors 4i..4i+3 against 4j..4j+3, j <= i) and writes the pairs
 * i > j of each; the first lanes copy T0. Dispatch 1 x ceil(rows / forwardSamples) workgroups.
 */
export function interactionForwardTiledKernel(f: number, d: number): KernelSource {
  if (!interactionTiling(f, d)) {
    throw new RangeError(`interaction: no tiled kernel for ${f} vectors of ${d} floats`);
  }
  const blocks = Math.ceil(f / 4);
  const tiles = (blocks * (blocks + 1)) / 2;
  const samples = INTERACTION_TILED_LANES / FORWARD_SAMPLE_LANES;
  const loads = (side: string) =>
    FOUR.map((a) => `let ${side}${a} = t[${side}${a}Base + q4];`).join("\n      ");
  const fmas = FOUR.map((qq) =>
    [
      `{ let tj = vec4f(tj0[${qq}], tj1[${qq}], tj2[${qq}], tj3[${qq}]);`,
      ...FOUR.map((a) => `a${a} += ti${a}[${qq}] * tj;`),
      `}`,
    ].join(" ")
  ).join("\n      ");
  const writes = FOUR.map((a) =>
    FOUR.map((b) =>
      `if (i0 + ${a}u < g.f && j0 + ${b}u < i0 + ${a}u) {
      r[pairs + (i0 + ${a}u) * (i0 + ${a}u - 1u) / 2u + j0 + ${b}u] = a${a}[${b}];
    }`
    ).join("\n    ")
  ).join("\n    ");
  return {
    name: "interaction_forward_tiled",
    bindings: ["uniform", "read", "rw"],
    code: /* wgsl */ `${INTERACTION_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> t: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> r: array<f32>;

@compute @workgroup_size(${INTERACTION_TILED_LANES})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) li: u32) {
  let s = w.y * ${samples}u + li / ${FORWARD_SAMPLE_LANES}u;
  let l = li % ${FORWARD_SAMPLE_LANES}u;
  if (s >= it.rows) { return; }
  let d4 = g.d / 4u;
  let tr = s * (g.ldt / 4u);
  let rr = s * g.ldr;
  // R's row is ldr floats, the output width rounded up to 4: the pad is left alone.
  for (var x = l; x < d4; x += ${FORWARD_SAMPLE_LANES}u) {
    let v = t[tr + x];
    for (var c = 0u; c < 4u; c++) { r[rr + 4u * x + c] = v[c]; }
  }
  let pairs = rr + g.d;
  for (var tile = l; tile < ${tiles}u; tile += ${FORWARD_SAMPLE_LANES}u) {
    var bi = 0u;
    var bj = tile;
    while (bj > bi) { bi++; bj -= bi; }
    let i0 = 4u * bi;
    let j0 = 4u * bj;
    // Rows past the last vector read the last one; their sums are not written.
    ${FOUR.map((a) => `let ti${a}Base = tr + min(i0 + ${a}u, g.f - 1u) * d4;`).join("\n    ")}
    ${FOUR.map((b) => `let tj${b}Base = tr + min(j0 + ${b}u, g.f - 1u) * d4;`).join("\n    ")}
    ${FOUR.map((a) => `var a${a} = vec4f(0.0);`).join("\n    ")}
    for (var q4 = 0u; q4 < d4; q4++) {
      ${loads("ti")}
      ${loads("tj")}
      ${fmas}
    }
    ${writes}
  }
}
`,
  };
}

/**
 * The tiled backward: dT = S T per sample, S the symmetric F x F matrix of dR's pair gradients
 * (zero diagonal), staged in workgroup memory as rows of vec4; each lane computes a block of 4
 * vectors x 4 floats of dT. Dispatch 1 x ceil(rows / backwardSamples) workgroups.
 */
export function interactionBackwardTiledKernel(f: number, d: number): KernelSource {
  const tiling = interactionTiling(f, d);
  if (!tiling) {
    throw new RangeError(`interaction: no tiled kernel for ${f} vectors of ${d} floats`);
  }
  const blocks = Math.ceil(f / 4);
  const padded = blocks * 4;
  const perSample = backwardLanes(f, d);
  const samples = tiling.backwardSamples;
  // One sample a workgroup: its lanes stride over the blocks; else perSample lanes each.
  const stride = samples === 1 ? INTERACTION_TILED_LANES : perSample;
  const terms = FOUR.map((a) => `a${a} = select(a${a} + sv[${a}] * tu, a${a}, u == v0 + ${a}u);`)
    .join("\n      ");
  const writes = FOUR.map((a) =>
    `if (v0 + ${a}u < g.f) { dt[tr + (v0 + ${a}u) * d4 + bq] = a${a}; }`
  ).join("\n    ");
  // S[u][v0 + c] = dR's pair (max, min) of u and v0 + c; 0 on the diagonal and past F.
  const stageS = FOUR.map((c) =>
    `if (v0 + ${c}u < g.f && v0 + ${c}u != u) {
        let i = max(u, v0 + ${c}u);
        row[${c}] = dr[pairs + i * (i - 1u) / 2u + min(u, v0 + ${c}u)];
      }`
  ).join("\n      ");
  return {
    name: "interaction_backward_tiled",
    bindings: ["uniform", "read", "read", "rw"],
    code: /* wgsl */ `${INTERACTION_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> t: array<vec4f>;
@group(0) @binding(2) var<storage, read> dr: array<f32>;
@group(0) @binding(3) var<storage, read_write> dt: array<vec4f>;
// Per sample of the workgroup, S's rows u of ${blocks} vec4s (columns v, padded to ${padded}).
var<workgroup> ss: array<vec4f, ${samples * padded * blocks}>;

@compute @workgroup_size(${INTERACTION_TILED_LANES})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) li: u32) {
  // A vec4 of S a lane at a time (a store of a vector's component by a computed index was the
  // costliest part of the kernel at d = 16).
  for (var x = li; x < ${samples * padded * blocks}u; x += ${INTERACTION_TILED_LANES}u) {
    let sl = x / ${padded * blocks}u;
    let u = (x / ${blocks}u) % ${padded}u;
    let v0 = 4u * (x % ${blocks}u);
    let s = w.y * ${samples}u + sl;
    var row = vec4f(0.0);
    if (s < it.rows && u < g.f) {
      let pairs = s * g.ldr + g.d;
      ${stageS}
    }
    ss[x] = row;
  }
  workgroupBarrier();
  let sl = li / ${stride}u;
  let s = w.y * ${samples}u + sl;
  if (sl >= ${samples}u || s >= it.rows) { return; }
  let d4 = g.d / 4u;
  let tr = s * (g.ldt / 4u);
  for (var blk = li % ${stride}u; blk < ${perSample}u; blk += ${stride}u) {
    let bv = blk / d4;
    let bq = blk % d4;
    let v0 = 4u * bv;
    ${FOUR.map((a) => `var a${a} = vec4f(0.0);`).join("\n    ")}
    if (bv == 0u) {
      let q = s * g.ldr + 4u * bq;
      a0 = vec4f(dr[q], dr[q + 1u], dr[q + 2u], dr[q + 3u]);
    }
    for (var u = 0u; u < g.f; u++) {
      let tu = t[tr + u * d4 + bq];
      let sv = ss[(sl * ${padded}u + u) * ${blocks}u + bv];
      ${terms}
    }
    // Vector 0 is the bottom MLP's ReLU output: its gradient passes where it was positive.
    if (bv == 0u) { a0 = select(vec4f(0.0), a0, t[tr + bq] > vec4f(0.0)); }
    ${writes}
  }
}
`,
  };
}
