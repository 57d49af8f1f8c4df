/**
 * HAWQ's whole-table fake-quantized copies at streaming speed: the same values as
 * `table_copy_quantize` (copy = clamp(round(w / s_t), -n - 1, n) s_t), for tables whose segments
 * start and end on 4-float boundaries. Each workgroup takes one item of the max-|w| kernel's work
 * list (segment, first float of a block) and reads and writes its block as vec4s, four loads in
 * flight per invocation.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";
import { SEGMENT_BINDINGS_WGSL } from "./segment_blocks.ts";
import { MOST_PER_DIMENSION } from "./grid.ts";

/** The copy quantizer over `k` bound source arenas and their `k` copies, as vec4s. */
export function tableCopyQuantizeVec4Kernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read"];
  for (let i = 0; i < k; i++) bindings.push("read");
  for (let i = 0; i < k; i++) bindings.push("rw");
  const decls = Array.from(
    { length: k },
    (_, i) =>
      `@group(0) @binding(${5 + i}) var<storage, read> source${i}: array<vec4f>;\n` +
      `@group(0) @binding(${5 + k + i}) var<storage, read_write> copy${i}: array<vec4f>;`,
  ).join("\n");
  const reads = Array.from({ length: k }, (_, i) => `    case ${i}u: { return source${i}[i]; }`)
    .join("\n");
  const writes = Array.from({ length: k }, (_, i) => `    case ${i}u: { copy${i}[i] = v; }`)
    .join("\n");
  return {
    name: `table_copy_quantize_vec4_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
struct G { items: u32, d: u32, arena0: u32, arenas: u32, levels: f32, block: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> g: G;
${SEGMENT_BINDINGS_WGSL}
@group(0) @binding(3) var<storage, read> scales: array<f32>;
// Work items: (segment, first float of the block within the segment).
@group(0) @binding(4) var<storage, read> items: array<vec2u>;
${decls}

fn read4(a: u32, i: u32) -> vec4f {
  switch a {
${reads}
    default: { return vec4f(0.0); }
  }
}
fn write4(a: u32, i: u32, v: vec4f) {
  switch a {
${writes}
    default: {}
  }
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let item = w.y * ${MOST_PER_DIMENSION}u + w.x;
  if (item >= g.items) { return; }
  let work = items[item];
  let seg = segs[work.x];
  let a = seg.z - g.arena0;
  let base = seg.w / 4u;
  let end = min((seg.y - seg.x) * g.d, work.y + g.block) / 4u;
  let s = scales[segTable[work.x]];
  let lo = vec4f(-g.levels - 1.0);
  let hi = vec4f(g.levels);
  var i = work.y / 4u + l.x;
  for (; i + 768u < end; i += 1024u) {
    let v0 = read4(a, base + i);
    let v1 = read4(a, base + i + 256u);
    let v2 = read4(a, base + i + 512u);
    let v3 = read4(a, base + i + 768u);
    write4(a, base + i, clamp(round(v0 / s), lo, hi) * s);
    write4(a, base + i + 256u, clamp(round(v1 / s), lo, hi) * s);
    write4(a, base + i + 512u, clamp(round(v2 / s), lo, hi) * s);
    write4(a, base + i + 768u, clamp(round(v3 / s), lo, hi) * s);
  }
  for (; i < end; i += 256u) {
    write4(a, base + i, clamp(round(read4(a, base + i) / s), lo, hi) * s);
  }
}
`,
  };
}
