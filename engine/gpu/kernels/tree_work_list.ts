/**
 * WGSL piece: the opening and body of `main` shared by the tree update's kernels
 * (`embedding_tree_pass`, `embedding_tree_apply`). Each workgroup takes a chunk of a table's sorted
 * keys, one lane per key, and lists the keys that have work (a row's first key, a group of a
 * long run) in workgroup memory; then all its lanes share the listed keys' (key, vector of
 * columns) items. Lanes are thus launched per key, not per (key, column), and no lane scans a
 * key only to find it has nothing to do once per column. The list's order (atomic slots) varies
 * from run to run; each item writes its own values, so the results do not.
 *
 * @module
 */

/** Invocations per workgroup of the tree update's kernels. */
export const TREE_LANES = 256;

/** The pieces a kernel fills in. */
export interface TreeWorkList {
  /** Keys per workgroup (at most {@linkcode TREE_LANES}). */
  keys: number;
  /** Floats per item: 4 (vec4 columns) or 1. */
  width: number;
  /** Workgroup arrays of the list's entries (`TREE_KEYS` each), besides `listCount`. */
  fields: string;
  /**
   * Run by the lane of key `i` (`i < n`) of table `t` with `row`: takes a slot by
   * `let s = atomicAdd(&listCount, 1u);` and fills the fields there where the key has work.
   */
  check: string;
  /** Run for list entry `e` and vector of columns `c` (of `columns` per row). */
  item: string;
}

/**
 * `main` over x = chunks of `keys` sorted keys (striding when the dispatch is smaller), y =
 * table, and `runEnd(base, lo, hi, row)`, for the checks to count a listed key's children (so
 * that the items' loads do not wait on a test of the previous child). The kernel declares the
 * uniform `g` (with `p` and `d`), `dir`, `offsets` and `keys`.
 */
export function treeWorkListMainWgsl(o: TreeWorkList): string {
  return /* wgsl */ `// Where the run of \`row\` (sorted keys from base, row at lo) ends: the first key in (lo, hi) of
// another row, or hi (the run may go on past it).
fn runEnd(base: u32, lo: u32, hi: u32, row: u32) -> u32 {
  var a = lo + 1u;
  var b = hi;
  while (a < b) {
    let mid = (a + b) / 2u;
    if (keys[base + mid].x == row) { a = mid + 1u; } else { b = mid; }
  }
  return a;
}

const TREE_LANES = ${TREE_LANES}u;
const TREE_KEYS = ${o.keys}u;
const W = ${o.width}u;
var<workgroup> listCount: atomic<u32>;
${o.fields}

@compute @workgroup_size(${TREE_LANES})
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
) {
  let t = wid.y;
  let ob = dir[t].y + it.s0;
  let n = offsets[ob + it.rows] - offsets[ob];
  let base = t * g.p;
  let columns = g.d / W;
  for (var chunk = wid.x; chunk * TREE_KEYS < g.p; chunk += nw.x) {
    workgroupBarrier(); // the previous chunk's items have read the list
    if (li == 0u) { atomicStore(&listCount, 0u); }
    workgroupBarrier();
    let i = chunk * TREE_KEYS + li;
    if (li < TREE_KEYS && i < n) {
      let row = keys[base + i].x;
      ${o.check}
    }
    workgroupBarrier();
    let items = atomicLoad(&listCount) * columns;
    for (var x = li; x < items; x += TREE_LANES) {
      let e = x / columns;
      let c = x % columns;
      ${o.item}
    }
  }
}`;
}
