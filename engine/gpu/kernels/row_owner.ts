/**
 * WGSL pieces shared by the embedding update kernels (`embedding_update`, `lsq_embedding_update`):
 * their input bindings, and the opening of `main`, which finds the invocation's index of the
 * batch and returns unless the invocation owns that row (the row's first occurrence in the batch)
 * and the row's segment lies in the bound arena group. Not a kernel: the kernels include these
 * (they declare the uniform `g` with `tables`, `d`, `arena0` and `arenas`, and the arenas). The
 * same for the kernels that update from the sorted keys (`embedding_update_sorted`,
 * `embedding_tree_apply`): {@linkcode SORTED_UPDATE_INPUTS_WGSL} and
 * {@linkcode sortedRowOwnerWgsl}.
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

/** Most indices of a table in a batch that the row-owner kernels stage in workgroup memory. */
export const ROW_OWNER_STAGE = 512;

/**
 * `main`'s opening, over x = (entry of the batch, column), y = table. Each workgroup first
 * stages the table's indices of the batch and their samples in workgroup memory (when there are
 * at most {@linkcode ROW_OWNER_STAGE}): the scans below then read workgroup memory, not a global
 * load (and a binary search for the sample) per entry, whose latencies added up to ~70 µs at
 * batch 128 on an H200. Leaves `tb` (table), `q` (column), `info` (directory entry), `ob` (the
 * batch's first offset), `a`, `j` and `b` (the batch's first entry, the invocation's entry and
 * the batch's end in the table's indices), `row`, `local` (arena in the group) and `p` (the
 * value's place in it); `entryRow(jj)` and `entryBag(jj)` give entry `jj`'s row and sample.
 */
export const ROW_OWNER_MAIN_WGSL = /* wgsl */ `const OWNER_STAGE = ${ROW_OWNER_STAGE}u;
var<workgroup> stagedRows: array<u32, ${ROW_OWNER_STAGE}>;
var<workgroup> stagedBags: array<u32, ${ROW_OWNER_STAGE}>;
var<workgroup> stagedCount: u32;
var<private> ownerIndices: u32;
var<private> ownerFirst: u32;
var<private> ownerBagBase: u32;
var<private> ownerStaged: bool;

fn entryRow(jj: u32) -> u32 {
  if (ownerStaged) { return stagedRows[jj - ownerFirst]; }
  return indices[ownerIndices + jj];
}

fn entryBag(jj: u32) -> u32 {
  if (ownerStaged) { return stagedBags[jj - ownerFirst]; }
  return bagOf(ownerBagBase, jj);
}

@compute @workgroup_size(64)
fn main(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  let tb = wid.y;
  if (tb >= g.tables) { return; }
  let info = dir[tb];
  let ob = info.y + it.s0;
  let a = offsets[ob];
  let b = offsets[ob + it.rows];
  if (li == 0u) { stagedCount = b - a; }
  let count = workgroupUniformLoad(&stagedCount);
  ownerIndices = info.x;
  ownerFirst = a;
  ownerBagBase = ob;
  ownerStaged = count <= OWNER_STAGE;
  if (count <= OWNER_STAGE) {
    for (var s = li; s < count; s += 64u) { stagedRows[s] = indices[info.x + a + s]; }
    for (var r = li; r < it.rows; r += 64u) {
      let end = offsets[ob + r + 1u];
      for (var s = offsets[ob + r]; s < end; s++) { stagedBags[s - a] = r; }
    }
  }
  workgroupBarrier();
  let e = id.x / g.d;
  let q = id.x % g.d;
  let j = a + e;
  if (j >= b) { return; }
  let row = entryRow(j);
  for (var jj = a; jj < j; jj++) {
    if (entryRow(jj) == row) { return; }
  }
  let seg = segmentOf(info.z, info.w, row);
  if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { return; }
  let local = seg.z - g.arena0;
  let p = seg.w + (row - seg.x) * g.d + q;`;

/** The sorted updates' uniform (words tables, d, ldt, p, arena0, arenas) and bindings 1 to 4. */
export const SORTED_UPDATE_INPUTS_WGSL = /* wgsl */ `struct G {
  tables: u32, d: u32, ldt: u32, p: u32, arena0: u32, arenas: u32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> segs: array<vec4u>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read> keys: array<vec2u>;`;

/**
 * `main`'s opening over x = (sorted key, column), y = table, `workgroup` invocations a
 * workgroup, lanes striding over the table's keys: a loop whose body continues unless the lane
 * is its row's first key and the row's segment lies in the bound arena group. Leaves `t`, `i`
 * (the key), `q`, `base` (the table's first key), `n`, `row`, `local` and `p` (as in
 * {@linkcode ROW_OWNER_MAIN_WGSL}); the kernel closes the loop and `main` (`  }\n}`).
 */
export function sortedRowOwnerWgsl(workgroup: number): string {
  return /* wgsl */ `@compute @workgroup_size(${workgroup})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let t = id.y;
  if (t >= g.tables) { return; }
  let info = dir[t];
  let ob = info.y + it.s0;
  let n = offsets[ob + it.rows] - offsets[ob];
  let base = t * g.p;
  for (var x = id.x; x < n * g.d; x += nw.x * ${workgroup}u) {
    let i = x / g.d;
    let q = x % g.d;
    let row = keys[base + i].x;
    if (i > 0u && keys[base + i - 1u].x == row) { continue; }
    let seg = segmentOf(info.z, info.w, row);
    if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { continue; }
    let local = seg.z - g.arena0;
    let p = seg.w + (row - seg.x) * g.d + q;`;
}

/**
 * Bindings 1 to 3 of the kernels over a batch's sorted keys (tree passes, the sparse
 * gradient's unique rows and row sums): table directory, offsets, keys (row, entry) per table.
 */
export const SORTED_KEYS_WGSL =
  /* wgsl */ `@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read> keys: array<vec2u>;`;

/**
 * WGSL: table `t`'s first offset of the batch (`ob`), its keys' count (`n`) and where they start
 * (`base`, tables `g.p` keys apart).
 */
export const TABLE_KEYS_WGSL = /* wgsl */ `let ob = dir[t].y + it.s0;
  let n = offsets[ob + it.rows] - offsets[ob];
  let base = t * g.p;`;
