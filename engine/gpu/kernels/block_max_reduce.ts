/**
 * Scale finding from block maxima: each table's max |w| bits as the largest of its blocks'
 * (`block_max_full`, `block_max_rows`), into `maxBits` by atomic max, where `table_max_abs` would
 * have left them (`table_scale` reads and clears them). Max is associative, so the bits equal
 * the full read's exactly.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Block maxima one lane reads at most per workgroup of the grid (sizes the grid's x). */
export const BLOCK_MAX_REDUCE_PER_LANE = 16;

/** On an x = run of blocks (strided), y = table grid. */
export const BLOCK_MAX_REDUCE: KernelSource = {
  name: "block_max_reduce",
  bindings: ["uniform", "read", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
// Each table's blocks: [first, end) of blockMax.
@group(0) @binding(1) var<storage, read> tableBlocks: array<vec2u>;
@group(0) @binding(2) var<storage, read> blockMax: array<u32>;
@group(0) @binding(3) var<storage, read_write> maxBits: array<atomic<u32>>;

var<workgroup> part: array<u32, 256>;

@compute @workgroup_size(256)
fn main(
  @builtin(local_invocation_id) l: vec3u,
  @builtin(workgroup_id) w: vec3u,
  @builtin(num_workgroups) nw: vec3u,
) {
  let t = w.y;
  if (t >= g.tables) { return; }
  let r = tableBlocks[t];
  var m = 0u;
  for (var i = r.x + w.x * 256u + l.x; i < r.y; i += nw.x * 256u) { m = max(m, blockMax[i]); }
  part[l.x] = m;
  workgroupBarrier();
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (l.x < h) { part[l.x] = max(part[l.x], part[l.x + h]); }
    workgroupBarrier();
  }
  if (l.x == 0u && part[0] != 0u) { atomicMax(&maxBits[t], part[0]); }
}
`,
};
