/**
 * The dot interaction and its gradient with register tiles, for vector widths that are a multiple
 * of 4 (both of the paper's models): each lane computes a 4 x 4 block of outputs from vec4 loads,
 * so a value of T is loaded once per block of 4 outputs that use it instead of once per output,
 * and no lane computes pair indices per term. The staged kernels (`interaction_forward.ts`,
 * `interaction_backward.ts`) ran one sample a 128-lane workgroup, each output a chain of scalar
 * workgroup-memory loads: on an H200 at Terabyte b16384 they took 0.35 and 1.03 ms against a
 * memory floor of ~0.04 and ~0.07 ms.
 *
 * Both kernels keep a workgroup's rows of R (forward) or dR (backward) in workgroup memory and move
 * them between there and global memory as whole vec4s, coalesced: the forward's lanes write their
 * blocks' dot products there and the workgroup writes the rows out; the backward's lanes read S
 * (dR's pair gradients) there by pair index. The previous forward wrote each dot product to R
 * with a scalar store (16 scattered stores a lane), the previous backward built S as a padded
 * F x F matrix from scattered scalar loads of dR: on an H200 at Kaggle b16384 (2026-12-03) the
 * forward took 65.1 µs and now 43.5, the backward 181.6 and now 85.5 (b2048: 11.8 -> 8.0 and 20.2
 * -> 13.6; Terabyte b2048: 22.3 -> 19.2 and 28.4 -> 25.4), the same outputs bit for bit.
 *
 * Same sums in the same order as the staged and global kernels, so the same bits: each dot
 * product of the forward sums q ascending from 0; each value of dT starts from dR's copy of T0's
 * gradient (vector 0) or 0 and adds the pair terms u ascending, skipping u = v. R's rows (`ldr`
 * floats) must be a multiple of 4 floats and hold d + F (F - 1) / 2 (rounded up to 4); the pad
 * past d + F (F - 1) / 2 keeps its value.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { INTERACTION_UNIFORM_WGSL } from "./interaction_forward.ts";

/** Lanes of a tiled interaction kernel's workgroup. */
export const INTERACTION_TILED_LANES = 128;
/** Most bytes of workgroup memory the tiled kernels stage (any adapter has 16 KiB). */
const STAGE_BYTES = 16384;
/** Most lanes the tiled forward gives one sample (a warp on NVIDIA). */
const FORWARD_SAMPLE_LANES = 32;

const FOUR = [0, 1, 2, 3];

/** How the tiled kernels split a batch: samples per workgroup of each, or null where they don't apply. */
export interface InteractionTiling {
  /** Samples per workgroup of the forward kernel. */
  forwardSamples: number;
  /** Samples per workgroup of the backward kernel. */
  backwardSamples: number;
}

/** Vec4s of R's row the tiled kernels stage: d + F (F - 1) / 2 floats, rounded up. */
export function interactionRowVec4s(f: number, d: number): number {
  return Math.ceil((d + (f * (f - 1)) / 2) / 4);
}

/**
 * The tiling of `f` vectors of `d` floats with R's rows `ldr` floats apart (default: the row
 * rounded up to 4 floats), or null (d or ldr not a multiple of 4, or a row past 16 KiB).
 */
export function interactionTiling(
  f: number,
  d: number,
  ldr = 4 * interactionRowVec4s(f, d),
): InteractionTiling | null {
  if (d % 4 !== 0 || f < 2 || ldr % 4 !== 0 || ldr < 4 * interactionRowVec4s(f, d)) return null;
  const rowBytes = 16 * interactionRowVec4s(f, d);
  const rowsFit = Math.floor(STAGE_BYTES / rowBytes);
  if (rowsFit === 0) return null;
  // As many samples as fill the workgroup's lanes and whose rows fit its memory.
  const perSample = backwardLanes(f, d);
  const backwardSamples = Math.min(
    Math.max(1, Math.floor(INTERACTION_TILED_LANES / perSample)),
    rowsFit,
  );
  return { forwardSamples: forwardSamplesFitting(rowBytes), backwardSamples };
}

