/**
 * The embedding update outside the engine, for its tests and its benchmark: tables packed into
 * arenas as the engine packs them (`planTables`), one batch's indices and dT uploaded, and each
 * of the engine's update paths bound exactly as the engine binds it: the pairwise scan, the sort
 * then one lane per row, and the sort then the tree.
 *
 * @module
 */
import { bindPairwiseUpdate, bindSortedUpdateKernels } from "./bind_sorted_update.ts";
import type { KernelHarness } from "./kernel_harness.ts";
import type { BoundKernel, KernelSource } from "./pipelines.ts";
import { sortSegment } from "./sort_plan.ts";
import { planTables, segmentWords, type TablePlan } from "./table_plan.ts";

/** The engine's update paths: pairwise scan, sort + one lane per row, sort + tree. */
export type UpdatePath = "pairwise" | "lane" | "tree";

/** One batch of one-hot or multi-hot bags over every table, and its embedding gradients. */
export interface UpdateBatch {
  tableRows: readonly number[];
  /** Embedding width. */
  d: number;
  /** Samples (bags) of the batch. */
  samples: number;
  /** Per table: the rows of every bag, and the bags' `samples + 1` offsets. */
  indices: Int32Array[];
  offsets: Int32Array[];
  /** dT, bag-major: bag r's gradient for table t at `dt[r * (tables + 1) * d + (t + 1) * d + q]`. */
  dt: Float32Array;
}

/** A batch and tables on a harness's device, with every update path bound. */
export class UpdateHarness {
  readonly #h: KernelHarness;
  readonly #plan: TablePlan;
  readonly #arenas: GPUBuffer[];
  readonly #batch: UpdateBatch;
  readonly #paths: Record<UpdatePath, [BoundKernel, number, number][]>;
  readonly #buffers: GPUBuffer[];
  /** Binds the tree path with another fan (children a lane sums per pass). */
  readonly #bindFan: (fan: number) => [BoundKernel, number, number][];
  readonly #fans = new Map<number, [BoundKernel, number, number][]>();

  private constructor(
    h: KernelHarness,
    plan: TablePlan,
    arenas: GPUBuffer[],
    batch: UpdateBatch,
    paths: Record<UpdatePath, [BoundKernel, number, number][]>,
    buffers: GPUBuffer[],
    bindFan: (fan: number) => [BoundKernel, number, number][],
  ) {
    this.#h = h;
    this.#plan = plan;
    this.#arenas = arenas;
    this.#batch = batch;
    this.#paths = paths;
    this.#buffers = buffers;
    this.#bindFan = bindFan;
  }

