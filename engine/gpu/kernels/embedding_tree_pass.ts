/**
 * One level of the tree update's row sums after the sort by row: the sum of each row's
 * gradients in the pairwise-tree order both engines share (pairwise_tree.ts), built
 * {@linkcode EMBEDDING_TREE_FAN} children at a time. On the pass whose children each cover
 * `span` keys (1, FAN, FAN^2, ...), the key at run position r with r % (span * FAN) == 0 sums
 * the up to FAN children that start at r, r + span, ... within its row's run, through the
 * binary counter (the first pass reads the keys' gradients from dT, later ones the sums the
 * previous pass left at the children's first keys), and leaves the sum at its own key in `sums`.
 * The pairwise tree of aligned power-of-two blocks is the same tree taken FAN children at a
 * time, so the sums are the CPU engine's bit for bit, and a row of n occurrences takes
 * log_FAN(n) passes of at most FAN adds a lane instead of n dependent steps.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";
import { pairwiseTreeWgsl } from "./pairwise_tree.ts";
import { SORTED_KEYS_WGSL, TABLE_KEYS_WGSL } from "./row_owner.ts";

/** Invocations per workgroup. */
export const EMBEDDING_TREE_WORKGROUP = 256;
/** The engine's children summed by one lane of one pass (a power of two). */
export const EMBEDDING_TREE_FAN = 32;

/**
 * The pass kernel summing up to `fan` children a lane (a power of two, at most 2^31). Uniform
 * words: tables, d, ldt, p, span, leaves (1 on the first pass). Bindings: uniform, dir, offsets,
 * keys, runStart, dT, sums (per table `p * d` floats, key-major). Lanes (key, column) of each
 * table; they stride over the keys when the dispatch is smaller.
 */
export function embeddingTreePassKernel(fan = EMBEDDING_TREE_FAN): KernelSource {
  return {
    name: `embedding_tree_pass_${fan}`,
    bindings: ["uniform", "read", "read", "read", "read", "read", "rw"],
    code: /* wgsl */ `
${ITER_WGSL}
${pairwiseTreeWgsl(Math.log2(fan) + 1)}
struct G { tables: u32, d: u32, ldt: u32, p: u32, span: u32, leaves: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
${SORTED_KEYS_WGSL}
@group(0) @binding(4) var<storage, read> runStart: array<u32>;
@group(0) @binding(5) var<storage, read> dt: array<f32>;
@group(0) @binding(6) var<storage, read_write> sums: array<f32>;

@compute @workgroup_size(${EMBEDDING_TREE_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let t = id.y;
  if (t >= g.tables) { return; }
  ${TABLE_KEYS_WGSL}
  let column = (t + 1u) * g.d;
  for (var x = id.x; x < n * g.d; x += nw.x * ${EMBEDDING_TREE_WORKGROUP}u) {
    let i = x / g.d;
    let q = x % g.d;
    if ((i - runStart[base + i]) % (g.span * ${fan}u) != 0u) { continue; }
    let row = keys[base + i].x;
    // A run this short was summed by an earlier pass: its sum already lies at i.
    let second = i + g.span;
    if (g.leaves == 0u && (second >= n || keys[base + second].x != row)) { continue; }
    var tree: Tree;
    for (var m = 0u; m < ${fan}u; m++) {
      let c = i + m * g.span;
      if (c >= n) { break; }
      let key = keys[base + c];
      if (key.x != row) { break; }
      if (g.leaves != 0u) {
        treePush(&tree, dt[key.y * g.ldt + column + q]);
      } else {
        treePush(&tree, sums[(base + c) * g.d + q]);
      }
    }
    sums[(base + i) * g.d + q] = treeSum(&tree);
  }
}
`,
  };
}
