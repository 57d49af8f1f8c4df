/**
 * One CPU engine thread's share of QAT's weight quantization: its tables' scales (and HAWQ's
 * whole-table copies) and its rows of every MLP weight matrix, fake-quantized into the layers'
 * `wq` (and `bq`).
 *
 * Per-channel min-max MLP quantization (DQRM's) can also run inside the SGD update
 * ({@linkcode WeightQuantizer.quantizeRows}; fused with the step, a row at a time, by
 * {@linkcode WeightQuantizer.updateRows}): a thread that has just updated rows of a layer
 * fake-quantizes the same rows while they are in its cache, which is what the next step's scale
 * phase would do with the same weights (the same bits), without a pass over the weights and a
 * barrier of its own.
 *
 * @module
 */
import type { BatchChunk } from "../batch.ts";
import { levels, type QuantConfig, quantizeLevel, scaleOf } from "../quant.ts";
import type { SpinBarrier } from "./barrier.ts";
import type { LinearLayout } from "./layout.ts";
import { lsqInitialStep } from "./lsq_table.ts";
import { TableMax } from "./table_max.ts";
import type { TableSlot } from "./table_store.ts";
import type { Kernels } from "./wasm.ts";

/**
 * Whether `q` quantizes the MLPs in a way the SGD update can do for the next step
 * ({@linkcode WeightQuantizer.quantizeRows}): per-channel min-max (no matrix-wide maximum, no
 * learned steps).
 */
export function mlpQuantizedInUpdate(q: QuantConfig | null): boolean {
  return q !== null && q.mlpBits !== null && q.quantizer === "minmax" &&
    q.mlpGranularity === "channel";
}

/** See the module documentation. */
export class WeightQuantizer {
  readonly #f32: Float32Array;
  readonly #k: Kernels;
  readonly #layers: readonly LinearLayout[];
  /** This thread's output rows of each layer (its forward columns). */
  readonly #rows: ReadonlyMap<LinearLayout, readonly [number, number]>;
  readonly #barrier: SpinBarrier;
  readonly #scales: Float32Array;
  readonly #tables: Float32Array[];
  readonly #tableKernels: Kernels[];
  readonly #slots: TableSlot[];
  readonly #dim: number;
  /** Tables whose scales (and copies) this thread finds. */
  readonly #scaleTables: readonly number[];
  /** Block maxima of this thread's scale tables (DoReFa's and min-max scales'). */
  readonly #tableMax: (TableMax | undefined)[] = [];
  /** Whether this run marks its table updates in the block maxima (no exchange). */
  #markingUpdates = false;

  /** Views of the engine's memory and tables, and this thread's shares of them. */
  constructor(options: {
    f32: Float32Array;
    kernels: Kernels;
    layers: readonly LinearLayout[];
    rows: ReadonlyMap<LinearLayout, readonly [number, number]>;
    barrier: SpinBarrier;
    scales: Float32Array;
    tables: Float32Array[];
    tableKernels: Kernels[];
    slots: TableSlot[];
    embeddingDim: number;
    scaleTables: readonly number[];
  }) {
    this.#f32 = options.f32;
    this.#k = options.kernels;
    this.#layers = options.layers;
    this.#rows = options.rows;
    this.#barrier = options.barrier;
    this.#scales = options.scales;
    this.#tables = options.tables;
    this.#tableKernels = options.tableKernels;
    this.#slots = options.slots;
    this.#dim = options.embeddingDim;
    this.#scaleTables = options.scaleTables;
  }