/**
 * Samples a forward workgroup takes when each needs `bytes` of workgroup memory: as many as fit
 * 16 KiB, at most one per 32 lanes, a power of two (they share the lanes in equal parts); 0 where
 * one does not fit.
 */
function forwardSamplesFitting(bytes: number): number {
  const fit = Math.min(
    INTERACTION_TILED_LANES / FORWARD_SAMPLE_LANES,
    Math.floor(STAGE_BYTES / bytes),
  );
  return fit === 0 ? 0 : 2 ** Math.floor(Math.log2(fit));
}

/** Blocks of 4 x 4 values of dT in one sample (a lane each). */
function backwardLanes(f: number, d: number): number {
  return Math.ceil(f / 4) * (d / 4);
}

/** WGSL: i (i - 1) / 2, the first pair of vector i. */
function tri(i: string): string {
  return `((${i}) * ((${i}) - 1u) / 2u)`;
}

/**
 * The tiled forward: a sample's lanes compute the lower-triangle blocks of its F x F Gram matrix
 * (blocks of vectors 4i..4i+3 against 4j..4j+3, j <= i), a block a lane in turn, and write the
 * pairs i > j of each into the sample's row of R in workgroup memory, beside T0's copy; the
 * workgroup then writes its rows out as vec4s. Dispatch 1 x ceil(rows / forwardSamples)
 * workgroups. (A variant that first copied its samples' T into workgroup memory, each vector
 * padded against bank conflicts, ran 1.3-1.8x slower on an H200 and was removed.)
 */
