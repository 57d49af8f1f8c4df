/**
 * WGSL piece: the streaming binary counter of the pairwise-tree order in which both engines sum
 * a row's gradients (defined in engine/cpu/sparse_sgd.ts): `treePush` adds one value, then
 * merges the two top sums while they cover equally many values (`left + right`); `treeSum`
 * folds the pending sums from the top. One counter sums one column, or a vector of columns (each
 * lane of the vector on its own, so with the same bits). Not a kernel: the embedding update
 * kernels include it.
 *
 * @module
 */

/**
 * `Tree`, `treePush(&tree, x)` and `treeSum(&tree)` (at least one value pushed), for at most
 * 2^(depth - 1) values (a counter holds one pending sum per bit of its count; the default, 32,
 * takes any u32 count). A smaller depth keeps the lane's counter small. `type` is what is summed:
 * `f32`, or `vec4f` for four columns at once.
 */
export function pairwiseTreeWgsl(depth = 32, type: "f32" | "vec4f" = "f32"): string {
  return /* wgsl */ `
struct Tree { sums: array<${type}, ${depth}>, top: u32, count: u32 }

fn treePush(t: ptr<function, Tree>, x: ${type}) {
  (*t).sums[(*t).top] = x;
  (*t).top += 1u;
  (*t).count += 1u;
  for (var m = (*t).count; (m & 1u) == 0u; m = m >> 1u) {
    (*t).top -= 1u;
    let top = (*t).top;
    (*t).sums[top - 1u] = (*t).sums[top - 1u] + (*t).sums[top];
  }
}

fn treeSum(t: ptr<function, Tree>) -> ${type} {
  var s = (*t).sums[(*t).top - 1u];
  for (var k = (*t).top - 1u; k > 0u; k--) { s = (*t).sums[k - 1u] + s; }
  return s;
}
`;
}
