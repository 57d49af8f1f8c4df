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
import { SORTED_UPDATE_INPUTS_WGSL, sortedRowOwnerWgsl } from "./row_owner.ts";

/** Invocations per workgroup. */
export const EMBEDDING_TREE_APPLY_WORKGROUP = 256;

/**
 * The apply kernel over `k` bound arenas. Uniform words: tables, d, ldt (unused), p, arena0,
 * arenas. Bindings: uniform, dir, segs, offsets, keys, sums, arenas. Lanes (key, column) of each
 * table.
 */
export function embeddingTreeApplyKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read", "read"];
  for (let i = 0; i < k; i++) bindings.push("rw");
  return {
    name: `embedding_tree_apply_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
${SORTED_UPDATE_INPUTS_WGSL}
@group(0) @binding(5) var<storage, read> sums: array<f32>;
${arenaWgsl(k, 6, true)}

${sortedRowOwnerWgsl(EMBEDDING_TREE_APPLY_WORKGROUP)}
    arenaWrite(local, p, arenaRead(local, p) - unfused(it.lr * sums[(base + i) * g.d + q]));
  }
}
`,
  };
}
