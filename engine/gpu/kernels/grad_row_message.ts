/**
 * Sparse embedding gradients, last step: the message's per-table counts (its first words) and
 * its values after the row ids: the row sums as FP32 (`bits` 32), or quantized to INT8/INT16 with
 * their table's shared scale (a table whose scale is 0 sends zeros), exactly as
 * `comm/compression.ts`. One invocation per 32-bit word of the values (4 INT8 or 2 INT16
 * levels, little-endian).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { EXACT_F32_WGSL } from "./exact_f32.ts";

/** Uniform words: tables, d, bits, n. Bindings: uniform, counts, values, scales, message. */
export const GRAD_ROW_MESSAGE: KernelSource = {
  name: "grad_row_message",
  bindings: ["uniform", "read", "read", "read", "rw"],
  code: /* wgsl */ `
${EXACT_F32_WGSL}
struct G { tables: u32, d: u32, bits: u32, n: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read> values: array<f32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read_write> message: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let w = id.x + id.y * nw.x * 256u;
  var rows = 0u;
  for (var k = 0u; k < g.tables; k++) { rows += counts[k]; }
  if (w < g.tables) { message[w] = counts[w]; }
  let elements = rows * g.d;
  let per = 32u / g.bits;
  if (w * per >= elements) { return; }
  let at = g.tables + rows + w;
  if (g.bits == 32u) {
    message[at] = bitcast<u32>(values[w]);
    return;
  }
  let mask = (1u << g.bits) - 1u;
  var out = 0u;
  var t = 0u;
  var end = counts[0] * g.d;
  for (var k = 0u; k < per; k++) {
    let j = w * per + k;
    if (j >= elements) { break; }
    while (j >= end) { t++; end += counts[t] * g.d; }
    let s = scales[t];
    var level = 0;
    // s > 0 by its bits: a driver may flush a subnormal scale to zero in a comparison.
    let sb = bitcast<u32>(s);
    if (sb != 0u && (sb & 0x80000000u) == 0u) { level = levelOf(values[j], s, i32(g.n)); }
    out |= (u32(level) & mask) << (k * g.bits);
  }
  message[at] = out;
}
`,
};
