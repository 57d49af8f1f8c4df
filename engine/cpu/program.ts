/**
 * One thread's share of the CPU engine's work. The main thread and every helper Worker run the
 * same program over the same shared memory, in lockstep between barriers; each does its part of
 * every step (a range of output columns, rows or tables), so results do not depend on the
 * number of threads.
 *
 * @module
 */
import type { BatchChunk } from "../batch.ts";
import { NonFiniteLossError } from "../engine.ts";
import { levels, pactActive, type QuantConfig } from "../quant.ts";
import type { ModelSpec } from "../spec.ts";
import type { SpinBarrier } from "./barrier.ts";
import { type CpuLayout, type LinearLayout, splitRange } from "./layout.ts";
import type { PactState } from "./cpu_engine.ts";
import { balanceTables, type TablePlan } from "./table_store.ts";
import { SparseSgd } from "./sparse_sgd.ts";
import { lsqTableUpdate } from "./lsq_table.ts";
import { mlpQuantizedInUpdate, WeightQuantizer } from "./weight_quant.ts";
import type { Kernels } from "./wasm.ts";
import { type MatrixKernels, wasmMatrixKernels } from "./blas.ts";
import type { PackedGather } from "./packed_tables.ts";
import { RowGather } from "./gather.ts";
import { TileQueue } from "./tile_queue.ts";
import { PREDICT_PHASES, type RunOutputs, type RunRequest } from "./run_request.ts";

/** Index of the barrier-wait entry of `RunOutputs.predictMs`. */
const PHASE_WAIT = PREDICT_PHASES.indexOf("wait");

/**
 * Rows of a predict run's row tiles at batch size `batch`: about half a batch (so that two
 * threads share even a small batch), 16 to 256 rows. A function of the batch size only, so
 * that tiles, and every result, are the same at any thread count.
 */
export function predictTileRows(batch: number): number {
  return Math.min(256, Math.max(16, Math.ceil(batch / 32) * 16));
}

/** This thread's share of one layer's work, computed once (nothing is allocated per step). */
interface LayerShare {
  /** Output columns of the forward product. */
  outCols: readonly [number, number];
  /** Weight-gradient rows. */
  gradRows: readonly [number, number];
  /** Bias-gradient columns. */
  biasCols: readonly [number, number];
  /** Input-gradient columns. */
  inCols: readonly [number, number];
  /** Weight and bias elements this thread updates. */
  weights: readonly [number, number];
  biases: readonly [number, number];
  /**
   * Output rows this thread updates and fake-quantizes when the update quantizes the MLPs
   * (`mlpQuantizedInUpdate`): an even split by 4 rows, as every row costs the same.
   */
  updateRows: readonly [number, number];
}

/** One thread's view of the engine: kernels, layout, tables and its thread id. */
export class CpuProgram {
  readonly f32: Float32Array;
  readonly #k: Kernels;
  /** The matrix products: the WebAssembly kernels' or native BLAS calls. */
  readonly #mm: MatrixKernels;
  readonly #layout: CpuLayout;
  readonly #spec: ModelSpec;
  readonly #tables: Float32Array[];
  readonly #barrier: SpinBarrier;
  readonly #thread: number;
  readonly #threads: number;
  readonly #layers: LinearLayout[];
  readonly #shares: Map<LinearLayout, LayerShare>;
  /** Shares of the products of large batches (`MatrixKernels.large`), or null. */
  readonly #largeShares: Map<LinearLayout, LayerShare> | null;
  readonly #quant: QuantConfig | null;
  /** The quantization of the current run: #quant, or null while QAT is paused (FP32 warm-up). */
  #active: QuantConfig | null = null;
  /** Per-table embedding scales, shared by every thread (0 = not found yet). */
  readonly #scales: Float32Array;
  /** PACT's learned clips and their gradient parts (shared), or null. */
  readonly #pact: PactState | null;
  /** This thread's share of QAT's weight quantization (tables balanced by rows). */
  readonly #weights: WeightQuantizer;
  /** Scratch of the tables' sparse SGD (pairwise-tree row sums). */
  readonly #sparseSgd: SparseSgd;
  /** The gather of dense features and embedding bags. */
  readonly #rowGather: RowGather;
  /** The queue of predict's row tiles (reset before each run). */
  readonly #tiles: TileQueue;

