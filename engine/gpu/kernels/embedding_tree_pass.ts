/**
 * One level of the tree update's row sums after the sort by row, for the runs longer than
 * {@linkcode EMBEDDING_TREE_FAN} keys (the shorter ones are summed by `embedding_tree_apply`
 * straight from dT): the sum of each row's gradients in the pairwise-tree order both engines
 * share (pairwise_tree.ts), built FAN children at a time. On the pass whose children each cover
 * `span` keys (1, FAN, FAN^2, ...), the key at run position r with r % (span * FAN) == 0 sums
 * the up to FAN children that start at r, r + span, ... within its row's run, through the
 * binary counter (the first pass reads the keys' gradients from dT, later ones the sums the
 * previous pass left at the children's first keys), and leaves the sum at its own key in `sums`.
 * The pairwise tree of aligned power-of-two blocks is the same tree taken FAN children at a
 * time, so the sums are the CPU engine's bit for bit, and a row of n occurrences takes
 * log_FAN(n) passes of at most FAN adds a lane instead of n dependent steps.
 *
 * The first pass also finds each key's run start (a binary search over the sorted keys before
 * it, skipped for a row's first key) and keeps it in `runStart` for the later passes. Lanes are
 * per key (tree_work_list.ts): only the group starts of long runs become items, (group, vec4 of
 * columns) where the width is a multiple of 4, else (group, column).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";
import { pairwiseTreeWgsl } from "./pairwise_tree.ts";
import { SORTED_KEYS_WGSL } from "./row_owner.ts";
import { TREE_LANES, treeWorkListMainWgsl } from "./tree_work_list.ts";

/** The engine's children summed by one lane of one pass (a power of two). */
export const EMBEDDING_TREE_FAN = 32;

/** Keys a workgroup of a pass checks: few of them are listed, so one a lane. */
export const EMBEDDING_TREE_PASS_KEYS = TREE_LANES;

/**
 * The pass kernel summing up to `fan` children a lane (a power of two, at most 2^31), `width`
 * floats an item (4: dT's row stride and the embedding width are multiples of 4; or 1). Uniform
 * words: tables, d, ldt, p, span, leaves (1 on the first pass). Bindings: uniform, dir, offsets,
 * keys, runStart (per table `p` words, written by the first pass), dT, sums (per table `p * d`
 * floats, key-major).
 */
export function embeddingTreePassKernel(fan = EMBEDDING_TREE_FAN, width = 1): KernelSource {
  const type = width === 4 ? "vec4f" : "f32";
  return {
    name: `embedding_tree_pass_${fan}${width === 4 ? "_vec4" : ""}`,
    bindings: ["uniform", "read", "read", "read", "rw", "read", "rw"],
    code: /* wgsl */ `
${ITER_WGSL}
${pairwiseTreeWgsl(Math.log2(fan) + 1, type)}
struct G { tables: u32, d: u32, ldt: u32, p: u32, span: u32, leaves: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
${SORTED_KEYS_WGSL}
@group(0) @binding(4) var<storage, read_write> runStart: array<u32>;
@group(0) @binding(5) var<storage, read> dt: array<${type}>;
@group(0) @binding(6) var<storage, read_write> sums: array<${type}>;
const FAN = ${fan}u;

${
      treeWorkListMainWgsl({
        keys: EMBEDDING_TREE_PASS_KEYS,
        width,
        fields: /* wgsl */ `var<workgroup> listKey: array<u32, TREE_KEYS>;
var<workgroup> listChildren: array<u32, TREE_KEYS>;`,
        check: /* wgsl */ `var start = i;
      if (g.leaves != 0u) {
        if (i > 0u && keys[base + i - 1u].x == row) {
          var hi = i;
          start = 0u;
          while (start < hi) {
            let mid = (start + hi) / 2u;
            if (keys[base + mid].x < row) { start = mid + 1u; } else { hi = mid; }
          }
        }
        runStart[base + i] = start;
      } else {
        start = runStart[base + i];
      }
      // Runs of at most FAN keys are the apply's. After the first pass, a group of one child
      // already has its sum at its key.
      let long = start + FAN < n && keys[base + start + FAN].x == row;
      let second = i + g.span;
      if (long && (i - start) % (g.span * FAN) == 0u &&
          (g.leaves != 0u || (second < n && keys[base + second].x == row))) {
        let s = atomicAdd(&listCount, 1u);
        listKey[s] = i;
        let end = runEnd(base, i, min(n, i + g.span * FAN), row);
        listChildren[s] = min(FAN, (end - i + g.span - 1u) / g.span);
      }`,
        item: /* wgsl */ `let i = listKey[e];
      let children = listChildren[e];
      let column = (t + 1u) * columns + c;
      // Zeroed on every item: a declaration without a value is not re-zeroed each time round a loop
      // by every WGSL compiler.
      var tree = Tree();
      for (var m = 0u; m < children; m++) {
        let k = i + m * g.span;
        if (g.leaves != 0u) {
          treePush(&tree, dt[keys[base + k].y * (g.ldt / W) + column]);
        } else {
          treePush(&tree, sums[(base + k) * columns + c]);
        }
      }
      sums[(base + i) * columns + c] = treeSum(&tree);`,
      })
    }
`,
  };
}
