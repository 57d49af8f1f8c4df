/**
 * Sparse embedding gradients, second step: each unique row's summed gradient, in the order of
 * `comm/compression.ts` (the row's occurrences by bag, the first copied, the others added with
 * float32 rounding), into `values` (row-major, rows in message order: tables in order, rows
 * ascending); its row id into the message (`message[tables + place]`); and each table's largest
 * |sum| as float bits into `maxBits[t]` (zeroed first) for its local scale. Lanes (key, column)
 * of table y; only the lanes of a row's first key work.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { EXACT_F32_WGSL } from "./exact_f32.ts";
import { ITER_WGSL } from "./iter.ts";
import { SORTED_KEYS_WGSL, TABLE_KEYS_WGSL } from "./row_owner.ts";

/**
 * Uniform words: tables, p, d, ldt. Bindings: uniform, dir, offsets, keys, unique, counts, dT,
 * values, message, maxBits.
 */
export const GRAD_ROW_SUMS: KernelSource = {
  name: "grad_row_sums",
  bindings: ["uniform", "read", "read", "read", "read", "read", "read", "rw", "rw", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
${EXACT_F32_WGSL}
struct G { tables: u32, p: u32, d: u32, ldt: u32 }
@group(0) @binding(0) var<uniform> g: G;
${SORTED_KEYS_WGSL}
@group(0) @binding(4) var<storage, read> unique: array<u32>;
@group(0) @binding(5) var<storage, read> counts: array<u32>;
@group(0) @binding(6) var<storage, read> dt: array<f32>;
@group(0) @binding(7) var<storage, read_write> values: array<f32>;
@group(0) @binding(8) var<storage, read_write> message: array<u32>;
@group(0) @binding(9) var<storage, read_write> maxBits: array<atomic<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let t = id.y;
  if (t >= g.tables) { return; }
  ${TABLE_KEYS_WGSL}
  var first = 0u;
  for (var k = 0u; k < t; k++) { first += counts[k]; }
  for (var x = id.x; x < n * g.d; x += nw.x * 256u) {
    let i = x / g.d;
    let q = x % g.d;
    let row = keys[base + i].x;
    if (i > 0u && keys[base + i - 1u].x == row) { continue; }
    let col = (t + 1u) * g.d + q;
    var v = dt[keys[base + i].y * g.ldt + col];
    for (var j = i + 1u; j < n; j++) {
      let key = keys[base + j];
      if (key.x != row) { break; }
      v = addRn(v, dt[key.y * g.ldt + col]);
    }
    let place = first + unique[base + i];
    values[place * g.d + q] = v;
    if (q == 0u) { message[g.tables + place] = row; }
    let b = bitcast<u32>(v) & 0x7fffffffu;
    if (b <= 0x7f800000u) { atomicMax(&maxBits[t], b); }
  }
}
`,
};
