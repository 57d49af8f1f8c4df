/**
 * Block maxima, full pass: the largest |w| (as u32 bits, `block_max.ts`) of every block of
 * `BLOCK_MAX_FLOATS` floats of every segment in the bound arena group, written to the segment's
 * slots of `blockMax`. Run when the block maxima may be stale (parameters uploaded, tables
 * written without the incremental pass); `block_max_rows` keeps them current after that.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";
import { arenaWgsl } from "./arenas.ts";
import { BLOCK_MAX_BITS_WGSL } from "./block_max.ts";

/** The kernel over `k` bound arenas, on an x = block (strided), y = segment grid. */
export function blockMaxFullKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "rw"];
  for (let i = 0; i < k; i++) bindings.push("read");
  return {
    name: `block_max_full_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
struct G { segments: u32, d: u32, arena0: u32, arenas: u32, block: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> segs: array<vec4u>;
// Each segment's first slot in blockMax.
@group(0) @binding(2) var<storage, read> segBlock: array<u32>;
@group(0) @binding(3) var<storage, read_write> blockMax: array<u32>;
${arenaWgsl(k, 4, false)}
${BLOCK_MAX_BITS_WGSL}

@compute @workgroup_size(256)
fn main(
  @builtin(local_invocation_id) l: vec3u,
  @builtin(workgroup_id) w: vec3u,
  @builtin(num_workgroups) nw: vec3u,
) {
  let si = w.y;
  if (si >= g.segments) { return; }
  let seg = segs[si];
  if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { return; }
  let count = (seg.y - seg.x) * g.d;
  let blocks = (count + g.block - 1u) / g.block;
  for (var b = w.x; b < blocks; b += nw.x) {
    let start = b * g.block;
    let m = blockMaxBits(l.x, seg.z - g.arena0, seg.w, start, min(count, start + g.block));
    if (l.x == 0u) { blockMax[segBlock[si] + b] = m; }
  }
}
`,
  };
}
