/**
 * WGSL helper of the kernels that map a table's index back to its sample (bag): a binary search
 * over the chunk's offsets. Not a kernel: the embedding update and sort kernels include it (they
 * declare `offsets` and the iteration block `it`).
 *
 * @module
 */

/** `bagOf(ob, j)`: the last sample of the batch whose bag starts at or before index `j`. */
export const BAG_OF_WGSL = /* wgsl */ `
fn bagOf(ob: u32, j: u32) -> u32 {
  var lo = 0u;
  var hi = it.rows - 1u;
  while (lo < hi) {
    let mid = (lo + hi + 1u) / 2u;
    if (offsets[ob + mid] <= j) { lo = mid; } else { hi = mid - 1u; }
  }
  return lo;
}
`;