export function interactionForwardTiledKernel(f: number, d: number): KernelSource {
  const tiling = interactionTiling(f, d);
  if (!tiling) throw new RangeError(`interaction: no tiled kernel for ${f} vectors of ${d} floats`);
  const blocks = Math.ceil(f / 4);
  const tiles = (blocks * (blocks + 1)) / 2;
  const samples = tiling.forwardSamples;
  const lanes = INTERACTION_TILED_LANES / samples;
  const groupLanes = samples * lanes;
  const d4 = d / 4;
  const rv = interactionRowVec4s(f, d), rf = 4 * rv;
  // Block (i, j) of each tile as i * 256 + j, the lower triangle row by row.
  const tileBlocks: string[] = [];
  for (let bi = 0; bi < blocks; bi++) {
    for (let bj = 0; bj <= bi; bj++) tileBlocks.push(`${bi * 256 + bj}u`);
  }
  const loads = (side: string) =>
    FOUR.map((a) => `let ${side}${a} = t[${side}${a}Base + q4];`).join("\n        ");
  // Where vector v of the sample starts in T (in vec4s).
  const vectorAt = (v: string) => `tr + ${v} * ${d4}u`;
  const fmas = FOUR.map((qq) =>
    [
      `{ let tj = vec4f(tj0[${qq}], tj1[${qq}], tj2[${qq}], tj3[${qq}]);`,
      ...FOUR.map((a) => `a${a} += ti${a}[${qq}] * tj;`),
      `}`,
    ].join(" ")
  ).join("\n        ");
  const writes = FOUR.map((a) =>
    FOUR.map((b) =>
      `if (i0 + ${a}u < ${f}u && j0 + ${b}u < i0 + ${a}u) {
        rs[pairs + ${tri(`i0 + ${a}u`)} + j0 + ${b}u] = a${a}[${b}];
      }`
    ).join("\n      ")
  ).join("\n      ");
  return {
    name: "interaction_forward_tiled",
    bindings: ["uniform", "read", "rw"],
    code: /* wgsl */ `${INTERACTION_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> t: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> r: array<vec4f>;
// The workgroup's rows of R: T0's copy, then the pairs, then the pad as read from R.
var<workgroup> rs: array<f32, ${samples * rf}>;
const TILE_BLOCKS = array<u32, ${tiles}>(${tileBlocks.join(", ")});

@compute @workgroup_size(${groupLanes})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) li: u32) {
  let sl = li / ${lanes}u;
  let s = w.y * ${samples}u + sl;
  let l = li % ${lanes}u;
  let tr = s * (g.ldt / 4u);
  let rb = sl * ${rf}u;
  if (s < it.rows) {
    if (l == 0u) {
      let v = r[s * (g.ldr / 4u) + ${rv - 1}u];
      ${FOUR.map((c) => `rs[rb + ${4 * (rv - 1) + c}u] = v[${c}];`).join("\n      ")}
    }
    for (var x = l; x < ${d4}u; x += ${lanes}u) {
      let v = t[tr + x];
      ${FOUR.map((c) => `rs[rb + 4u * x + ${c}u] = v[${c}];`).join("\n      ")}
    }
    let pairs = rb + ${d}u;
    for (var tile = l; tile < ${tiles}u; tile += ${lanes}u) {
      let ij = TILE_BLOCKS[tile];
      let i0 = 4u * (ij >> 8u);
      let j0 = 4u * (ij & 255u);
      // Rows past the last vector read the last one; their sums are not written.
      ${
      FOUR.map((a) => `let ti${a}Base = ${vectorAt(`min(i0 + ${a}u, ${f - 1}u)`)};`).join(
        "\n      ",
      )
    }
      ${
      FOUR.map((b) => `let tj${b}Base = ${vectorAt(`min(j0 + ${b}u, ${f - 1}u)`)};`).join(
        "\n      ",
      )
    }
      ${FOUR.map((a) => `var a${a} = vec4f(0.0);`).join("\n      ")}
      for (var q4 = 0u; q4 < ${d4}u; q4++) {
        ${loads("ti")}
        ${loads("tj")}
        ${fmas}
      }
      ${writes}
    }
  }
  workgroupBarrier();
  for (var x = li; x < ${samples * rv}u; x += ${groupLanes}u) {
    let xs = x / ${rv}u;
    let c4 = x % ${rv}u;
    let so = w.y * ${samples}u + xs;
    if (so < it.rows) {
      let q = xs * ${rf}u + 4u * c4;
      r[so * (g.ldr / 4u) + c4] = vec4f(rs[q], rs[q + 1u], rs[q + 2u], rs[q + 3u]);
    }
  }
}
`,
  };
}

/**
 * The tiled backward: dT = S T per sample, S the symmetric F x F matrix of dR's pair gradients
 * (zero diagonal), read from the sample's row of dR staged in workgroup memory; each lane
 * computes a block of 4 vectors x 4 floats of dT, its u loop in three parts so that only the
 * block's own 4 vectors (the diagonal) test u = v. Dispatch 1 x ceil(rows / backwardSamples)
 * workgroups.
 */
