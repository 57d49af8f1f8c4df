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
import { SORTED_KEYS_WGSL, TABLE_KEYS_WGSL } from "./row_owner.ts";

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
${SORTED_KEYS_WGSL}
@group(0) @binding(4) var<storage, read_write> runStart: array<u32>;

@compute @workgroup_size(${EMBEDDING_RUN_START_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let t = id.y;
  if (t >= g.tables) { return; }
  ${TABLE_KEYS_WGSL}
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
