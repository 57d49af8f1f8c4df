/**
 * Embedding-bag gather: T[s, 1 + t, :] = sum of the rows indices[t][offsets[t][s0 + s] ..
 * offsets[t][s0 + s + 1]) of table t, in index order, for every table in one dispatch. With DQRM
 * (flag 1), each gathered value is fake-quantized with its table's scale before the sum: only the
 * gathered rows are quantized, no quantized table copy exists. With DoReFa (flag 4, the "PACT"
 * baseline), each gathered value becomes 2 round(k (tanh(w) / (2 m) + 1/2)) / k - 1 with
 * `levels` = k and m = `scales[t]` (the table's max |tanh(w)|). With several arena groups, the
 * first group's dispatch writes and later ones add the rows that live in their arenas.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { ITER_WGSL } from "./iter.ts";

/** Flag: fake-quantize gathered values with `scales[t]`. */
export const GATHER_QUANTIZE = 1;
/** Flag: add to T instead of writing (arena groups after the first). */
export const GATHER_ACCUMULATE = 2;
/** Flag: DoReFa-quantize gathered values (`levels` is k = 2^bits - 1, `scales[t]` the tanh max). */
export const GATHER_DOREFA = 4;

/** The gather kernel over `k` bound arenas. */
export function gatherKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read", "read", "rw"];
  for (let i = 0; i < k; i++) bindings.push("read");
  return {
    name: `gather_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, d: u32, ldt: u32, flags: u32, arena0: u32, arenas: u32, levels: f32, pad: u32 }
@group(0) @binding(0) var<uniform> g: G;
// Per table: index base, offset base, first segment, segment count.
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> segs: array<vec4u>;
@group(0) @binding(3) var<storage, read> indices: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read> scales: array<f32>;
@group(0) @binding(6) var<storage, read_write> t: array<f32>;
${arenaWgsl(k, 7, false)}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let tb = id.x / g.d;
  let q = id.x % g.d;
  let s = id.y;
  if (tb >= g.tables || s >= it.rows) { return; }
  let info = dir[tb];
  let a = offsets[info.y + it.s0 + s];
  let e = offsets[info.y + it.s0 + s + 1u];
  let quantize = (g.flags & 1u) != 0u;
  let scale = scales[tb];
  let n = g.levels;
  let dorefa = (g.flags & 4u) != 0u;
  let inv = 1.0 / (2.0 * scale);
  var acc = 0.0;
  for (var j = a; j < e; j++) {
    let row = indices[info.x + j];
    let seg = segmentOf(info.z, info.w, row);
    if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { continue; }
    var v = arenaRead(seg.z - g.arena0, seg.w + (row - seg.x) * g.d + q);
    if (quantize) { v = clamp(round(v / scale), -n - 1.0, n) * scale; }
    if (dorefa) { v = (2.0 * round(n * (tanh(clamp(v, -10.0, 10.0)) * inv + 0.5))) / n - 1.0; }
    acc += v;
  }
  let dst = s * g.ldt + (tb + 1u) * g.d + q;
  if ((g.flags & 2u) != 0u) { t[dst] += acc; } else { t[dst] = acc; }
}
`,
  };
}
