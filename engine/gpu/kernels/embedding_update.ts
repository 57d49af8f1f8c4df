/**
 * Sparse SGD of the embedding tables, deterministic and without atomics: for each table and each
 * index of the batch, the invocation of the first occurrence of a row "owns" it, sums in index
 * order every gradient of the batch that falls on that row, in the pairwise-tree order both
 * engines share (pairwise_tree.ts), and applies the sum once (w -= lr * S); later occurrences
 * return. The CPU engine's order, so duplicates in a batch give the same result on any device.
 * Cost: each invocation scans the batch's indices of its table (O(B^2) per table): the engine's
 * path for small batches; larger ones sort the indices by row first (embedding_sort_local.ts,
 * embedding_tree_pass.ts).
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { BAG_OF_WGSL } from "./bags.ts";
import { ITER_WGSL } from "./iter.ts";
import { pairwiseTreeWgsl } from "./pairwise_tree.ts";
import { ROW_OWNER_MAIN_WGSL, UPDATE_INPUTS_WGSL } from "./row_owner.ts";

/** The update kernel over `k` bound arenas. */
export function embeddingUpdateKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read", "read"];
  for (let i = 0; i < k; i++) bindings.push("rw");
  return {
    name: `embedding_update_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
${BAG_OF_WGSL}
${pairwiseTreeWgsl()}
struct G { tables: u32, d: u32, ldt: u32, flags: u32, arena0: u32, arenas: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
${UPDATE_INPUTS_WGSL}
${arenaWgsl(k, 6, true)}

${ROW_OWNER_MAIN_WGSL}
  var tree: Tree;
  for (var jj = j; jj < b; jj++) {
    if (entryRow(jj) != row) { continue; }
    let lo = entryBag(jj);
    treePush(&tree, dt[lo * g.ldt + (tb + 1u) * g.d + q]);
  }
  arenaWrite(local, p, arenaRead(local, p) - unfused(it.lr * treeSum(&tree)));
}
`,
  };
}