  constructor(options: {
    kernels: Kernels;
    memory: WebAssembly.Memory;
    layout: CpuLayout;
    spec: ModelSpec;
    tables: Float32Array[];
    barrier: SpinBarrier;
    /** The shared words of predict's tile queue. */
    tiles: Int32Array;
    thread: number;
    threads: number;
    quant: QuantConfig | null;
    scales: Float32Array;
    quantTables: Float32Array[] | null;
    tableKernels: Kernels[];
    tablePlan: TablePlan;
    pact?: PactState | null;
    /** The matrix products; the WebAssembly kernels' when absent. */
    matrix?: MatrixKernels;
    packed?: PackedGather | null;
  }) {
    this.#k = options.kernels;
    const mm = this.#mm = options.matrix ?? wasmMatrixKernels(options.kernels);
    this.f32 = new Float32Array(options.memory.buffer);
    this.#layout = options.layout;
    this.#spec = options.spec;
    this.#tables = options.tables;
    this.#barrier = options.barrier;
    this.#tiles = new TileQueue(options.tiles, options.barrier);
    this.#thread = options.thread;
    this.#threads = options.threads;
    this.#layers = [...options.layout.bottom, ...options.layout.top];
    this.#quant = options.quant;
    this.#scales = options.scales;
    this.#pact = options.pact ?? null;
    this.#sparseSgd = new SparseSgd(options.spec.embeddingDim);
    this.#rowGather = new RowGather({
      f32: this.f32,
      kernels: options.kernels,
      layout: options.layout,
      spec: options.spec,
      tables: options.tables,
      quantTables: options.quantTables,
      scales: options.scales,
      packed: options.packed ?? null,
    });
    const share = (n: number, unit: number) => splitRange(n, unit, options.thread, options.threads);
    const shares = ({ units }: MatrixKernels) =>
      new Map(this.#layers.map((l) => [l, {
        outCols: share(l.outP, units.outCols),
        gradRows: share(l.outP, units.gradRows),
        biasCols: share(l.outP, 4),
        inCols: share(l.inP, units.inCols),
        weights: share(l.outP * l.inP, 4),
        biases: share(l.outP, 4),
        updateRows: share(l.outP, 4),
      }]));
    this.#shares = shares(mm);
    this.#largeShares = mm.large ? shares(mm.large.kernels) : null;
    this.#weights = new WeightQuantizer({
      f32: this.f32,
      kernels: options.kernels,
      layers: this.#layers,
      rows: new Map(this.#layers.map((l) => [l, this.#shares.get(l)!.outCols])),
      barrier: options.barrier,
      scales: options.scales,
      tables: options.tables,
      tableKernels: options.tableKernels,
      slots: options.tablePlan.slots,
      embeddingDim: options.spec.embeddingDim,
      scaleTables: balanceTables(options.spec.tableRows, options.threads)[options.thread],
    });
  }

  /** How a batch of `rows` rows runs its products when it is large, or null. */
  #large(rows: number): MatrixKernels["large"] | null {
    const large = this.#mm.large;
    return large && rows >= large.minRows ? large : null;
  }

  /** This thread's rows [r0, r1) of a batch shared by whole tiles of `tile` rows. */
  #tileRows(rows: number, tile: number): [number, number] {
    const [t0, t1] = splitRange(Math.ceil(rows / tile), 1, this.#thread, this.#threads);
    return [t0 * tile, Math.min(t1 * tile, rows)];
  }

  /**
   * Runs `request.kind` over the batches of `request.chunk` starting at sample `first`, `count`
   * samples in batches of `batch` (the last may be shorter for predict). Every thread calls
   * this with the same request; only thread 0 fills `out`.
   */
  run(request: RunRequest, out: RunOutputs): void {
    const { kind, chunk, first, count, batch, learningRate, firstStep, quantize } = request;
    const perStep = request.batchesPerStep;
    const lead = this.#thread === 0;
    const barrier = this.#barrier;
    const quant = this.#active = quantize ? this.#quant : null;
    // Table block maxima stay valid across runs only while nothing else wrote the tables: an
    // exchange writes them itself, the engine says when it did (parameters set, quantized).
    const marking = !out.exchange && request.incrementalTableMaxima;
    this.#weights.startRun(marking, request.tableMaximaValid);
    // After a run's first step, the update has quantized the MLPs for the next (see
    // weight_quant.ts) and, but on a scale refresh, min-max table scales stand: no scale phase.
    const mlpStands = quant?.mlpBits === null || mlpQuantizedInUpdate(quant);
    const tablesStand = quant?.embeddingBits === null ||
      (quant?.quantizer === "minmax" && quant.gatheredRowsOnly);
    if (kind === "predict") return this.#predict(request, out);
    // DQRM's MLP update in the backward pass: layer L's right after its backward, whose dX was
    // made from L's old weights before the barrier; the layers below it read none of L's.
    const inBackward = request.mlpUpdateInBackward && mlpQuantizedInUpdate(quant);
    if (inBackward && (out.exchange || out.onGradients)) {
      throw new Error("Expected no exchange or gradient hook with the MLP update in backward");
    }
    for (let it = 0, s0 = first; s0 < first + count; it++, s0 += batch) {
      const rows = Math.min(batch, first + count - s0);
      const ts = lead ? performance.now() : 0;
      if (quant) {
        // Scales found on a global step's first batch; its other shares see the same weights.
        const step = firstStep + it / perStep;
        const refresh = it % perStep === 0 && step % quant.scalePeriod === 0;
        const mlpReady = it > 0 && mlpStands;
        this.#weights.quantize(quant, refresh, !mlpReady);
        if (!mlpReady || !tablesStand || refresh) barrier.wait();
      }
      const t0 = lead ? performance.now() : 0;
      this.#gather(chunk, s0, rows);
      barrier.wait();
      for (const layer of this.#layout.bottom) {
        this.#forward(layer, rows);
        barrier.wait();
      }
      this.#interact(rows);
      barrier.wait();
      const top = this.#layout.top;
      for (let l = 0; l < top.length - 1; l++) {
        this.#forward(top[l], rows);
        barrier.wait();
      }
      if (lead) {
        // The last layer (one output) is tiny: thread 0 runs it and the loss without a barrier.
        this.#forward(top[top.length - 1], rows, true);
        const loss = this.#loss(chunk.labels, s0, rows, out.probabilities, s0 - first);
        if (out.loss) out.loss[it] = loss;
        if (!Number.isFinite(loss)) {
          barrier.abort();
          throw new NonFiniteLossError(it, loss);
        }
      }
      barrier.wait();
      const t1 = lead ? performance.now() : 0;
      // Thread 0's milliseconds in the update inside the backward pass (counted as update).
      let updateInBackwardMs = 0;
      for (let l = top.length - 1; l >= 0; l--) {
        this.#backward(top[l], rows);
        barrier.wait();
        if (inBackward) updateInBackwardMs += this.#updateLayerTimed(top[l], learningRate, lead);
      }
      this.#interactBackward(rows);
      barrier.wait();
      const bottom = this.#layout.bottom;
      for (let l = bottom.length - 1; l >= 0; l--) {
        this.#backward(bottom[l], rows);
        barrier.wait();
        if (inBackward) updateInBackwardMs += this.#updateLayerTimed(bottom[l], learningRate, lead);
      }
      const t2 = lead ? performance.now() : 0;
      if (lead && out.onGradients) out.onGradients(rows, s0);
      if (out.exchange) out.exchange(rows, s0);
      const tc = lead ? performance.now() : 0;
      const fused = request.fusedMlpUpdate;
      this.#update(chunk, s0, rows, learningRate, !out.exchange, !inBackward, fused);
      barrier.wait();
      if (marking) this.#weights.markUpdated(chunk, s0, rows);
      if (lead) {
        const t3 = performance.now();
        if (out.scaleMs) out.scaleMs[it] = t0 - ts;
        if (out.forwardMs) out.forwardMs[it] = t1 - t0;
        if (out.backwardMs) out.backwardMs[it] = t2 - t1 - updateInBackwardMs;
        if (out.communicationMs) out.communicationMs[it] = tc - t2;
        if (out.updateMs) out.updateMs[it] = t3 - tc + updateInBackwardMs;
      }
    }
  }

  /**
   * The forward passes of a predict run, by row tiles (`predictTileRows`) handed out by the
   * tile queue (`tile_queue.ts`): each tile runs through every layer on the thread that draws
   * it, with no barrier between layers, once every tile of the batches before it is done; the
   * threads meet once, at the end. A tile's results do not depend on the thread running it.
   * Probabilities go to `request.probabilities` (shared, when there are helper threads) or
   * `out.probabilities`; `out.predictMs` times thread 0's phases.
   */
  #predict(request: RunRequest, out: RunOutputs): void {
    const { chunk, first, count, batch } = request;
    const barrier = this.#barrier;
    const probabilities = request.probabilities ?? out.probabilities!;
    const ms = this.#thread === 0 ? out.predictMs : undefined;
    let clock = ms ? performance.now() : 0;
    const lap = ms
      ? (phase: number) => {
        const now = performance.now();
        ms[phase] += now - clock;
        clock = now;
      }
      : undefined;
    if (this.#active) {
      // Weights do not change while predicting: quantize once, with the cached table scales.
      this.#weights.quantize(this.#active, false);
      barrier.wait();
    }
    const tile = predictTileRows(batch);
    const perBatch = Math.ceil(batch / tile);
    const tickets = Math.ceil(count / batch) * perBatch;
    const queue = this.#tiles;
    for (let ticket = queue.draw(); ticket < tickets; ticket = queue.draw()) {
      const b = Math.floor(ticket / perBatch);
      const s0 = first + b * batch, rows = Math.min(batch, first + count - s0);
      const r0 = (ticket - b * perBatch) * tile;
      lap?.(PHASE_WAIT);
      queue.waitDone(b * perBatch);
      lap?.(PHASE_WAIT);
      // The last batch may be short: its tickets past its rows have no rows.
      if (r0 < rows) {
        this.#predictRows(chunk, s0, r0, Math.min(r0 + tile, rows), probabilities, s0 - first, lap);
      }
      queue.done();
    }
    lap?.(PHASE_WAIT);
    barrier.wait();
    lap?.(PHASE_WAIT);
  }

  /** Batch rows [r0, r1) through every layer, and their probabilities at `probs[at + r]`. */
  #predictRows(
    chunk: BatchChunk,
    s0: number,
    r0: number,
    r1: number,
    probs: Float32Array,
    at: number,
    lap: ((phase: number) => void) | undefined,
  ): void {
    const { bottom, top } = this.#layout;
    const g = this.#rowGather;
    g.dense(chunk, s0, r0, r1);
    for (let t = 0; t < this.#spec.tableRows.length; t++) {
      g.table(t, chunk, s0, r0, r1, this.#active);
    }
    lap?.(0);
    for (const layer of bottom) this.#forwardRows(layer, r0, r1);
    lap?.(1);
    const L = this.#layout;
    const d = this.#spec.embeddingDim;
    this.#k.interactForward(L.t, L.ldt, L.vectors, L.dimP, d, r0, r1, L.r, L.ldr);
    lap?.(2);
    for (let l = 0; l < top.length - 1; l++) this.#forwardRows(top[l], r0, r1);
    lap?.(3);
    const last = top[top.length - 1];
    this.#forwardRows(last, r0, r1);
    const f32 = this.f32, z = last.y / 4, ldz = last.ldy;
    for (let r = r0; r < r1; r++) {
      probs[at + r] = Math.fround(1 / (1 + Math.exp(-f32[z + r * ldz])));
    }
    lap?.(4);
  }

  /** Rows [r0, r1) of a layer's output, every column: one product (PACT's clip after it). */
  #forwardRows(layer: LinearLayout, r0: number, r1: number): void {
    const product = this.#mm.large?.tileForward ?? this.#mm.linearForward;
    this.#linear(layer, r0, r1, 0, layer.outP, product);
    this.#pactClip(layer, r0, r1, 0, layer.outP);
  }

  /** PACT: clips rows [r0, r1), columns [n0, n1) of a hidden layer's output and quantizes them. */
  #pactClip(layer: LinearLayout, r0: number, r1: number, n0: number, n1: number): void {
    if (!this.#pactOn() || !layer.pre) return;
    const a = this.#pact!.alphas[this.#layers.indexOf(layer)];
    const k = 2 ** this.#active!.mlpBits! - 1;
    const at = r0 * layer.ldy * 4;
    this.#k.pactForward(layer.y + at, layer.pre + at, layer.ldy, r1 - r0, n0, n1, a, k);
  }

  /** First batch row of this thread's share (`next = 1`: of the next thread's, i.e. the end). */
  #rowStart(rows: number, next = 0): number {
    return Math.floor((rows * (this.#thread + next)) / this.#threads);
  }

  /** Copies dense features and sums embedding bags into T; tables are split across threads. */
  #gather(chunk: BatchChunk, s0: number, rows: number): void {
    this.#rowGather.dense(chunk, s0, this.#rowStart(rows), this.#rowStart(rows, 1));
    for (let t = this.#thread; t < this.#tables.length; t += this.#threads) {
      this.#rowGather.table(t, chunk, s0, 0, rows, this.#active);
    }
  }

  #forward(layer: LinearLayout, rows: number, whole = false): void {
    const large = whole ? null : this.#large(rows);
    let r0 = 0, r1 = rows, n0 = 0, n1 = layer.outP;
    if (large) {
      // Whole row tiles per thread, each one product over every column.
      [r0, r1] = this.#tileRows(rows, large.rowTile);
      if (r0 >= r1) return;
      for (let r = r0; r < r1; r += large.rowTile) {
        const end = Math.min(r + large.rowTile, r1);
        this.#linear(layer, r, end, 0, layer.outP, large.tileForward);
      }
    } else {
      if (!whole) [n0, n1] = this.#shares.get(layer)!.outCols;
      if (n0 >= n1) return;
      this.#linear(layer, 0, rows, n0, n1, this.#mm.linearForward);
    }
    this.#pactClip(layer, r0, r1, n0, n1); // this thread's part
  }

  /** Whether PACT's activation clipping runs in the current run. */
  #pactOn(): boolean {
    return this.#pact !== null && pactActive(this.#active);
  }

  /** Rows [r0, r1) and columns [n0, n1) of a layer's output, by `product`. */
  #linear(
    layer: LinearLayout,
    r0: number,
    r1: number,
    n0: number,
    n1: number,
    product: MatrixKernels["linearForward"],
  ): void {
    const q = this.#active;
    product(
      layer.x + r0 * layer.ldx * 4,
      layer.ldx,
      q?.mlpBits ? layer.wq : layer.w,
      layer.inP,
      q?.mlpBits && q.quantizeBias ? layer.bq : layer.b,
      layer.y + r0 * layer.ldy * 4,
      layer.ldy,
      r1 - r0,
      n0,
      n1,
      layer.inP,
      layer.relu ? 1 : 0,
    );
  }

  #interact(rows: number): void {
    const L = this.#layout;
    const r0 = this.#rowStart(rows), r1 = this.#rowStart(rows, 1);
    if (r0 >= r1) return;
    this.#k.interactForward(
      L.t,
      L.ldt,
      L.vectors,
      L.dimP,
      this.#spec.embeddingDim,
      r0,
      r1,
      L.r,
      L.ldr,
    );
  }

  #interactBackward(rows: number): void {
    const L = this.#layout;
    const r0 = this.#rowStart(rows), r1 = this.#rowStart(rows, 1);
    if (r0 >= r1) return;
    this.#k.interactBackward(
      L.t,
      L.ldt,
      L.vectors,
      L.dimP,
      this.#spec.embeddingDim,
      r0,
      r1,
      L.dr,
      L.ldr,
      L.dt,
    );
  }

  /**
   * Sigmoid, mean binary cross-entropy (log clamped at -100 as PyTorch's BCELoss) and the
   * gradient of the logits, (p - y) / B. Returns the mean loss.
   */
  #loss(
    labels: Float32Array,
    s0: number,
    rows: number,
    probabilities: Float32Array | undefined,
    outAt: number,
  ): number {
    const f32 = this.f32;
    const last = this.#layout.top[this.#layout.top.length - 1];
    const z = last.y / 4, ldz = last.ldy, g = last.dy / 4;
    let sum = 0;
    for (let r = 0; r < rows; r++) {
      const p = Math.fround(1 / (1 + Math.exp(-f32[z + r * ldz])));
      const y = labels[s0 + r];
      sum -= y * Math.max(Math.log(p), -100) + (1 - y) * Math.max(Math.log(1 - p), -100);
      f32[g + r * ldz] = (p - y) / rows;
      if (probabilities) probabilities[outAt + r] = p;
    }
    return sum / rows;
  }

  /** dW, db (split by output rows) and dX (split by input columns) of one layer. */
  #backward(layer: LinearLayout, rows: number): void {
    const k = this.#k;
    const large = this.#large(rows);
    const mm = large ? large.kernels : this.#mm;
    const share = (large ? this.#largeShares! : this.#shares).get(layer)!;
    const [m0, m1] = share.gradRows;
    const [c0, c1] = share.biasCols;
    if (m0 < m1) {
      mm.gemmBroadcast(
        layer.dy,
        1,
        layer.lddy,
        layer.x,
        layer.ldx,
        layer.gw,
        layer.inP,
        m0,
        m1,
        0,
        layer.inP,
        rows,
        0,
        0,
      );
      const q = this.#active;
      if (q?.mlpBits && q.quantizer === "lsq") {
        // LSQ: clip-mask the weight gradient and find the steps' gradient, for these rows.
        k.lsqRows(
          layer.w,
          layer.gw,
          layer.inP,
          layer.inP,
          m0,
          m1,
          layer.scales,
          layer.gscales,
          levels(q.mlpBits),
        );
      }
    }
    if (c0 < c1) k.columnSum(layer.dy, layer.lddy, rows, c0, c1, layer.gb);
    if (layer.dx === 0) return;
    const pact = this.#pactOn() && layer.maskPre !== 0;
    const w = this.#active?.mlpBits ? layer.wq : layer.w;
    if (large && !pact) {
      // Whole row tiles per thread (PACT's clip gradient sums columns: it keeps column shares).
      const [r0, r1] = this.#tileRows(rows, large.rowTile);
      for (let r = r0; r < r1; r += large.rowTile) {
        large.tileInputGradient(
          layer.dy + r * layer.lddy * 4,
          layer.lddy,
          1,
          w,
          layer.inP,
          layer.dx + r * layer.lddx * 4,
          layer.lddx,
          0,
          Math.min(large.rowTile, r1 - r),
          0,
          layer.inP,
          layer.outP,
          layer.mask && layer.mask + r * layer.ldx * 4,
          layer.ldx,
        );
      }
      return;
    }
    const [n0, n1] = share.inCols;
    if (n0 >= n1) return;
    mm.gemmBroadcast(
      layer.dy,
      layer.lddy,
      1,
      w,
      layer.inP,
      layer.dx,
      layer.lddx,
      0,
      rows,
      n0,
      n1,
      layer.outP,
      pact ? layer.maskPre : layer.mask,
      layer.ldx,
    );
    if (pact) {
      // The layer below's clip: zero the gradient where its input reached a, and keep the sum
      // of what was zeroed (a's gradient) per 8-column unit, so the total does not depend on
      // how columns are split between threads.
      const below = this.#layers.indexOf(layer) - 1;
      const a = this.#pact!.alphas[below];
      const base = below * this.#pact!.unitsPerLayer;
      for (let c = n0; c < n1; c += 8) {
        this.#pact!.grads[base + c / 8] = this.#k.pactBackward(
          layer.dx,
          layer.maskPre,
          layer.lddx,
          rows,
          c,
          Math.min(c + 8, n1),
          a,
        );
      }
    }
  }

  /**
   * SGD on this thread's share of every MLP tensor (unless `mlp` is false: the backward pass
   * updated them) and (unless `tables` is false: a data-parallel exchange updates them) on its
   * tables' touched rows. `fused`: see `RunRequest.fusedMlpUpdate`.
   */
  #update(
    chunk: BatchChunk,
    s0: number,
    rows: number,
    lr: number,
    tables: boolean,
    mlp: boolean,
    fused: boolean,
  ): void {
    const q = this.#active;
    if (this.#pactOn() && this.#thread === 0) {
      const pact = this.#pact!;
      this.#layers.forEach((layer, j) => {
        if (!layer.pre) return;
        let g = 0;
        const base = j * pact.unitsPerLayer;
        for (let u = 0; u < Math.ceil(layer.outP / 8); u++) g += pact.grads[base + u];
        pact.alphas[j] = Math.max(pact.alphas[j] - lr * g, 1e-3);
      });
    }
    if (q?.mlpBits && q.quantizer === "lsq") {
      const n = levels(q.mlpBits);
      for (const layer of this.#layers) {
        const [m0, m1] = this.#shares.get(layer)!.gradRows;
        // LSQ's gradient scale g = 1 / sqrt(Qp * numel) of the whole weight matrix.
        const g = lr / Math.sqrt(n * layer.inputs * layer.outputs);
        for (let r = m0; r < Math.min(m1, layer.outputs); r++) {
          const at = layer.scales / 4 + r;
          this.f32[at] = Math.max(this.f32[at] - g * this.f32[layer.gscales / 4 + r], 1e-8);
        }
      }
    }
    if (mlp) { for (const layer of this.#layers) this.#updateLayer(layer, lr, fused); }
    if (!tables) return;
    const f32 = this.f32;
    const L = this.#layout;
    const dtBase = L.dt / 4;
    const lsqBits = q?.embeddingBits && q.quantizer === "lsq" ? q.embeddingBits : 0;
    for (let t = this.#thread; t < this.#tables.length; t += this.#threads) {
      const table = this.#tables[t];
      const idx = chunk.indices[t];
      const off = chunk.offsets[t];
      const grads = { grads: f32, base: dtBase + (t + 1) * L.dimP, ld: L.ldt };
      if (lsqBits) {
        const n = levels(lsqBits), d = this.#spec.embeddingDim;
        const step = this.#scales[t];
        this.#scales[t] = lsqTableUpdate(table, step, idx, off, s0, rows, d, grads, lr, n);
        continue;
      }
      this.#sparseSgd.apply(table, idx, off, s0, rows, grads, lr);
    }
  }

  /**
   * SGD on this thread's share of one MLP layer. When the update quantizes the MLPs, by its
   * output rows, which it then fake-quantizes for the next step (`fused`: in one kernel).
   */
  #updateLayer(layer: LinearLayout, lr: number, fused: boolean): void {
    const k = this.#k;
    const q = this.#active;
    const share = this.#shares.get(layer)!;
    if (mlpQuantizedInUpdate(q)) {
      const [r0, r1] = share.updateRows;
      if (r0 >= r1) return;
      if (fused) return this.#weights.updateRows(q!, layer, r0, r1, lr);
      k.sgd(layer.w, layer.gw, r0 * layer.inP, r1 * layer.inP, lr);
      k.sgd(layer.b, layer.gb, r0, r1, lr);
      this.#weights.quantizeRows(q!, layer, r0, r1);
      return;
    }
    const { weights: [w0, w1], biases: [b0, b1] } = share;
    if (w0 < w1) k.sgd(layer.w, layer.gw, w0, w1, lr);
    if (b0 < b1) k.sgd(layer.b, layer.gb, b0, b1, lr);
  }

  /** `#updateLayer` (fused) in the backward pass; its milliseconds when `timed`, else 0. */
  #updateLayerTimed(layer: LinearLayout, lr: number, timed: boolean): number {
    const t = timed ? performance.now() : 0;
    this.#updateLayer(layer, lr, true);
    return timed ? performance.now() - t : 0;
  }
}
