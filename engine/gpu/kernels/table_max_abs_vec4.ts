/**
 * Scale finding, step 1, at streaming speed: the same result as `table_max_abs` (the largest |w|
 * of every table as u32 bits into `maxBits`, NaN propagating), for tables whose segments start
 * and end on 4-float boundaries. Each workgroup takes one item of a precomputed work list
 * (segment, first float of a block), so no workgroup launches idle, and reads its block as vec4s
 * with four independent loads in flight per invocation.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";
import { SEGMENT_BINDINGS_WGSL } from "./segment_blocks.ts";
import { MOST_PER_DIMENSION } from "./grid.ts";

/** Floats one work item covers (the last block of a segment may be shorter). */
export const MAX_ABS_VEC4_BLOCK = 65536;

/** The kernel over `k` bound arenas (read as vec4s). */
export function tableMaxAbsVec4Kernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "rw", "read"];
  for (let i = 0; i < k; i++) bindings.push("read");
  const decls = Array.from(
    { length: k },
    (_, i) => `@group(0) @binding(${5 + i}) var<storage, read> arena${i}: array<vec4f>;`,
  ).join("\n");
  const cases = Array.from({ length: k }, (_, i) => `    case ${i}u: { return arena${i}[i]; }`)
    .join("\n");
  return {
    name: `table_max_abs_vec4_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
struct G { items: u32, d: u32, arena0: u32, arenas: u32, block: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
${SEGMENT_BINDINGS_WGSL}
@group(0) @binding(3) var<storage, read_write> maxBits: array<atomic<u32>>;
// Work items: (segment, first float of the block within the segment).
@group(0) @binding(4) var<storage, read> items: array<vec2u>;
${decls}

fn read4(a: u32, i: u32) -> vec4f {
  switch a {
${cases}
    default: { return vec4f(0.0); }
  }
}

// |v| as bits: their u32 order is the floats' order, and a NaN's bits exceed infinity's.
fn bits(v: vec4f) -> vec4u { return bitcast<vec4u>(abs(v)); }

var<workgroup> part: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let item = w.y * ${MOST_PER_DIMENSION}u + w.x;
  if (item >= g.items) { return; } // uniform per workgroup
  let work = items[item];
  let seg = segs[work.x];
  let a = seg.z - g.arena0;
  let base = seg.w / 4u;
  let end = min((seg.y - seg.x) * g.d, work.y + g.block) / 4u;
  var i = work.y / 4u + l.x;
  var m0 = vec4u(0u);
  var m1 = vec4u(0u);
  var m2 = vec4u(0u);
  var m3 = vec4u(0u);
  for (; i + 768u < end; i += 1024u) {
    m0 = max(m0, bits(read4(a, base + i)));
    m1 = max(m1, bits(read4(a, base + i + 256u)));
    m2 = max(m2, bits(read4(a, base + i + 512u)));
    m3 = max(m3, bits(read4(a, base + i + 768u)));
  }
  for (; i < end; i += 256u) { m0 = max(m0, bits(read4(a, base + i))); }
  let m = max(max(m0, m1), max(m2, m3));
  part[l.x] = max(max(m.x, m.y), max(m.z, m.w));
  workgroupBarrier();
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (l.x < h) { part[l.x] = max(part[l.x], part[l.x + h]); }
    workgroupBarrier();
  }
  if (l.x == 0u) { atomicMax(&maxBits[segTable[work.x]], part[0]); }
}
`,
  };
}