export function interactionBackwardTiledKernel(f: number, d: number): KernelSource {
  const tiling = interactionTiling(f, d);
  if (!tiling) throw new RangeError(`interaction: no tiled kernel for ${f} vectors of ${d} floats`);
  const d4 = d / 4;
  const perSample = backwardLanes(f, d);
  const samples = tiling.backwardSamples;
  // One sample a workgroup: its lanes stride over the blocks; else perSample lanes each.
  const stride = samples === 1 ? INTERACTION_TILED_LANES : perSample;
  const rv = interactionRowVec4s(f, d), rf = 4 * rv;
  // One sample a workgroup (wide vectors): its T staged too where it fits beside dR's row (on an
  // H200 at Terabyte b16384 218 -> 185 µs; with several samples a workgroup, Kaggle's, slower).
  const stageT = samples === 1 && 4 * rf + 16 * f * d4 <= STAGE_BYTES;
  const tu = stageT ? `ts[u * ${d4}u + bq]` : `t[tr + u * ${d4}u + bq]`;
  const diagonal = FOUR.map((a) =>
    `{
        let v = min(v0 + ${a}u, ${f - 1}u);
        let sv = ps[p + ${tri("max(u, v)")} + min(u, v)];
        a${a} = select(a${a} + sv * tu, a${a}, u == v0 + ${a}u);
      }`
  ).join("\n      ");
  return {
    name: "interaction_backward_tiled",
    bindings: ["uniform", "read", "read", "rw"],
    code: /* wgsl */ `${INTERACTION_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> t: array<vec4f>;
@group(0) @binding(2) var<storage, read> dr: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> dt: array<vec4f>;
// The workgroup's rows of dR: T0's gradient, then the pairs' (S off the diagonal).
var<workgroup> ps: array<f32, ${samples * rf}>;
${stageT ? `var<workgroup> ts: array<vec4f, ${f * d4}>;` : ""}

@compute @workgroup_size(${INTERACTION_TILED_LANES})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) li: u32) {
  for (var x = li; x < ${samples * rv}u; x += ${INTERACTION_TILED_LANES}u) {
    let s = w.y * ${samples}u + x / ${rv}u;
    if (s < it.rows) {
      let v = dr[s * (g.ldr / 4u) + x % ${rv}u];
      ${FOUR.map((c) => `ps[4u * x + ${c}u] = v[${c}];`).join("\n      ")}
    }
  }
  ${
      stageT
        ? `for (var x = li; x < ${f * d4}u; x += ${INTERACTION_TILED_LANES}u) {
    if (w.y < it.rows) { ts[x] = t[w.y * (g.ldt / 4u) + x]; }
  }`
        : ""
    }
  workgroupBarrier();
  let sl = li / ${stride}u;
  let s = w.y * ${samples}u + sl;
  if (sl >= ${samples}u || s >= it.rows) { return; }
  let tr = s * (g.ldt / 4u);
  let base = sl * ${rf}u;
  let p = base + ${d}u;
  for (var blk = li % ${stride}u; blk < ${perSample}u; blk += ${stride}u) {
    let bv = blk / ${d4}u;
    let bq = blk % ${d4}u;
    let v0 = 4u * bv;
    // A zero the compiler cannot see (\`it.zero\`): 0 + x for a known 0 may be folded to x,
    // which keeps x = -0 where the sum is +0.
    let zero = vec4f(bitcast<f32>(it.zero));
    ${FOUR.map((a) => `var a${a} = zero;`).join("\n    ")}
    if (bv == 0u) {
      let q = base + 4u * bq;
      a0 = vec4f(ps[q], ps[q + 1u], ps[q + 2u], ps[q + 3u]);
    }
    // u < v0: S[v0 + a][u] is pair (v0 + a, u). Vectors past the last read the last one's
    // pairs; their sums are not written.
    ${FOUR.map((a) => `let r${a} = p + ${tri(`min(v0 + ${a}u, ${f - 1}u)`)};`).join("\n    ")}
    for (var u = 0u; u < v0; u++) {
      let tu = ${tu};
      ${FOUR.map((a) => `a${a} = a${a} + ps[r${a} + u] * tu;`).join("\n      ")}
    }
    for (var u = v0; u < min(v0 + 4u, ${f}u); u++) {
      let tu = ${tu};
      ${diagonal}
    }
    // u > v0 + 3: S[v0 + a][u] is pair (u, v0 + a).
    for (var u = v0 + 4u; u < ${f}u; u++) {
      let tu = ${tu};
      let q = p + ${tri("u")} + v0;
      ${FOUR.map((a) => `a${a} = a${a} + ps[q + ${a}u] * tu;`).join("\n      ")}
    }
    // Vector 0 is the bottom MLP's ReLU output: its gradient passes where it was positive.
    if (bv == 0u) { a0 = select(vec4f(0.0), a0, t[tr + bq] > vec4f(0.0)); }
    ${
      FOUR.map((a) => `if (v0 + ${a}u < ${f}u) { dt[tr + (v0 + ${a}u) * ${d4}u + bq] = a${a}; }`)
        .join("\n    ")
    }
  }
}
`,
  };
}
