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
import { SORTED_UPDATE_INPUTS_WGSL, sortedRowOwnerWgsl } from "./row_owner.ts";

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
${SORTED_UPDATE_INPUTS_WGSL}
@group(0) @binding(5) var<storage, read> dt: array<f32>;
${arenaWgsl(k, 6, true)}

${sortedRowOwnerWgsl(EMBEDDING_UPDATE_SORTED_WORKGROUP)}
    var tree = Tree(); // zeroed on every row (see embedding_tree_pass.ts)
    for (var ii = i; ii < n; ii++) {
      let key = keys[base + ii];
      if (key.x != row) { break; }
      treePush(&tree, dt[key.y * g.ldt + (t + 1u) * g.d + q]);
    }
    arenaWrite(local, p, arenaRead(local, p) - unfused(it.lr * treeSum(&tree)));
  }
}
`,
  };
}