  /**
   * Uploads `batch` and the tables (`tables`, or zeros) to `h`'s device, in arenas of at most
   * `arenaBytes` (default: the device's largest binding), and binds the paths. Sets the
   * harness's iteration block 0 to the batch with learning rate `lr`.
   */
  static create(
    h: KernelHarness,
    batch: UpdateBatch,
    lr: number,
    tables: readonly Float32Array[] | null = null,
    arenaBytes = Infinity,
  ): UpdateHarness {
    const { tableRows, d, samples } = batch;
    const made: GPUBuffer[] = [];
    const storage = (data: Float32Array | Uint32Array | number) => {
      const buffer = h.storage(data);
      made.push(buffer);
      return buffer;
    };
    const limits = h.device.limits;
    const bytes = Math.min(arenaBytes, limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    const k = Math.max(1, limits.maxStorageBuffersPerShaderStage - 7);
    const plan = planTables(tableRows, d, Math.floor(bytes / 4) * 4, k);
    const arenas = plan.arenaFloats.map((n) => storage(n));
    if (tables) {
      for (const s of plan.segments) {
        const rows = tables[s.table].subarray(s.rowStart * d, s.rowEnd * d);
        h.device.queue.writeBuffer(arenas[s.arena], s.offset * 4, rows.slice());
      }
    }
    const nTables = tableRows.length;
    const dir = new Uint32Array(nTables * 4);
    const allIdx: number[] = [], allOff: number[] = [];
    let entries = 0;
    for (let t = 0; t < nTables; t++) {
      dir.set([allIdx.length, allOff.length, plan.firstSegment[t], plan.segmentCount[t]], 4 * t);
      const off = batch.offsets[t];
      for (let j = 0; j < off[samples]; j++) allIdx.push(batch.indices[t][j]);
      for (let s = 0; s <= samples; s++) allOff.push(off[s]);
      entries = Math.max(entries, off[samples]);
    }
    h.setIterations([{ s0: 0, rows: samples, lr }]);
    const p = sortSegment(entries);
    const ldt = (nTables + 1) * d;
    const groups = Array.from({ length: plan.groups }, (_, g) => {
      const list = arenas.slice(g * plan.arenasPerGroup, (g + 1) * plan.arenasPerGroup);
      while (list.length < plan.arenasPerGroup) list.push(storage(4));
      return list;
    });
    const buffers = {
      tables: nTables,
      d,
      ldt,
      tableDirectory: storage(dir),
      indices: storage(Uint32Array.from(allIdx)),
      offsets: storage(Uint32Array.from(allOff)),
      segments: storage(segmentWords(plan)),
      dt: storage(batch.dt),
      keys: storage(nTables * p * 2),
      groups,
      arenasPerGroup: plan.arenasPerGroup,
    };
    const binder = {
      bind: (source: KernelSource, bound: GPUBuffer[]) => h.bind(source, bound),
      uniform: (_label: string, words: ArrayLike<number>) => h.uniform(Array.from(words)),
    };
    const tree = { runStart: storage(nTables * p), sums: storage(nTables * p * d) };
    const x = Math.ceil((entries * d) / 64);
    const paths: Record<UpdatePath, [BoundKernel, number, number][]> = {
      pairwise: bindPairwiseUpdate(binder, buffers).map((k) => [k, x, nTables]),
      lane: bindSortedUpdateKernels(binder, { ...buffers, tree: null }, p),
      tree: bindSortedUpdateKernels(binder, { ...buffers, tree }, p),
    };
    const bindFan = (fan: number) => bindSortedUpdateKernels(binder, { ...buffers, tree, fan }, p);
    return new UpdateHarness(h, plan, arenas, batch, paths, made, bindFan);
  }

  /**
   * Records one update of the batch by `path` into `pass` (iteration block 0 bound); `fan`
   * (tree only) binds the tree's passes with that many children a lane instead of the engine's.
   */
  record(pass: GPUComputePassEncoder, path: UpdatePath, fan?: number): void {
    let list = this.#paths[path];
    if (path === "tree" && fan !== undefined) {
      list = this.#fans.get(fan) ?? this.#bindFan(fan);
      this.#fans.set(fan, list);
    }
    this.#h.useIteration(pass, 0);
    for (const [k, x, y] of list) this.#h.dispatch(pass, k, x, y);
  }

  /** Runs one update by `path` (and `fan`, see {@linkcode record}) in a pass of its own. */
  run(path: UpdatePath, fan?: number): void {
    const encoder = this.#h.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    this.record(pass, path, fan);
    pass.end();
    this.#h.device.queue.submit([encoder.finish()]);
  }

  /** Frees the batch's and the tables' buffers (the harness keeps its device). */
  destroy(): void {
    for (const b of this.#buffers) b.destroy();
    this.#buffers.length = 0;
  }

  /** Reads every table back. */
  async readTables(): Promise<Float32Array[]> {
    const { tableRows, d } = this.#batch;
    const out = tableRows.map((rows) => new Float32Array(rows * d));
    for (const s of this.#plan.segments) {
      const got = await this.#h.read(this.#arenas[s.arena], (s.rowEnd - s.rowStart) * d, s.offset);
      out[s.table].set(got, s.rowStart * d);
    }
    return out;
  }
}
