/**
 * Sparse embedding gradients, first step: in each table's sorted keys `(row, bag)`
 * (`embedding_sort_local.ts`), the first key of every row gets the row's place among the table's
 * unique rows (`unique[t * p + i]`), and `counts[t]` the number of unique rows: the per-table
 * counts of `comm/compression.ts`'s message. One workgroup per table scans its keys 256 at a
 * time (an inclusive scan of "first of its row" flags in workgroup memory).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";
import { SORTED_KEYS_WGSL, TABLE_KEYS_WGSL } from "./row_owner.ts";

/** Uniform words: tables, p. Bindings: uniform, dir, offsets, keys, unique, counts. */
export const GRAD_UNIQUE_ROWS: KernelSource = {
  name: "grad_unique_rows",
  bindings: ["uniform", "read", "read", "read", "rw", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, p: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
${SORTED_KEYS_WGSL}
@group(0) @binding(4) var<storage, read_write> unique: array<u32>;
@group(0) @binding(5) var<storage, read_write> counts: array<u32>;

var<workgroup> scan: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3u) {
  let t = w.x;
  ${TABLE_KEYS_WGSL}
  var carry = 0u;
  for (var c = 0u; c < n; c += 256u) {
    let i = c + l;
    var first = 0u;
    if (i < n && (i == 0u || keys[base + i].x != keys[base + i - 1u].x)) { first = 1u; }
    scan[l] = first;
    workgroupBarrier();
    for (var h = 1u; h < 256u; h <<= 1u) {
      var add = 0u;
      if (l >= h) { add = scan[l - h]; }
      workgroupBarrier();
      scan[l] += add;
      workgroupBarrier();
    }
    if (first == 1u) { unique[base + i] = carry + scan[l] - 1u; }
    carry += scan[255];
    workgroupBarrier();
  }
  if (l == 0u) { counts[t] = carry; }
}
`,
};
