/**
 * One compare-exchange step (stage k, distance j) of the bitonic sort of the batch's embedding
 * keys, in global memory: the steps whose distance j is at least half a block, which
 * {@linkcode EMBEDDING_SORT_LOCAL} cannot do in workgroup memory. Each table's segment of `p`
 * keys is sorted ascending on its own (see embedding_sort_local.ts).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Uniform words: tables, p, k, j. Bindings: uniform, keys. One invocation per pair of keys. */
export const EMBEDDING_SORT_STEP: KernelSource = {
  name: "embedding_sort_step",
  bindings: ["uniform", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, p: u32, k: u32, j: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read_write> keys: array<vec2u>;

fn greater(x: vec2u, y: vec2u) -> bool {
  return x.x > y.x || (x.x == y.x && x.y > y.y);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let q = id.x;
  let j = g.j;
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
}
`,
};
