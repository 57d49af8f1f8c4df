/**
 * Block maxima, incremental pass: after a step's sparse update, recomputes the block maxima
 * (`block_max.ts`) of the blocks holding the rows of the batch, table by table, so the maxima of
 * every block stay exact at O(rows touched). A row met twice recomputes its blocks twice, to the
 * same value (both reads follow the whole update).
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { BLOCK_MAX_BITS_WGSL } from "./block_max.ts";
import { ITER_WGSL } from "./iter.ts";

/** The kernel over `k` bound arenas, on an x = entry of the batch (strided), y = table grid. */
export function blockMaxRowsKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read", "read", "rw"];
  for (let i = 0; i < k; i++) bindings.push("read");
  return {
    name: `block_max_rows_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, d: u32, arena0: u32, arenas: u32, block: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> segs: array<vec4u>;
@group(0) @binding(3) var<storage, read> indices: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
// Each segment's first slot in blockMax.
@group(0) @binding(5) var<storage, read> segBlock: array<u32>;
@group(0) @binding(6) var<storage, read_write> blockMax: array<u32>;
${arenaWgsl(k, 7, false)}
${BLOCK_MAX_BITS_WGSL}

@compute @workgroup_size(256)
fn main(
  @builtin(local_invocation_id) l: vec3u,
  @builtin(workgroup_id) w: vec3u,
  @builtin(num_workgroups) nw: vec3u,
) {
  let tb = w.y;
  if (tb >= g.tables) { return; }
  let info = dir[tb];
  let ob = info.y + it.s0;
  let end = offsets[ob + it.rows];
  for (var j = offsets[ob] + w.x; j < end; j += nw.x) {
    let row = indices[info.x + j];
    let s = segmentIndexOf(info.z, info.w, row);
    let seg = segs[s];
    if (seg.z >= g.arena0 && seg.z < g.arena0 + g.arenas) {
      let count = (seg.y - seg.x) * g.d;
      let lo = (row - seg.x) * g.d;
      for (var b = lo / g.block; b <= (lo + g.d - 1u) / g.block; b++) {
        let start = b * g.block;
        let m = blockMaxBits(l.x, seg.z - g.arena0, seg.w, start, min(count, start + g.block));
        if (l.x == 0u) { blockMax[segBlock[s] + b] = m; }
      }
    }
  }
}
`,
  };
}