  /**
   * Starts a run: whether it marks its table updates in the block maxima (`marking`), and
   * whether those kept from earlier runs still hold (`maximaValid`).
   */
  startRun(marking: boolean, maximaValid: boolean): void {
    this.#markingUpdates = marking;
    if (!maximaValid || !marking) {
      for (const tm of this.#tableMax) tm?.invalidate();
    }
  }

  /**
   * The scale phase of QAT under `q`: finds this thread's tables' scales when `refreshTables`
   * (or when never found), refreshes whole-table copies (HAWQ), and, when `mlp`, fake-quantizes
   * this thread's rows of every MLP weight matrix. Callers wait at the barrier afterwards.
   */
  quantize(q: QuantConfig, refreshTables: boolean, mlp = true): void {
    if (q.embeddingBits !== null) this.#quantizeTables(q, q.embeddingBits, refreshTables);
    if (q.mlpBits === null || !mlp) return;
    if (q.quantizer === "dorefa") return this.#dorefaMlp(q.mlpBits);
    const n = levels(q.mlpBits);
    const f32 = this.#f32;
    const matrix = q.mlpGranularity === "matrix" && q.quantizer === "minmax";
    if (!matrix && q.quantizer === "minmax") {
      for (const layer of this.#layers) {
        const [r0, r1] = this.#rows.get(layer)!;
        if (r0 < r1) this.quantizeRows(q, layer, r0, r1);
      }
      return;
    }
    for (const layer of this.#layers) {
      const [r0, r1] = this.#rows.get(layer)!;
      if (r0 >= r1) continue;
      if (q.quantizer === "lsq") {
        // Learned per-row steps: initialised on first use (0 = none yet), trained afterwards.
        if (f32[layer.scales / 4 + r0] === 0) {
          this.#k.lsqInitRows(layer.w, layer.inP, layer.inputs, r0, r1, layer.scales, n);
        }
        continue;
      }
      this.#rowScales(layer, r0, r1, q.mlpBits);
    }
    if (matrix) this.#barrier.wait(); // every row's maximum is needed
    for (const layer of this.#layers) {
      const [r0, r1] = this.#rows.get(layer)!;
      if (r0 >= r1) continue;
      let s = 0;
      if (matrix) {
        for (let r = 0; r < layer.outputs; r++) s = Math.max(s, f32[layer.scales / 4 + r]);
      }
      this.#fakeQuantize(q, layer, r0, r1, matrix ? 0 : layer.scales, s, n);
    }
  }

  /**
   * Per-channel min-max fake quantization of rows [r0, r1) of `layer` (and their biases when
   * `q.quantizeBias`): each row's scale from its largest |w|. See
   * {@linkcode mlpQuantizedInUpdate}.
   */
  quantizeRows(q: QuantConfig, layer: LinearLayout, r0: number, r1: number): void {
    this.#rowScales(layer, r0, r1, q.mlpBits!);
    this.#fakeQuantize(q, layer, r0, r1, layer.scales, 0, levels(q.mlpBits!));
  }

  /**
   * DQRM's update of rows [r0, r1) of `layer` (multiples of 4): the SGD step of their weights
   * and biases at `lr`, then {@linkcode WeightQuantizer.quantizeRows}, the weights' part in one
   * kernel (`sgdQuantizeRows`) that quantizes each row right after updating it. The same bits
   * as `sgd` and then `quantizeRows`.
   */
  updateRows(q: QuantConfig, layer: LinearLayout, r0: number, r1: number, lr: number): void {
    const n = levels(q.mlpBits!);
    this.#k.sgdQuantizeRows(layer.w, layer.gw, layer.wq, layer.inP, r0, r1, lr, layer.scales, n);
    this.#k.sgd(layer.b, layer.gb, r0, r1, lr);
    this.#quantizeBias(q, layer, r0, r1, layer.scales, 0, n);
  }

  /** Rows [r0, r1)'s min-max scales, into `layer.scales`. */
  #rowScales(layer: LinearLayout, r0: number, r1: number, bits: number): void {
    const f32 = this.#f32;
    this.#k.rowMaxAbs(layer.w, layer.inP, layer.inP, r0, r1, layer.scales);
    for (let r = r0; r < r1; r++) {
      f32[layer.scales / 4 + r] = scaleOf(f32[layer.scales / 4 + r], bits);
    }
  }

