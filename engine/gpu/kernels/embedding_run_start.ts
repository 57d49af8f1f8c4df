/**
 * The first step of the tree update after the sort by row (embedding_sort_local.ts): for every
 * sorted key of a table, the position of the first key of its row (a binary search over the
 * sorted keys before it), so that the passes of `embedding_tree_pass` know each key's place in
 * its row's run.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Invocations per workgroup. */
export const EMBEDDING_RUN_START_WORKGROUP = 256;

/**
 * Uniform words: tables, p. Bindings: uniform, dir, offsets, keys, runStart (per table `p`
 * words, as the keys). Lanes (key, table); they stride over the keys when the dispatch is smaller.
 */
export const EMBEDDING_RUN_START: KernelSource = {
  name: "embedding_run_start",
  bindings: ["uniform", "read", "read", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, p: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read> keys: array<vec2u>;
@group(0) @binding(4) var<storage, read_write> runStart: array<u32>;

@compute @workgroup_size(${EMBEDDING_RUN_START_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let t = id.y;
  if (t >= g.tables) { return; }
  let ob = dir[t].y + it.s0;
  let n = offsets[ob + it.rows] - offsets[ob];
  let base = t * g.p;
  for (var i = id.x; i < n; i += nw.x * ${EMBEDDING_RUN_START_WORKGROUP}u) {
    let row = keys[base + i].x;
    var lo = 0u;
    var hi = i;
    while (lo < hi) {
      let mid = (lo + hi) / 2u;
      if (keys[base + mid].x < row) { lo = mid + 1u; } else { hi = mid; }
    }
    runStart[base + i] = lo;
  }
}
`,
};
