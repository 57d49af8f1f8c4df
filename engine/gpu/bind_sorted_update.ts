/**
 * The sorted embedding update's kernels (see `sort_plan.ts`): the bitonic sort of the batch's
 * keys by row, then the tree update (the passes that sum each long run of a row in the
 * pairwise-tree order, the update of each arena group that sums the short runs itself and
 * takes the long ones' sums), or, where the row sums
 * would not fit a binding, the update of each arena group that sums each row in one lane. Bound
 * when first recorded, once per key segment size, with the training kernels they belong to.
 *
 * @module
 */
import type { TrainingKernels } from "./bind_training.ts";
import type { GemmBinder } from "./binder.ts";
import { EMBEDDING_SORT_LOCAL } from "./kernels/embedding_sort_local.ts";
import { embeddingUpdateKernel } from "./kernels/embedding_update.ts";
import { EMBEDDING_SORT_STEP } from "./kernels/embedding_sort_step.ts";
import {
  EMBEDDING_UPDATE_SORTED_WORKGROUP,
  embeddingUpdateSortedKernel,
} from "./kernels/embedding_update_sorted.ts";
import {
  EMBEDDING_TREE_APPLY_KEYS,
  embeddingTreeApplyKernel,
} from "./kernels/embedding_tree_apply.ts";
import {
  EMBEDDING_TREE_FAN,
  EMBEDDING_TREE_PASS_KEYS,
  embeddingTreePassKernel,
} from "./kernels/embedding_tree_pass.ts";
import type { BoundKernel } from "./pipelines.ts";
import { sortDispatches, sortSegment, treeSpans } from "./sort_plan.ts";
import type { GpuState } from "./state.ts";
import { MOST_PER_DIMENSION } from "./kernels/grid.ts";

/**
 * Dispatches (kernel, x, y) of the sorted embedding update of batches of at most `entries`
 * indices per table: the sort of the keys, then the row sums and the update per arena group. Bound once per key
 * segment size, into `kernels`.
 */
export function sortedUpdate(
  state: GpuState,
  kernels: TrainingKernels,
  entries: number,
): [BoundKernel, number, number][] {
  const p = sortSegment(entries);
  let list = kernels.sortedUpdates.get(p);
  if (list) return list;
  list = state.binder.collecting(kernels.uniforms, () => bindSortedUpdate(state, p));
  kernels.sortedUpdates.set(p, list);
  return list;
}

/** The buffers and shape the sorted update binds (the engine's, or a kernel harness's). */
export interface SortedUpdateBuffers {
  tables: number;
  /** Embedding width and dT's row stride (floats). */
  d: number;
  ldt: number;
  tableDirectory: GPUBuffer;
  indices: GPUBuffer;
  offsets: GPUBuffer;
  segments: GPUBuffer;
  dt: GPUBuffer;
  keys: GPUBuffer;
  /** The tree update's buffers, or null to sum each row in one lane. */
  tree: { runStart: GPUBuffer; sums: GPUBuffer } | null;
  /** Children a lane sums per tree pass (default {@linkcode EMBEDDING_TREE_FAN}). */
  fan?: number;
  /** The arenas of each group, `arenasPerGroup` each. */
  groups: GPUBuffer[][];
  arenasPerGroup: number;
}

/** The buffers of the pairwise update (no sort keys): the sorted update's less its own. */
export type UpdateBuffers = Omit<SortedUpdateBuffers, "keys" | "tree" | "fan">;

/** The engine's update buffers (`state.input` as currently bound). */
export function engineUpdateBuffers(state: GpuState): UpdateBuffers {
  const input = state.input;
  return {
    tables: state.spec.tableRows.length,
    d: state.spec.embeddingDim,
    ldt: state.layout.ldt,
    tableDirectory: input.tableDirectory,
    indices: input.indices,
    offsets: input.offsets,
    segments: state.segments,
    dt: state.interactionInputGrad,
    groups: Array.from({ length: state.plan.groups }, (_, g) => state.groupArenas(g)),
    arenasPerGroup: state.plan.arenasPerGroup,
  };
}

