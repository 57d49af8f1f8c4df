/**
 * Data-parallel training on the GPU: the global embedding update, computed by the host from every
 * worker's message (`globalRowDeltas` of `comm/compression.ts`: the rows and the float64 amounts
 * to subtract), uploaded and applied to the tables in their arenas with JavaScript's rounding
 * (`kernels/grad_apply_rows.ts`), so that a GPU replica's tables equal a CPU replica's.
 *
 * @module
 */
import type { GemmBinder } from "./binder.ts";
import { gradApplyRowsKernel } from "./kernels/grad_apply_rows.ts";
import type { BoundKernel } from "./pipelines.ts";
import type { TablePlan } from "./table_plan.ts";
import { dispatch } from "./record.ts";

/** Options of {@linkcode GpuRowApply}. */
export interface GpuRowApplyOptions {
  device: GPUDevice;
  binder: GemmBinder;
  embeddingDim: number;
  plan: TablePlan;
  /** Per table `(_, _, first segment, segment count)` (the engine's table directory). */
  tableDirectory: GPUBuffer;
  /** The segments (`segmentWords`). */
  segments: GPUBuffer;
  /** The arenas of arena group `g`, padded to the plan's arenas per group. */
  groupArenas: (g: number) => GPUBuffer[];
  /** Most global rows one update holds (workers × tables × indices per table and batch). */
  maxRows: number;
}

/** The global embedding update of data-parallel training, applied on the GPU. */
export class GpuRowApply {
  readonly #o: GpuRowApplyOptions;
  readonly #entries: GPUBuffer;
  readonly #deltas: GPUBuffer;
  /** Per arena group: rows, d, first arena, arenas (rows written at each upload). */
  readonly #uniforms: GPUBuffer[] = [];
  readonly #kernels: BoundKernel[] = [];
  #rows = 0;

  constructor(o: GpuRowApplyOptions) {
    this.#o = o;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const n = Math.max(1, o.maxRows);
    this.#entries = o.device.createBuffer({ label: "global rows", size: 8 * n, usage });
    this.#deltas = o.device.createBuffer({
      label: "global row deltas",
      size: 8 * n * o.embeddingDim,
      usage,
    });
    const k = o.plan.arenasPerGroup;
    for (let g = 0; g < o.plan.groups; g++) {
      const uniform = o.binder.uniform("apply rows", [0, o.embeddingDim, g * k, k]);
      this.#uniforms.push(uniform);
      this.#kernels.push(o.binder.bind(gradApplyRowsKernel(k), [
        uniform,
        o.tableDirectory,
        o.segments,
        this.#entries,
        this.#deltas,
        ...o.groupArenas(g),
      ]));
    }
  }

  /** Uploads one update: `rows` global rows, their `(table, row)` and float64 amounts. */
  upload(update: { rows: number; entries: Uint32Array; deltas: Float64Array }): void {
    if (update.rows > this.#o.maxRows) {
      throw new RangeError(
        `Expected at most ${this.#o.maxRows} global rows but found ${update.rows}`,
      );
    }
    const q = this.#o.device.queue;
    this.#rows = update.rows;
    if (update.rows === 0) return;
    q.writeBuffer(this.#entries, 0, update.entries as Uint32Array<ArrayBuffer>);
    q.writeBuffer(this.#deltas, 0, update.deltas as Float64Array<ArrayBuffer>);
    for (const u of this.#uniforms) q.writeBuffer(u, 0, Uint32Array.of(update.rows));
  }

  /** Records the update of the last upload into `pass` (one dispatch per arena group). */
  record(pass: GPUComputePassEncoder): void {
    if (this.#rows === 0) return;
    const x = Math.min(65535, Math.ceil((this.#rows * this.#o.embeddingDim) / 256));
    for (const k of this.#kernels) dispatch(pass, k, x);
  }

  /** Frees the update's buffers. */
  destroy(): void {
    this.#entries.destroy();
    this.#deltas.destroy();
  }
}
