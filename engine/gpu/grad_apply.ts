/**
 * Data-parallel training on the GPU: the global embedding update, computed by the host from every
 * worker's message (`globalRowDeltas` of `comm/compression.ts`: the rows and the float64 amounts
 * to subtract), uploaded and applied to the tables in their arenas with JavaScript's rounding
 * (`kernels/grad_apply_rows.ts`), so that a GPU replica's tables equal a CPU replica's; and the
 * global MLP gradient written from the uploaded message sums (`kernels/mlp_grad_dequant.ts`).
 *
 * @module
 */
import type { GemmBinder } from "./binder.ts";
import { gradApplyRowsKernel } from "./kernels/grad_apply_rows.ts";
import { planGradientTensors } from "./grad_compress.ts";
import { mlpGradDequantKernel, mlpGradDequantSetup } from "./kernels/mlp_grad_dequant.ts";
import type { GpuLayout } from "./layout.ts";
import type { BoundKernel } from "./pipelines.ts";
import type { TablePlan } from "./table_plan.ts";
import { dispatch } from "./record.ts";
import { MOST_PER_DIMENSION } from "./kernels/grid.ts";

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
    const x = Math.min(MOST_PER_DIMENSION, Math.ceil((this.#rows * this.#o.embeddingDim) / 256));
    for (const k of this.#kernels) dispatch(pass, k, x);
  }

  /** Frees the update's buffers. */
  destroy(): void {
    this.#entries.destroy();
    this.#deltas.destroy();
  }
}

/** Options of {@linkcode GpuMlpGradient}. */
export interface GpuMlpGradientOptions {
  device: GPUDevice;
  binder: GemmBinder;
  layout: GpuLayout;
  /** The engine's MLP gradient buffer, written by each step's dispatch. */
  mlpGrad: GPUBuffer;
  workers: number;
  /** Bits of the MLP messages (int32 sums), or null (float32 sums, no scales). */
  mlpBits: number | null;
  /** Index of the first MLP tensor's scale in the shared scales (the tables' come first). */
  scaleBase: number;
}

/**
 * The global MLP gradient of data-parallel training written on the GPU from the uploaded message
 * sums (`kernels/mlp_grad_dequant.ts`), the same bits as `writeGlobalMlpGradient` on the host,
 * where that is guaranteed: {@linkcode GpuMlpGradient.supports}.
 */
export class GpuMlpGradient {
  readonly #o: GpuMlpGradientOptions;
  readonly #sums: GPUBuffer;
  readonly #scales: GPUBuffer;
  readonly #kernel: BoundKernel;
  readonly #grid: [number, number];
  readonly #values: number;

  /**
   * Whether the GPU gives the host's bits: a power-of-two worker count, and integer sums exact
   * in float32 (every worker's level below 2^(bits - 1), summed under 2^24).
   */
  static supports(workers: number, mlpBits: number | null): boolean {
    return isPowerOfTwo(workers) && (mlpBits === null || workers * 2 ** (mlpBits - 1) <= 2 ** 24);
  }

  constructor(o: GpuMlpGradientOptions) {
    if (!GpuMlpGradient.supports(o.workers, o.mlpBits)) {
      throw new RangeError(
        `Expected a power of two for the workers, summing ${o.mlpBits}-bit levels exactly in ` +
          `float32, but found ${o.workers} workers`,
      );
    }
    this.#o = o;
    const layers = o.layout.bottom.length + o.layout.top.length;
    const plan = planGradientTensors(o.layout, o.scaleBase);
    const setup = mlpGradDequantSetup(plan, o.workers, o.mlpBits !== null);
    this.#values = setup.values;
    this.#grid = setup.grid;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    this.#sums = o.device.createBuffer({
      label: "mlp message sums",
      size: 4 * Math.max(4, this.#values),
      usage,
    });
    this.#scales = o.device.createBuffer({
      label: "mlp message scales",
      size: 4 * Math.max(4, o.scaleBase + 2 * layers),
      usage,
    });
    this.#kernel = o.binder.bind(mlpGradDequantKernel(layers), [
      o.binder.uniform("mlp gradient", setup.words, setup.floats),
      this.#sums,
      this.#scales,
      o.mlpGrad,
    ]);
  }

  /** Uploads one step's sums (in message order) and the shared scales. */
  upload(mlpSum: Float32Array | Int32Array, scales: Float32Array): void {
    const intSums = mlpSum instanceof Int32Array;
    if (mlpSum.length !== this.#values || intSums !== (this.#o.mlpBits !== null)) {
      throw new RangeError(
        `Expected ${this.#values} ${this.#o.mlpBits === null ? "float32" : "int32"} MLP sums ` +
          `but found ${mlpSum.length} ${intSums ? "int32" : "float32"}`,
      );
    }
    const q = this.#o.device.queue;
    q.writeBuffer(this.#sums, 0, mlpSum as Int32Array<ArrayBuffer>);
    if (this.#o.mlpBits !== null && scales.length > 0) {
      q.writeBuffer(this.#scales, 0, scales as Float32Array<ArrayBuffer>);
    }
  }

  /** Records the write of the last upload's gradient into `pass`. */
  record(pass: GPUComputePassEncoder): void {
    dispatch(pass, this.#kernel, ...this.#grid);
  }

  /** Frees the step's buffers. */
  destroy(): void {
    this.#sums.destroy();
    this.#scales.destroy();
  }
}

/** Whether `n` is a positive power of two. */
function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}
