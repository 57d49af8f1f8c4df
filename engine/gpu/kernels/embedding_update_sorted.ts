/**
 * Sparse SGD of the embedding tables from the batch's indices sorted by row (the keys of
 * embedding_sort_local.ts): lanes (i, q) of table t; the lane of the first key of a row owns it,
 * sums every gradient of the batch that falls on the row in the pairwise-tree order
 * (pairwise_tree.ts) one key after another, and applies the sum once (w -= lr * S). The same
 * sums as embedding_update.ts and the CPU engine, without atomics, in O(B) per table after the
 * sort instead of O(B^2), but a row of n occurrences takes n steps of one lane. Lanes stride
 * over the table's keys when the dispatch is smaller.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { ITER_WGSL } from "./iter.ts";
import { pairwiseTreeWgsl } from "./pairwise_tree.ts";

/** Invocations per workgroup. */
export const EMBEDDING_UPDATE_SORTED_WORKGROUP = 256;

/**
 * The sorted update over `k` bound arenas. Uniform words: tables, d, ldt, p, arena0, arenas.
 * Bindings: uniform, dir, segs, offsets, keys, dT, arenas.
 */
export function embeddingUpdateSortedKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read", "read"];
  for (let i = 0; i < k; i++) bindings.push("rw");
  return {
    name: `embedding_update_sorted_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
${pairwiseTreeWgsl()}
struct G { tables: u32, d: u32, ldt: u32, p: u32, arena0: u32, arenas: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> segs: array<vec4u>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read> keys: array<vec2u>;
@group(0) @binding(5) var<storage, read> dt: array<f32>;
${arenaWgsl(k, 6, true)}

@compute @workgroup_size(${EMBEDDING_UPDATE_SORTED_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let t = id.y;
  if (t >= g.tables) { return; }
  let info = dir[t];
  let ob = info.y + it.s0;
  let n = offsets[ob + it.rows] - offsets[ob];
  let base = t * g.p;
  let stride = nw.x * ${EMBEDDING_UPDATE_SORTED_WORKGROUP}u;
  for (var x = id.x; x < n * g.d; x += stride) {
    let i = x / g.d;
    let q = x % g.d;
    let row = keys[base + i].x;
    if (i > 0u && keys[base + i - 1u].x == row) { continue; }
    let seg = segmentOf(info.z, info.w, row);
    if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { continue; }
    let local = seg.z - g.arena0;
    let p = seg.w + (row - seg.x) * g.d + q;
    var tree: Tree;
    for (var ii = i; ii < n; ii++) {
      let key = keys[base + ii];
      if (key.x != row) { break; }
      treePush(&tree, dt[key.y * g.ldt + (t + 1u) * g.d + q]);
    }
    arenaWrite(local, p, arenaRead(local, p) - it.lr * treeSum(&tree));
  }
}
`,
  };
}
