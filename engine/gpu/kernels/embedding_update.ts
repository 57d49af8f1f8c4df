/**
 * Sparse SGD of the embedding tables, deterministic and without atomics: for each table and each
 * index of the batch, the invocation of the first occurrence of a row "owns" it and applies, in
 * index order, every gradient of the batch that falls on that row (w -= lr * dT[bag]); later
 * occurrences return. The order of the subtractions is the CPU engine's, so duplicates in a batch
 * give the same result on any device. Cost: each invocation scans the batch's indices of its
 * table (O(B^2) per table): the engine's path for small batches; larger ones sort the indices by
 * row first (embedding_sort_local.ts, embedding_update_sorted.ts).
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { BAG_OF_WGSL } from "./bags.ts";
import { ITER_WGSL } from "./iter.ts";

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
struct G { tables: u32, d: u32, ldt: u32, flags: u32, arena0: u32, arenas: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> segs: array<vec4u>;
@group(0) @binding(3) var<storage, read> indices: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read> dt: array<f32>;
${arenaWgsl(k, 6, true)}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let tb = id.y;
  let e = id.x / g.d;
  let q = id.x % g.d;
  if (tb >= g.tables) { return; }
  let info = dir[tb];
  let ob = info.y + it.s0;
  let a = offsets[ob];
  let b = offsets[ob + it.rows];
  let j = a + e;
  if (j >= b) { return; }
  let row = indices[info.x + j];
  for (var jj = a; jj < j; jj++) {
    if (indices[info.x + jj] == row) { return; }
  }
  let seg = segmentOf(info.z, info.w, row);
  if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { return; }
  let local = seg.z - g.arena0;
  let p = seg.w + (row - seg.x) * g.d + q;
  var v = arenaRead(local, p);
  for (var jj = j; jj < b; jj++) {
    if (indices[info.x + jj] != row) { continue; }
    let lo = bagOf(ob, jj);
    v = v - it.lr * dt[lo * g.ldt + (tb + 1u) * g.d + q];
  }
  arenaWrite(local, p, v);
}
`,
  };
}
