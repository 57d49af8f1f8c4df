/**
 * The last step of the tree update: the lane of each row's first sorted key applies the row's
 * summed gradient that the passes of `embedding_tree_pass` left there, once: w -= lr * S. One
 * dispatch per arena group (rows of other groups are skipped).
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { ITER_WGSL } from "./iter.ts";

/** Invocations per workgroup. */
export const EMBEDDING_TREE_APPLY_WORKGROUP = 256;

/**
 * The apply kernel over `k` bound arenas. Uniform words: tables, d, p, arena0, arenas.
 * Bindings: uniform, dir, segs, offsets, keys, sums, arenas. Lanes (key, column) of each table.
 */
export function embeddingTreeApplyKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read", "read"];
  for (let i = 0; i < k; i++) bindings.push("rw");
  return {
    name: `embedding_tree_apply_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, d: u32, p: u32, arena0: u32, arenas: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> segs: array<vec4u>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read> keys: array<vec2u>;
@group(0) @binding(5) var<storage, read> sums: array<f32>;
${arenaWgsl(k, 6, true)}

@compute @workgroup_size(${EMBEDDING_TREE_APPLY_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let t = id.y;
  if (t >= g.tables) { return; }
  let info = dir[t];
  let ob = info.y + it.s0;
  let n = offsets[ob + it.rows] - offsets[ob];
  let base = t * g.p;
  for (var x = id.x; x < n * g.d; x += nw.x * ${EMBEDDING_TREE_APPLY_WORKGROUP}u) {
    let i = x / g.d;
    let q = x % g.d;
    let row = keys[base + i].x;
    if (i > 0u && keys[base + i - 1u].x == row) { continue; }
    let seg = segmentOf(info.z, info.w, row);
    if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { continue; }
    let local = seg.z - g.arena0;
    let p = seg.w + (row - seg.x) * g.d + q;
    arenaWrite(local, p, arenaRead(local, p) - it.lr * sums[(base + i) * g.d + q]);
  }
}
`,
  };
}
