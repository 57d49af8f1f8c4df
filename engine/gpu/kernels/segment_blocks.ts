/**
 * WGSL pieces shared by the whole-table kernels (`table_max_abs`, `table_max_abs_vec4`,
 * `table_fake_quantize`, `table_copy_quantize`): the segment bindings, and the opening of `main`
 * of those that run over a (block of a segment, segment) grid. Not a kernel: the kernels include
 * these (they declare the uniform `g` with `segments`, `d`, `arena0`, `arenas` and `block`).
 *
 * @module
 */

/** Bindings 1 and 2: every segment (rowStart, rowEnd, arena, offset) and its table. */
export const SEGMENT_BINDINGS_WGSL =
  /* wgsl */ `@group(0) @binding(1) var<storage, read> segs: array<vec4u>;
// The table of each segment.
@group(0) @binding(2) var<storage, read> segTable: array<u32>;`;

/**
 * `main`'s opening over x = block, y = segment, 256 invocations a workgroup: returns unless the
 * segment lies in the bound arena group. Leaves `si` (segment), `seg`, `count` (its floats) and
 * `start` (the block's first float); `l` and `w` are the local and workgroup ids.
 */
export const SEGMENT_BLOCK_MAIN_WGSL = /* wgsl */ `@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let si = w.y;
  if (si >= g.segments) { return; }
  let seg = segs[si];
  if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { return; }
  let count = (seg.y - seg.x) * g.d;
  let start = w.x * g.block;`;
