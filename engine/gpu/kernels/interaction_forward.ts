/**
 * DLRM's dot interaction without self-interaction: for each sample, R = [T0, Ti . Tj for
 * i = 1..F-1, j = 0..i-1], T holding F vectors of d floats per sample.
 *
 * Staged (where a sample's T fits in workgroup memory, see {@linkcode interactionStages}): one
 * workgroup per sample copies its T once with coalesced loads, rows padded to d + 1 floats so that
 * lanes on different vectors read different banks, and its lanes compute R's columns from there;
 * the per-column kernel read each of T's values from global memory 2(F - 1) times. Both sum each
 * dot product q ascending: the same R bit for bit.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Lanes of a staged interaction kernel's workgroup (one sample a workgroup). */
export const INTERACTION_LANES = 128;

/** Most floats the staged interaction kernels keep in workgroup memory (16 KiB: any adapter). */
const STAGE_LIMIT = 4096;

/** Workgroup memory (floats) of the staged kernels: T padded and dR, or null where they don't fit. */
export function interactionStages(f: number, d: number): { t: number; r: number } | null {
  const t = f * (d + 1), r = d + (f * (f - 1)) / 2;
  return t + r <= STAGE_LIMIT ? { t, r } : null;
}

/** WGSL: the interaction kernels' uniform block (vectors, width, T's and R's row strides). */
export const INTERACTION_UNIFORM_WGSL = /* wgsl */ `
${ITER_WGSL}
struct G { f: u32, d: u32, ldt: u32, ldr: u32 }
@group(0) @binding(0) var<uniform> g: G;`;

/** WGSL: pair p's vectors i > j (p = i (i - 1) / 2 + j). */
export const PAIR_OF_WGSL = /* wgsl */ `
fn pairOf(p: u32) -> vec2u {
  var i = u32(floor((1.0 + sqrt(1.0 + 8.0 * f32(p))) * 0.5));
  while (i * (i - 1u) / 2u > p) { i--; }
  while ((i + 1u) * i / 2u <= p) { i++; }
  return vec2u(i, p - i * (i - 1u) / 2u);
}
`;

/** WGSL: workgroup `w.y`'s sample's T into `ts` (rows of d + 1 floats); `main`'s opening. */
export function stageTWgsl(tFloats: number): string {
  return /* wgsl */ `var<workgroup> ts: array<f32, ${tFloats}>;

@compute @workgroup_size(${INTERACTION_LANES})
fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) li: u32) {
  let s = w.y;
  if (s >= it.rows) { return; }
  let tr = s * g.ldt;
  let d1 = g.d + 1u;
  for (var x = li; x < g.f * g.d; x += ${INTERACTION_LANES}u) {
    ts[(x / g.d) * d1 + x % g.d] = t[tr + x];
  }`;
}

/**
 * The forward interaction of `f` vectors of `d` floats: staged where it fits (dispatch 1 x rows
 * workgroups), else one invocation per (sample, column) (ceil(ldr / 64) x rows).
 */
export function interactionForwardKernel(
  f: number,
  d: number,
  staged = interactionStages(f, d) !== null,
): KernelSource {
  const stages = staged ? interactionStages(f, d) : null;
  const head = /* wgsl */ `${INTERACTION_UNIFORM_WGSL}
@group(0) @binding(1) var<storage, read> t: array<f32>;
@group(0) @binding(2) var<storage, read_write> r: array<f32>;
${PAIR_OF_WGSL}`;
  if (stages) {
    return {
      name: "interaction_forward",
      bindings: ["uniform", "read", "rw"],
      code: /* wgsl */ `${head}
${stageTWgsl(stages.t)}
  workgroupBarrier();
  // R's row is ldr floats, the output width rounded up to 4: the pad is left alone.
  for (var c = li; c < g.d + g.f * (g.f - 1u) / 2u; c += ${INTERACTION_LANES}u) {
    if (c < g.d) {
      r[s * g.ldr + c] = ts[c];
      continue;
    }
    let ij = pairOf(c - g.d);
    var acc = 0.0;
    for (var q = 0u; q < g.d; q++) { acc += ts[ij.x * d1 + q] * ts[ij.y * d1 + q]; }
    r[s * g.ldr + c] = acc;
  }
}
`,
    };
  }
  return {
    name: "interaction_forward_global",
    bindings: ["uniform", "read", "rw"],
    code: /* wgsl */ `${head}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let c = id.x;
  let s = id.y;
  // R's row is ldr floats, the output width rounded up to 4: the pad is left alone.
  if (c >= g.d + g.f * (g.f - 1u) / 2u || s >= it.rows) { return; }
  let tr = s * g.ldt;
  if (c < g.d) {
    r[s * g.ldr + c] = t[tr + c];
    return;
  }
  let ij = pairOf(c - g.d);
  var acc = 0.0;
  for (var q = 0u; q < g.d; q++) { acc += t[tr + ij.x * g.d + q] * t[tr + ij.y * g.d + q]; }
  r[s * g.ldr + c] = acc;
}
`,
  };
}
