/**
 * WGSL pieces shared by the embedding update kernels (`embedding_update`, `lsq_embedding_update`):
 * their input bindings, and the opening of `main`, which finds the invocation's index of the
 * batch and returns unless the invocation owns that row (the row's first occurrence in the batch)
 * and the row's segment lies in the bound arena group. Not a kernel: the kernels include these
 * (they declare the uniform `g` with `tables`, `d`, `arena0` and `arenas`, and the arenas).
 *
 * @module
 */

/** Bindings 1 to 5: table directory, segments, indices, offsets and dT. */
export const UPDATE_INPUTS_WGSL =
  /* wgsl */ `@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> segs: array<vec4u>;
@group(0) @binding(3) var<storage, read> indices: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read> dt: array<f32>;`;

/**
 * `main`'s opening, over x = (entry of the batch, column), y = table. Leaves `tb` (table), `q`
 * (column), `info` (directory entry), `ob` (the batch's first offset), `j` and `b` (the entry
 * and the batch's end in the table's indices), `row`, `local` (arena in the group) and `p`
 * (the value's place in it).
 */
export const ROW_OWNER_MAIN_WGSL = /* wgsl */ `@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let tb = id.y;
  let e = id.x / g.d;
  let q = id.x % g.d;
  if (tb >= g.tables) { return; }
  let info = dir[tb];
  let ob = info.y + it.s0;
  let a = offsets[ob];
  let b = offsets[ob + it.rows];
  let j = a + e;
  if (j >= b) { return; }
  let row = indices[info.x + j];
  for (var jj = a; jj < j; jj++) {
    if (indices[info.x + jj] == row) { return; }
  }
  let seg = segmentOf(info.z, info.w, row);
  if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { return; }
  let local = seg.z - g.arena0;
  let p = seg.w + (row - seg.x) * g.d + q;`;
