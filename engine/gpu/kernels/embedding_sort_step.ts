/**
 * One or two compare-exchange steps (stage k, distances j then j / 2) of the bitonic sort of the
 * batch's embedding keys, in global memory: the steps whose distance is at least half a block,
 * which {@linkcode EMBEDDING_SORT_LOCAL} cannot do in workgroup memory. Two steps a dispatch
 * (`levels` 2) halve the dispatches: a lane loads the four keys b, b + j / 2, b + j, b + 3j / 2,
 * which the two steps exchange only among themselves, and stores them once. Each table's segment
 * of `p` keys is sorted ascending on its own (see embedding_sort_local.ts).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/**
 * Uniform words: tables, p, k, j, levels (1 or 2). Bindings: uniform, keys. One invocation per
 * pair of keys (levels 1) or four keys (levels 2).
 */
export const EMBEDDING_SORT_STEP: KernelSource = {
  name: "embedding_sort_step",
  bindings: ["uniform", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, p: u32, k: u32, j: u32, levels: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read_write> keys: array<vec2u>;

fn greater(x: vec2u, y: vec2u) -> bool {
  return x.x > y.x || (x.x == y.x && x.y > y.y);
}

// x and y in order: ascending where up, else descending.
fn ordered(x: vec2u, y: vec2u, up: bool) -> array<vec2u, 2> {
  if (greater(x, y) == up) { return array(y, x); }
  return array(x, y);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let q = id.x;
  let j = g.j;
  if (g.levels == 1u) {
    if (q >= g.tables * g.p / 2u) { return; }
    let lo = ((q & ~(j - 1u)) << 1u) | (q & (j - 1u));
    let hi = lo + j;
    let up = ((lo & (g.p - 1u)) & g.k) == 0u;
    let x = keys[lo];
    let y = keys[hi];
    if (greater(x, y) == up) {
      keys[lo] = y;
      keys[hi] = x;
    }
    return;
  }
  if (q >= g.tables * g.p / 4u) { return; }
  let h = j >> 1u;
  // q with zero bits inserted for the distances h and j (adjacent bits).
  let b = ((q & ~(h - 1u)) << 2u) | (q & (h - 1u));
  let up = ((b & (g.p - 1u)) & g.k) == 0u;
  let a0 = ordered(keys[b], keys[b + j], up);
  let a1 = ordered(keys[b + h], keys[b + j + h], up);
  let c0 = ordered(a0[0], a1[0], up);
  let c1 = ordered(a0[1], a1[1], up);
  keys[b] = c0[0];
  keys[b + h] = c0[1];
  keys[b + j] = c1[0];
  keys[b + j + h] = c1[1];
}
`,
};
