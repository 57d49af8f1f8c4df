/**
 * WGSL pieces shared by the block-maxima kernels (`block_max_full`, `block_max_rows`): the
 * block size, the block-maxima bindings and the workgroup reduction of one block's max |w|. The
 * block maxima let scale finding read only the blocks a step changed (sparse SGD touches only
 * the batch's rows) instead of every table. Not a kernel: the kernels include these (they bind
 * the arenas through `arenaWgsl`).
 *
 * @module
 */

/**
 * Floats of one block of a segment (the last block of a segment may be shorter): one per lane.
 * A step rereads a block per index of its batch, and finding the maxima reads a u32 per block:
 * 256 balances the two for the Kaggle tables at batch 128 (3,328 indices, 540M floats).
 */
export const BLOCK_MAX_FLOATS = 256;

/**
 * `blockMaxBits(l, a, base, start, end)`: the largest |w| as u32 bits (the order of
 * `table_max_abs`: a NaN's bits exceed infinity's) of floats `[start, end)` of the segment at
 * float `base` of bound arena `a`. Every lane of the 256-lane workgroup calls it in uniform
 * control flow; the result is valid in lane 0.
 */
export const BLOCK_MAX_BITS_WGSL = /* wgsl */ `
var<workgroup> part: array<u32, 256>;

fn blockMaxBits(l: u32, a: u32, base: u32, start: u32, end: u32) -> u32 {
  var m = 0u;
  for (var i = start + l; i < end; i += 256u) {
    m = max(m, bitcast<u32>(abs(arenaRead(a, base + i))));
  }
  part[l] = m;
  workgroupBarrier();
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (l < h) { part[l] = max(part[l], part[l + h]); }
    workgroupBarrier();
  }
  let r = part[0];
  // The next call overwrites part: every lane has read it first.
  workgroupBarrier();
  return r;
}`;
