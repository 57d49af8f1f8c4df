/**
 * The dispatches of the bitonic sort of the batch's embedding keys: per table a segment of `p`
 * keys (a power of two). Blocks of {@linkcode EMBEDDING_SORT_BLOCK} keys are sorted in workgroup
 * memory; each stage k beyond a block takes global steps for the distances j >= block / 2 (two a
 * dispatch where it can), then a local pass for the rest. After the sort, the tree update sums
 * each row's run longer than its fan in {@linkcode treeSpans} passes.
 *
 * @module
 */
import { EMBEDDING_SORT_BLOCK } from "./kernels/embedding_sort_local.ts";
import { EMBEDDING_TREE_FAN } from "./kernels/embedding_tree_pass.ts";
import { MOST_PER_DIMENSION } from "./kernels/grid.ts";

/** One dispatch of the sort: uniform words and workgroup count. */
export type SortDispatch =
  | { kind: "local"; words: [number, number, number, number, number, 0, 0, 0]; x: number }
  | { kind: "step"; words: [number, number, number, number, 1 | 2, 0, 0, 0]; x: number };

/** Segment size for a table of `entries` keys: the next power of two (at least 1). */
export function sortSegment(entries: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, entries)));
}

/** The dispatches that sort `tables` segments of `p` keys, the first building them. */
export function sortDispatches(tables: number, p: number): SortDispatch[] {
  const total = tables * p;
  const blocks = Math.ceil(total / EMBEDDING_SORT_BLOCK);
  const pairGroups = Math.ceil(total / 2 / 256);
  const quadGroups = Math.ceil(total / 4 / 256);
  if (blocks > MOST_PER_DIMENSION || pairGroups > MOST_PER_DIMENSION) {
    throw new RangeError(
      `Expected at most ${MOST_PER_DIMENSION * 512} sort keys but found ${total}`,
    );
  }
  const list: SortDispatch[] = [{
    kind: "local",
    words: [tables, p, 2, Math.min(p, EMBEDDING_SORT_BLOCK), 1, 0, 0, 0],
    x: blocks,
  }];
  for (let k = 2 * EMBEDDING_SORT_BLOCK; k <= p; k *= 2) {
    // Two steps a dispatch while both distances are global, then the last one alone.
    let j = k / 2;
    for (; j >= EMBEDDING_SORT_BLOCK; j /= 4) {
      list.push({ kind: "step", words: [tables, p, k, j, 2, 0, 0, 0], x: quadGroups });
    }
    if (j === EMBEDDING_SORT_BLOCK / 2) {
      list.push({ kind: "step", words: [tables, p, k, j, 1, 0, 0, 0], x: pairGroups });
    }
    list.push({ kind: "local", words: [tables, p, k, k, 0, 0, 0, 0], x: blocks });
  }
  return list;
}

/**
 * The spans (keys under each child: 1, fan, fan^2, ...) of the passes of the tree update that
 * sum the runs longer than `fan` keys of `p`-key segments: enough that one group of `fan`
 * children covers `p` keys. None where `p <= fan`: the apply then sums every run itself.
 */
export function treeSpans(p: number, fan = EMBEDDING_TREE_FAN): number[] {
  const spans: number[] = [];
  if (p <= fan) return spans;
  for (let span = 1; span < p; span *= fan) spans.push(span);
  return spans;
}