/** The pairwise-scan update (no sort), one kernel per arena group. */
export function bindPairwiseUpdate(binder: GemmBinder, b: UpdateBuffers): BoundKernel[] {
  const k = b.arenasPerGroup;
  return b.groups.map((arenas, g) =>
    binder.bind(embeddingUpdateKernel(k), [
      binder.uniform("embedding update", [b.tables, b.d, b.ldt, 0, g * k, k, 0, 0]),
      b.tableDirectory,
      b.segments,
      b.indices,
      b.offsets,
      b.dt,
      ...arenas,
    ])
  );
}

function bindSortedUpdate(state: GpuState, p: number): [BoundKernel, number, number][] {
  return bindSortedUpdateKernels(state.binder, {
    ...engineUpdateBuffers(state),
    keys: state.sortKeys!,
    tree: state.sortTree,
  }, p);
}

/**
 * Binds the sorted update of `p`-key segments over `b`: its dispatches (kernel, x, y), the sort,
 * then the tree's passes and the update of each arena group (or the one-lane update of each).
 * The tree's kernels take vec4s of columns where `d` and `ldt` are multiples of 4.
 */
export function bindSortedUpdateKernels(
  binder: GemmBinder,
  b: SortedUpdateBuffers,
  p: number,
): [BoundKernel, number, number][] {
  const { tables, d, ldt, keys, tree } = b;
  const list: [BoundKernel, number, number][] = [];
  for (const s of sortDispatches(tables, p)) {
    const u = binder.uniform("sort", s.words);
    list.push([
      s.kind === "local"
        ? binder.bind(EMBEDDING_SORT_LOCAL, [u, b.tableDirectory, b.indices, b.offsets, keys])
        : binder.bind(EMBEDDING_SORT_STEP, [u, keys]),
      s.x,
      1,
    ]);
  }
  const x = Math.min(MOST_PER_DIMENSION, Math.ceil((p * d) / EMBEDDING_UPDATE_SORTED_WORKGROUP));
  const k = b.arenasPerGroup;
  const fan = b.fan ?? EMBEDDING_TREE_FAN;
  // vec4 items where every row of dT, sums and the arenas starts on a 4-float boundary.
  const width = d % 4 === 0 && ldt % 4 === 0 ? 4 : 1;
  if (tree) {
    for (const span of treeSpans(p, fan)) {
      list.push([
        binder.bind(embeddingTreePassKernel(fan, width), [
          binder.uniform("tree pass", [tables, d, ldt, p, span, span === 1 ? 1 : 0, 0, 0]),
          b.tableDirectory,
          b.offsets,
          keys,
          tree.runStart,
          b.dt,
          tree.sums,
        ]),
        Math.min(MOST_PER_DIMENSION, Math.ceil(p / EMBEDDING_TREE_PASS_KEYS)),
        tables,
      ]);
    }
  }
  b.groups.forEach((arenas, g) => {
    list.push(
      tree
        ? [
          binder.bind(embeddingTreeApplyKernel(k, fan, width), [
            binder.uniform("tree apply", [tables, d, ldt, p, g * k, k, 0, 0]),
            b.tableDirectory,
            b.segments,
            b.offsets,
            keys,
            b.dt,
            tree.sums,
            ...arenas,
          ]),
          Math.min(MOST_PER_DIMENSION, Math.ceil(p / EMBEDDING_TREE_APPLY_KEYS)),
          tables,
        ]
        : [
          binder.bind(embeddingUpdateSortedKernel(k), [
            binder.uniform("sorted update", [tables, d, ldt, p, g * k, k, 0, 0]),
            b.tableDirectory,
            b.segments,
            b.offsets,
            keys,
            b.dt,
            ...arenas,
          ]),
          x,
          tables,
        ],
    );
  });
  return list;
}
