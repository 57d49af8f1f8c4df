/**
 * The last step of the tree update: each row's first sorted key applies the row's summed
 * gradient once, w -= lr * S. A run of at most FAN keys is summed here, straight from dT through
 * the pairwise-tree counter (the sum the first pass would have left: most rows of a batch occur
 * once or a few times, so they skip the passes); a longer one's sum is the one the passes of
 * `embedding_tree_pass` left at its first key. One dispatch per arena group (rows of other
 * groups are skipped). Lanes are per key (tree_work_list.ts): a row's first key in the group
 * becomes items (row, vec4 of columns) where the width is a multiple of 4, else (row, column).
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { ITER_WGSL } from "./iter.ts";
import { pairwiseTreeWgsl } from "./pairwise_tree.ts";
import { SORTED_UPDATE_INPUTS_WGSL } from "./row_owner.ts";
import { EMBEDDING_TREE_FAN } from "./embedding_tree_pass.ts";
import { treeWorkListMainWgsl } from "./tree_work_list.ts";

/**
 * Keys a workgroup of the apply checks: a quarter of its lanes, so that when every key starts a
 * row, d / 4 vectors of columns each, the lanes still share several items.
 */
export const EMBEDDING_TREE_APPLY_KEYS = 64;

/**
 * The apply kernel over `k` bound arenas, fusing runs of at most `fan` keys, `width` floats an
 * item (4 or 1, as the passes'). Uniform words: tables, d, ldt, p, arena0, arenas. Bindings:
 * uniform, dir, segs, offsets, keys, dT, sums, arenas.
 */
export function embeddingTreeApplyKernel(
  k: number,
  fan = EMBEDDING_TREE_FAN,
  width = 1,
): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read", "read", "read"];
  for (let i = 0; i < k; i++) bindings.push("rw");
  const type = width === 4 ? "vec4f" : "f32";
  const bits = width === 4 ? "vec4u" : "u32";
  return {
    name: `embedding_tree_apply_${k}_${fan}${width === 4 ? "_vec4" : ""}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
${pairwiseTreeWgsl(Math.log2(fan) + 1, type)}
${SORTED_UPDATE_INPUTS_WGSL}
@group(0) @binding(5) var<storage, read> dt: array<${type}>;
@group(0) @binding(6) var<storage, read> sums: array<${type}>;
${arenaWgsl(k, 7, true, type)}
const FAN = ${fan}u;
// A listed key whose run is longer than FAN: its sum is in sums.
const LONG = 0x80000000u;

// unfused() of iter.ts for each column of the item.
fn unfusedColumns(x: ${type}) -> ${type} { return bitcast<${type}>(bitcast<${bits}>(x) | ${bits}(it.zero)); }

${
      treeWorkListMainWgsl({
        keys: EMBEDDING_TREE_APPLY_KEYS,
        width,
        fields: /* wgsl */ `var<workgroup> listKey: array<u32, TREE_KEYS>;
var<workgroup> listArena: array<u32, TREE_KEYS>;
var<workgroup> listPlace: array<u32, TREE_KEYS>;
var<workgroup> listChildren: array<u32, TREE_KEYS>;`,
        check: /* wgsl */ `if (i == 0u || keys[base + i - 1u].x != row) {
        let info = dir[t];
        let seg = segmentOf(info.z, info.w, row);
        if (seg.z >= g.arena0 && seg.z < g.arena0 + g.arenas) {
          let long = i + FAN < n && keys[base + i + FAN].x == row;
          let s = atomicAdd(&listCount, 1u);
          listKey[s] = i | select(0u, LONG, long);
          listArena[s] = seg.z - g.arena0;
          listPlace[s] = (seg.w + (row - seg.x) * g.d) / W;
          // A short run's keys (most rows of a batch occur once: no search for them).
          var end = i + 1u;
          if (!long && end < n && keys[base + end].x == row) {
            end = runEnd(base, end, min(n, i + FAN), row);
          }
          listChildren[s] = end - i;
        }
      }`,
        item: /* wgsl */ `let word = listKey[e];
      let i = word & ~LONG;
      var sum: ${type};
      if ((word & LONG) != 0u) {
        sum = sums[(base + i) * columns + c];
      } else {
        let column = (t + 1u) * columns + c;
        var tree = Tree(); // zeroed on every item (see embedding_tree_pass.ts)
        for (var k = i; k < i + listChildren[e]; k++) {
          treePush(&tree, dt[keys[base + k].y * (g.ldt / W) + column]);
        }
        sum = treeSum(&tree);
      }
      let a = listArena[e];
      let at = listPlace[e] + c;
      arenaWrite(a, at, arenaRead(a, at) - unfusedColumns(it.lr * sum));`,
      })
    }
`,
  };
}
