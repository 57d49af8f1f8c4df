/**
 * Data-parallel training: the global embedding update applied to the tables, exactly as
 * `applyGlobalGradients` of `comm/compression.ts` applies it in JavaScript: per global row
 * `(table, row)` and column q, `w = fround(w - delta)` with the float64 `delta` the host computed
 * (`globalRowDeltas`), the subtraction rounded to float64 first (`exact_f32.ts`'s `subF64Rn`).
 * The rows are distinct, so lanes (entry, column) write without conflicts. One dispatch per
 * arena group; a row in another group's arenas is left to that group's dispatch.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { EXACT_F32_WGSL } from "./exact_f32.ts";

/**
 * The update over `k` bound arenas. Uniform words: entries, d, arena0, arenas. Bindings:
 * uniform, dir, segs, entries (table, row), deltas (float64 bits lo, hi), arenas.
 */
export function gradApplyRowsKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read"];
  for (let i = 0; i < k; i++) bindings.push("rw");
  return {
    name: `grad_apply_rows_${k}`,
    bindings,
    code: /* wgsl */ `
${EXACT_F32_WGSL}
struct G { entries: u32, d: u32, arena0: u32, arenas: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> segs: array<vec4u>;
@group(0) @binding(3) var<storage, read> rows: array<vec2u>;
@group(0) @binding(4) var<storage, read> deltas: array<vec2u>;
${arenaWgsl(k, 5, true)}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  for (var x = id.x; x < g.entries * g.d; x += nw.x * 256u) {
    let e = rows[x / g.d];
    let info = dir[e.x];
    let seg = segmentOf(info.z, info.w, e.y);
    if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { continue; }
    let local = seg.z - g.arena0;
    let p = seg.w + (e.y - seg.x) * g.d + x % g.d;
    let delta = deltas[x];
    arenaWrite(local, p, subF64Rn(arenaRead(local, p), delta.x, delta.y));
  }
}
`,
  };
}
