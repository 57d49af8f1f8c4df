/**
 * The sorted embedding update's kernels (see `sort_plan.ts`): the bitonic sort of the batch's
 * keys by row, then the update of each arena group from the sorted keys. Bound when first
 * recorded, once per key segment size, with the training kernels they belong to.
 *
 * @module
 */
import type { TrainingKernels } from "./bind_training.ts";
import { EMBEDDING_SORT_LOCAL } from "./kernels/embedding_sort_local.ts";
import { EMBEDDING_SORT_STEP } from "./kernels/embedding_sort_step.ts";
import {
  EMBEDDING_UPDATE_SORTED_WORKGROUP,
  embeddingUpdateSortedKernel,
} from "./kernels/embedding_update_sorted.ts";
import type { BoundKernel } from "./pipelines.ts";
import { sortDispatches, sortSegment } from "./sort_plan.ts";
import type { GpuState } from "./state.ts";

/**
 * Dispatches (kernel, x, y) of the sorted embedding update of batches of at most `entries`
 * indices per table: the sort of the keys, then the update per arena group. Bound once per key
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

function bindSortedUpdate(state: GpuState, p: number): [BoundKernel, number, number][] {
  const L = state.layout;
  const binder = state.binder;
  const tables = state.spec.tableRows.length;
  const input = state.input;
  const keys = state.sortKeys!;
  const list: [BoundKernel, number, number][] = [];
  for (const s of sortDispatches(tables, p)) {
    const u = binder.uniform("sort", s.words);
    list.push([
      s.kind === "local"
        ? binder.bind(EMBEDDING_SORT_LOCAL, [
          u,
          input.tableDirectory,
          input.indices,
          input.offsets,
          keys,
        ])
        : binder.bind(EMBEDDING_SORT_STEP, [u, keys]),
      s.x,
      1,
    ]);
  }
  const d = state.spec.embeddingDim;
  const x = Math.min(65535, Math.ceil((p * d) / EMBEDDING_UPDATE_SORTED_WORKGROUP));
  const k = state.plan.arenasPerGroup;
  for (let g = 0; g < state.plan.groups; g++) {
    list.push([
      binder.bind(embeddingUpdateSortedKernel(k), [
        binder.uniform("sorted update", [tables, d, L.ldt, p, g * k, k, 0, 0]),
        input.tableDirectory,
        state.segments,
        input.offsets,
        keys,
        state.interactionInputGrad,
        ...state.groupArenas(g),
      ]),
      x,
      tables,
    ]);
  }
  return list;
}