  /** Rows [r0, r1) of `wq` (and `bq`) at the row scales at `scales` (0: the one scale `s`). */
  #fakeQuantize(
    q: QuantConfig,
    layer: LinearLayout,
    r0: number,
    r1: number,
    scales: number,
    s: number,
    n: number,
  ): void {
    this.#k.fakeQuantizeRows(layer.w, layer.wq, layer.inP, layer.inP, r0, r1, scales, s, n);
    this.#quantizeBias(q, layer, r0, r1, scales, s, n);
  }

  /** Rows [r0, r1) of `bq` when `q.quantizeBias`, at the scales of `#fakeQuantize`. */
  #quantizeBias(
    q: QuantConfig,
    layer: LinearLayout,
    r0: number,
    r1: number,
    scales: number,
    s: number,
    n: number,
  ): void {
    if (!q.quantizeBias) return;
    const f32 = this.#f32;
    for (let r = r0; r < Math.min(r1, layer.outputs); r++) {
      const sr = scales ? f32[scales / 4 + r] : s;
      f32[layer.bq / 4 + r] = quantizeLevel(f32[layer.b / 4 + r], sr, n) * sr;
    }
  }

  #quantizeTables(q: QuantConfig, bits: number, refreshTables: boolean): void {
    const n = levels(bits);
    for (const t of this.#scaleTables) {
      const slot = this.#slots[t];
      const k = this.#tableKernels[slot.memory];
      if (q.quantizer === "dorefa") {
        // DoReFa needs max |tanh(w)| = tanh(max |w|) of the whole table every step.
        this.#scales[t] = Math.max(Math.tanh(this.#tableMaxOf(t, k)), 1e-8);
        continue;
      }
      if (q.quantizer === "lsq") {
        // Learned step: initialised once, then trained in the update phase.
        if (this.#scales[t] === 0) this.#scales[t] = lsqInitialStep(this.#tables[t], n);
      } else if (refreshTables || this.#scales[t] === 0) {
        this.#scales[t] = scaleOf(this.#tableMaxOf(t, k), bits);
      }
      if (!q.gatheredRowsOnly) {
        k.fakeQuantizeFlat(slot.offset, slot.copyOffset, slot.length, this.#scales[t], n);
      }
    }
  }

  /** DoReFa of every MLP weight matrix, over its whole-matrix max |tanh(w)|. */
  #dorefaMlp(bits: number): void {
    const f32 = this.#f32;
    for (const layer of this.#layers) {
      const [r0, r1] = this.#rows.get(layer)!;
      if (r0 < r1) this.#k.rowMaxAbs(layer.w, layer.inP, layer.inP, r0, r1, layer.scales);
    }
    this.#barrier.wait(); // the matrix maximum needs every row's
    for (const layer of this.#layers) {
      const [r0, r1] = this.#rows.get(layer)!;
      let m = 0;
      for (let r = 0; r < layer.outputs; r++) m = Math.max(m, f32[layer.scales / 4 + r]);
      // Only real rows and columns: DoReFa(0) is not 0, and padding must stay zero.
      const end = Math.min(r1, layer.outputs);
      if (r0 >= end) continue;
      const tanhMax = Math.max(Math.tanh(m), 1e-8);
      this.#k.dorefaRows(
        layer.w,
        layer.wq,
        layer.inP,
        layer.inputs,
        r0,
        end,
        tanhMax,
        2 ** bits - 1,
      );
    }
  }

  /**
   * Table `t`'s largest |w| from its block maxima, re-reading only the blocks updated since the
   * last time (the whole table after unmarked writes — an exchange's — or without kept maxima).
   */
  #tableMaxOf(t: number, k: Kernels): number {
    const slot = this.#slots[t];
    const tm = this.#tableMax[t] ??= new TableMax(slot.offset, slot.length);
    return this.#markingUpdates ? tm.refresh(k) : tm.full(k);
  }

  /** Marks the rows a step updated in this thread's scale tables' block maxima (its own only). */
  markUpdated(chunk: BatchChunk, s0: number, rows: number): void {
    for (const t of this.#scaleTables) {
      this.#tableMax[t]?.mark(chunk.indices[t], chunk.offsets[t], s0, rows, this.#dim);
    }
  }
}
