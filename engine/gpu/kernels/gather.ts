/**
 * Embedding-bag gather: T[s, 1 + t, :] = sum of the rows indices[t][offsets[t][s0 + s] ..
 * offsets[t][s0 + s + 1]) of table t, in index order, for every table in one dispatch. With DQRM
 * (flag 1), each gathered value is fake-quantized with its table's scale before the sum: only the
 * gathered rows are quantized, no quantized table copy exists. With DoReFa (flag 4, the "PACT"
 * baseline), each gathered value becomes 2 round(k (tanh(w) / (2 m) + 1/2)) / k - 1 with
 * `levels` = k and m = `scales[t]` (the table's max |tanh(w)|). With several arena groups, the
 * first group's dispatch writes and later ones add the rows that live in their arenas.
 *
 * An invocation owns one column group of one table (a vec4 where the width is a multiple of 4,
 * else one float) for {@linkcode GATHER_SAMPLES} consecutive samples: it reads its table's
 * directory entry once, then walks the samples' bags side by side, so that their offset, index and
 * row loads are in flight together, and looks up each gathered row's segment once per column
 * group (not per float). Each sum still adds a bag's values in index order, each value quantized
 * by the same expression, so the vec4 and scalar kernels give the same bits.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { ITER_WGSL } from "./iter.ts";
import { gridOf } from "./grid.ts";

/** Flag: fake-quantize gathered values with `scales[t]`. */
export const GATHER_QUANTIZE = 1;
/** Flag: add to T instead of writing (arena groups after the first). */
export const GATHER_ACCUMULATE = 2;
/** Flag: DoReFa-quantize gathered values (`levels` is k = 2^bits - 1, `scales[t]` the tanh max). */
export const GATHER_DOREFA = 4;

/** Consecutive samples an invocation gathers (their loads in flight together). */
export const GATHER_SAMPLES = 4;

/** Invocations of a workgroup. */
const WORKGROUP = 64;

/** Floats an invocation gathers per row: 4 (vec4 loads) when `d` is a multiple of 4, else 1. */
export function gatherWidth(d: number): 1 | 4 {
  return d % 4 === 0 ? 4 : 1;
}

/** Workgroups (x, y) of a gather of `rows` samples over `tables` tables of width `d`. */
export function gatherGrid(tables: number, d: number, rows: number): [number, number] {
  const lanes = Math.ceil(rows / GATHER_SAMPLES) * tables * (d / gatherWidth(d));
  const groups = Math.ceil(lanes / WORKGROUP);
  return gridOf(groups);
}

/** The gather kernel over `k` bound arenas, reading `width` floats at a time (d % width == 0). */
export function gatherKernel(k: number, width: 1 | 4): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read", "read", "rw"];
  for (let i = 0; i < k; i++) bindings.push("read");
  const v = width === 4 ? "vec4f" : "f32";
  const inV = width === 4 ? " / 4u" : "";
  const samples = Array.from({ length: GATHER_SAMPLES }, (_, i) => i);
  const each = (line: (i: number) => string) => samples.map(line).join("\n    ");
  return {
    name: width === 4 ? `gather_vec4_${k}` : `gather_${k}`,
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
@group(0) @binding(6) var<storage, read_write> t: array<${v}>;
${arenaWgsl(k, 7, false, v)}

// A gathered value as it enters the sum: DQRM's fake quantization, then DoReFa's mapping.
fn quantized(x: ${v}, scale: f32, n: f32, inv: f32) -> ${v} {
  var v = x;
  if ((g.flags & 1u) != 0u) { v = clamp(round(v / scale), ${v}(-n - 1.0), ${v}(n)) * scale; }
  if ((g.flags & 4u) != 0u) {
    v = (2.0 * round(n * (tanh(clamp(v, ${v}(-10.0), ${v}(10.0))) * inv + 0.5))) / n - 1.0;
  }
  return v;
}

@compute @workgroup_size(${WORKGROUP})
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) groups: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  // Invocation -> (samples, table, column group): column groups of one sample block are adjacent.
  let lane = (wg.y * groups.x + wg.x) * ${WORKGROUP}u + li;
  let cols = g.d${inV};
  let perBlock = g.tables * cols;
  let tb = (lane % perBlock) / cols;
  let q = lane % cols;
  let s = (lane / perBlock) * ${GATHER_SAMPLES}u;
  if (s >= it.rows) { return; }
  let info = dir[tb];
  let scale = scales[tb];
  let n = g.levels;
  let inv = 1.0 / (2.0 * scale);
  // A table of one segment (most) needs no per-row lookup.
  let oneSegment = info.w == 1u;
  let first = segs[info.z];
  ${each((i) => `var j${i} = 0u;`)}
  ${each((i) => `var e${i} = 0u;`)}
  ${
      each((i) =>
        `if (s + ${i}u < it.rows) { j${i} = offsets[info.y + it.s0 + s + ${i}u]; e${i} = offsets[info.y + it.s0 + s + ${i}u + 1u]; }`
      )
    }
  ${each((i) => `var acc${i} = ${v}(0.0);`)}
  loop {
    ${each((i) => `let go${i} = j${i} < e${i};`)}
    if (!(${samples.map((i) => `go${i}`).join(" || ")})) { break; }
    ${each((i) => `var row${i} = 0u;`)}
    ${each((i) => `if (go${i}) { row${i} = indices[info.x + j${i}]; }`)}
    ${each((i) => `var seg${i} = first;`)}
    ${each((i) => `if (go${i} && !oneSegment) { seg${i} = segmentOf(info.z, info.w, row${i}); }`)}
    ${
      each((i) =>
        `let in${i} = go${i} && seg${i}.z >= g.arena0 && seg${i}.z < g.arena0 + g.arenas;`
      )
    }
    ${each((i) => `var v${i} = ${v}(0.0);`)}
    ${
      each((i) =>
        `if (in${i}) { v${i} = arenaRead(seg${i}.z - g.arena0, (seg${i}.w + (row${i} - seg${i}.x) * g.d)${inV} + q); }`
      )
    }
    ${each((i) => `if (in${i}) { acc${i} += quantized(v${i}, scale, n, inv); }`)}
    ${each((i) => `j${i}++;`)}
  }
  let column = ((tb + 1u) * g.d)${inV} + q;
  let ld = g.ldt${inV};
  ${
      each((i) =>
        `if (s + ${i}u < it.rows) { let dst = (s + ${i}u) * ld + column; if ((g.flags & 2u) != 0u) { t[dst] += acc${i}; } else { t[dst] = acc${i}; } }`
      )
    }
}
`,
  };
}
