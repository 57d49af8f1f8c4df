/**
 * Scale finding, step 1: the largest |w| of every table, over all its segments, into
 * `maxBits[t]` as the bits of a non-negative float (whose order as u32 is the order of the
 * floats, so atomicMax on u32 is exact and deterministic; a NaN's bits exceed infinity's, so a NaN
 * propagates). Each workgroup reduces a block of one segment in workgroup memory first.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { ITER_WGSL } from "./iter.ts";
import { SEGMENT_BINDINGS_WGSL, SEGMENT_BLOCK_MAIN_WGSL } from "./segment_blocks.ts";

/** Least floats one workgroup reduces (more where a segment needs over 65,535 blocks). */
export const MAX_ABS_BLOCK = 256 * 16;

/** The max-|w| kernel over `k` bound arenas: x = block of a segment, y = segment. */
export function tableMaxAbsKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "rw"];
  for (let i = 0; i < k; i++) bindings.push("read");
  return {
    name: `table_max_abs_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
struct G { segments: u32, d: u32, arena0: u32, arenas: u32, block: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
${SEGMENT_BINDINGS_WGSL}
@group(0) @binding(3) var<storage, read_write> maxBits: array<atomic<u32>>;
${arenaWgsl(k, 4, false)}

var<workgroup> part: array<u32, 256>;

${SEGMENT_BLOCK_MAIN_WGSL}
  if (start >= count) { return; }
  let end = min(count, start + g.block);
  var m = 0u;
  for (var i = start + l.x; i < end; i += 256u) {
    m = max(m, bitcast<u32>(abs(arenaRead(seg.z - g.arena0, seg.w + i))));
  }
  part[l.x] = m;
  workgroupBarrier();
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (l.x < h) { part[l.x] = max(part[l.x], part[l.x + h]); }
    workgroupBarrier();
  }
  if (l.x == 0u) { atomicMax(&maxBits[segTable[si]], part[0]); }
}
`,
  };
}
