/**
 * The CPU engine: DLRM training on typed arrays and WebAssembly SIMD kernels, on every core.
 *
 * The MLPs, activations and gradients live in one shared WebAssembly memory; embedding tables
 * are shared typed arrays of their own (a Terabyte table is 2.56 GB, beyond a 32-bit memory).
 * The main thread and `threads - 1` Workers run the same program in lockstep (see `program.ts`).
 *
 * @module
 */
import { type BatchChunk, batchCount, shareChunk, validateChunk } from "../batch.ts";
import type {
  Engine,
  EngineCapabilities,
  EngineInfo,
  StepTrace,
  TrainChunkResult,
  TrainOptions,
} from "../engine.ts";
import {
  checkLinearShapes,
  initMlps,
  initTable,
  type LinearParams,
  type Params,
} from "../params.ts";
import { allocatePhaseSamples } from "../phases.ts";
import { cpuModel } from "../environment.ts";
import { type ModelSpec, validateSpec } from "../spec.ts";
import {
  fakeQuantizeArray,
  levels,
  maxAbs,
  pactActive,
  type QuantConfig,
  QuantConfigSchema,
  quantizeLevel,
  scaleOf,
} from "../quant.ts";
import { BARRIER_WORDS, BarrierAbortedError, SpinBarrier } from "./barrier.ts";
import { type CpuLayout, type LinearLayout, planLayout } from "./layout.ts";
import { CpuProgram } from "./program.ts";
import { TILE_QUEUE_WORDS, TileQueue } from "./tile_queue.ts";
import { PREDICT_PHASES, type RunKind, type RunOutputs } from "./run_request.ts";
import {
  allocateTableMemories,
  balanceTables,
  planTables,
  type TablePlan,
  tableViews,
} from "./table_store.ts";
import { compileKernels, instantiateKernels, type Kernels } from "./wasm.ts";
import { blasMatrixKernels, wasmMatrixKernels } from "./blas.ts";
import { type BlasLibrary, type CpuKernelChoice, resolveBlas } from "./blas_library.ts";
import type { WorkerRequest } from "./worker.ts";
import type { PackedEmbeddings } from "../model_file.ts";
import { PackedGather } from "./packed_tables.ts";
import { adviseHugePages } from "./huge_pages.ts";

/** Options of {@linkcode createCpuEngine}. */
export interface CpuEngineOptions {
  /** The architecture. */
  spec: ModelSpec;
  /** Largest batch the engine will see (training or evaluation). */
  maxBatch: number;
  /** Seed of DLRM's initialisation (ignored when `params` is given). */
  seed?: number;
  /** Initial parameters (copied), instead of a seeded initialisation. */
  params?: Params;
  /** Threads, the main thread included; defaults to every core. */
  threads?: number;
  /** Quantization-aware training; absent or null trains in FP32. */
  quantization?: QuantConfig | null;
  /**
   * Matrix kernels: `wasm` (the default), `blas` (native GEMM, see `blas.ts`; fails when the
   * library cannot be opened) or `auto` (BLAS when the library opens, WebAssembly otherwise).
   */
  kernels?: CpuKernelChoice;
  /**
   * The BLAS library file (default: `DQRM_BLAS_LIB`, else the first of `DEFAULT_BLAS_LIBRARIES`
   * that opens: oneDNN, then OpenBLAS).
   */
  blasLibrary?: string;
  /**
   * Integer tables kept packed (a model file's, `readModelFilePacked`): bags are dequantized as
   * they are gathered and no FP32 table is allocated. Such an engine only predicts; `params`
   * then gives the MLPs and no tables (`embeddings: []`).
   */
  packedTables?: PackedEmbeddings;
  /**
   * Table scales (DQRM, HAWQ, DoReFa) from block maxima kept across steps, re-reading only the
   * blocks updated since the last scale (the default, true), or from a read of every table at
   * each refresh (false, to compare against). Both give the same bits (`table_max.ts`).
   */
  incrementalTableMaxima?: boolean;
  /**
   * Transparent huge pages behind the embedding tables where Linux and the FFI permission allow
   * (the default, true; see `huge_pages.ts`), or the default pages (false, to compare against).
   * The same bits either way.
   */
  hugePages?: boolean;
  /**
   * Per-channel min-max MLP quantization (DQRM, HAWQ): each layer's SGD step and fake
   * quantization as one fused kernel, run right after the layer's backward where nothing needs
   * every gradient first (the default, true), or as three kernels after the whole backward
   * (false, to compare against). The same bits either way (`tests/mlp_update_test.ts`).
   */
  fusedMlpUpdate?: boolean;
}

/**
 * Where a single-threaded CPU engine keeps its gradients, for a data-parallel exchange
 * (`comm/`). Every position is a float index into `memory`, valid for the engine's life.
 */
export interface CpuGradientAccess {
  /** The engine's shared WebAssembly memory as floats. */
  memory: Float32Array;
  /** Every linear layer, bottom MLP first: weights, their gradients, padded row width. */
  layers: {
    inputs: number;
    outputs: number;
    inP: number;
    w: number;
    b: number;
    gw: number;
    gb: number;
  }[];
  /** Gradient of the interaction input: sample `r`, table `t` at `dt + r * ldt + (t + 1) * dimP`. */
  dt: number;
  ldt: number;
  dimP: number;
  /** The embedding tables (FP32, the shadow weights under QAT). */
  tables: Float32Array[];
}

/** Data-parallel hooks of a CPU engine (see {@linkcode cpuDataParallelHooks}). */
export interface CpuDataParallelHooks {
  /** Where the gradients live. */
  access: CpuGradientAccess;
  /**
   * `trainChunk` with `exchange` called after every backward pass: it may rewrite the MLP
   * gradients in place (the engine's SGD applies them) and must update the embedding tables
   * itself (the engine skips its own table update). Its time is the `communication` phase.
   * `batchesPerStep` batches of `chunk` make one global step (default 1; K for K simulated
   * workers, whose shares of a step see the same weights): QAT's scale period counts global
   * steps, as it does on K real workers, and table scales are found on a step's first batch.
   */
  trainChunk(
    chunk: BatchChunk,
    options: TrainOptions,
    exchange: (rows: number, firstSample: number) => void,
    batchesPerStep?: number,
  ): Promise<TrainChunkResult>;
}

/**
 * The data-parallel hooks of `engine`, which must be a single-threaded CPU engine (the exchange
 * runs on the main thread between the backward pass and the update) not training LSQ (its
 * learned steps would need an exchange of their own).
 */
export function cpuDataParallelHooks(engine: Engine): CpuDataParallelHooks {
  if (!(engine instanceof CpuEngine)) {
    throw new TypeError("Expected a CPU engine for data-parallel training");
  }
  if (engine.info.threads !== 1) {
    throw new RangeError(
      `Expected a single-threaded CPU engine per data-parallel worker but found ${engine.info.threads} threads`,
    );
  }
  if (engine.quantization?.quantizer === "lsq") {
    throw new RangeError("Expected a quantizer other than lsq for data-parallel training");
  }
  return {
    access: engine.gradientAccess(),
    trainChunk: (chunk, options, exchange, batchesPerStep) =>
      engine.trainChunkExchanging(chunk, options, exchange, batchesPerStep),
  };
}

/** Where a CPU engine's predict time went: milliseconds per phase, summed over its batches. */
export type PredictPhaseMs = Record<(typeof PREDICT_PHASES)[number] | "other", number>;

/**
 * Predicts `chunk` with a CPU engine and times it by phase, on the main thread's clock: `gather`
 * (dense copy, embedding bags dequantized from packed rows), `bottom` and `top` (the MLPs but
 * the last layer), `interaction`, `output` (the last layer and the sigmoid, on the main thread
 * alone), `wait` (barriers: other threads' lag and the hand-off) and `other` (the run's
 * request to the helper threads and the checks around it).
 */
export async function cpuPredictPhases(
  engine: Engine,
  chunk: BatchChunk,
): Promise<{ probabilities: Float32Array; wallMs: number; phases: PredictPhaseMs }> {
  if (!(engine instanceof CpuEngine)) {
    throw new TypeError(`Expected a CPU engine to time by phase but found ${engine.info.name}`);
  }
  const ms = new Float64Array(PREDICT_PHASES.length);
  const { probabilities, wallMs } = await engine.predictTimed(chunk, ms);
  const phases = Object.fromEntries(PREDICT_PHASES.map((p, i) => [p, ms[i]])) as PredictPhaseMs;
  phases.other = Math.max(0, wallMs - ms.reduce((a, b) => a + b, 0));
  return { probabilities, wallMs, phases };
}

interface Helper {
  worker: Worker;
  /** Resolves with the next message of the helper. */
  next(): Promise<{ type: string; message?: string; aborted?: boolean }>;
}

/** PACT's shared state: each layer's learned clip, and the gradient parts of its 8-column units. */
export interface PactState {
  alphas: Float32Array;
  grads: Float64Array;
  /** Units per layer in `grads` (the widest layer's). */
  unitsPerLayer: number;
}

function createPactState(layout: CpuLayout): PactState {
  const layers = layout.bottom.length + layout.top.length;
  const unitsPerLayer = Math.max(
    ...[...layout.bottom, ...layout.top].map((l) => Math.ceil(l.outP / 8)),
  );
  const alphas = new Float32Array(new SharedArrayBuffer(layers * 4)).fill(10);
  const grads = new Float64Array(new SharedArrayBuffer(layers * unitsPerLayer * 8));
  return { alphas, grads, unitsPerLayer };
}

/** Creates a CPU engine and initialises its parameters. */
export async function createCpuEngine(options: CpuEngineOptions): Promise<Engine> {
  const spec = validateSpec(options.spec);
  const threads = options.threads ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new RangeError(`Expected threads to be an integer in [1, 64] but found ${threads}`);
  }
  if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) {
    throw new RangeError(
      `Expected maxBatch to be a positive integer but found ${options.maxBatch}`,
    );
  }
  const quant = options.quantization ? QuantConfigSchema.parse(options.quantization) : null;
  const packed = options.packedTables
    ? new PackedGather(options.packedTables, spec.tableRows, spec.embeddingDim)
    : null;
  if (packed && (quant || !options.params || options.params.embeddings.length > 0)) {
    throw new RangeError(
      "Expected packed tables with the MLPs' params, no FP32 tables and no quantization-aware training",
    );
  }
  const layout = planLayout(spec, options.maxBatch, pactActive(quant));
  const pact = pactActive(quant) ? createPactState(layout) : null;
  const memory = new WebAssembly.Memory({
    initial: layout.pages,
    maximum: layout.pages,
    shared: true,
  });
  const module = await compileKernels();
  const kernels = await instantiateKernels(module, memory);
  const blas = resolveBlas(options.kernels ?? "wasm", options.blasLibrary);
  const matrix = blas ? blasMatrixKernels(blas, memory, kernels) : wasmMatrixKernels(kernels);
  const scales = new Float32Array(new SharedArrayBuffer(spec.tableRows.length * 4));
  // Tables in memories of their own; HAWQ's whole-table fake-quantized copies beside them (the
  // memory cost DQRM avoids).
  const tablePlan = planTables(
    spec.tableRows.map((rows) => (packed ? 0 : rows * spec.embeddingDim)),
    Boolean(quant?.embeddingBits && !quant.gatheredRowsOnly),
  );
  const tableMemories = allocateTableMemories(tablePlan);
  // Before the tables' first write (their initialisation), so that it faults in huge pages.
  if (options.hugePages ?? true) adviseHugePages(tableMemories);
  const { tables, copies: quantTables } = tableViews(tablePlan, tableMemories);
  const tableKernels = await Promise.all(tableMemories.map((m) => instantiateKernels(module, m)));
  // The barrier's words, then those of predict's tile queue.
  const control = new SharedArrayBuffer((BARRIER_WORDS + TILE_QUEUE_WORDS) * 4);
  const barrier = new SpinBarrier(new Int32Array(control, 0, BARRIER_WORDS), threads);
  const tiles = new Int32Array(control, BARRIER_WORDS * 4, TILE_QUEUE_WORDS);
  const program = new CpuProgram({
    kernels,
    memory,
    layout,
    spec,
    tables,
    barrier,
    tiles,
    thread: 0,
    threads,
    quant,
    scales,
    quantTables,
    tableKernels,
    tablePlan,
    pact,
    matrix,
    packed,
  });
  const helpers: Helper[] = [];
  for (let thread = 1; thread < threads; thread++) {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    const queue: { type: string; message?: string }[] = [];
    const waiting: ((m: { type: string; message?: string }) => void)[] = [];
    worker.onmessage = (e) => {
      const w = waiting.shift();
      if (w) w(e.data);
      else queue.push(e.data);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      const m = { type: "error", message: e.message };
      const w = waiting.shift();
      if (w) w(m);
      else queue.push(m);
    };
    const next = () =>
      queue.length > 0
        ? Promise.resolve(queue.shift()!)
        : new Promise<{ type: string; message?: string }>((r) => waiting.push(r));
    helpers.push({ worker, next });
    const setup: WorkerRequest = {
      type: "setup",
      module,
      memory,
      control,
      spec,
      maxBatch: options.maxBatch,
      thread,
      threads,
      quant,
      scales,
      tableMemories,
      tablePlan,
      pact,
      blasLibrary: blas?.path ?? null,
      packed: options.packedTables ?? null,
    };
    worker.postMessage(setup);
  }
  const engine = new CpuEngine(spec, layout, program, memory, tables, barrier, helpers, threads, {
    tiles: new TileQueue(tiles, barrier),
    quant,
    scales,
    tableMemories,
    tableKernels,
    tablePlan,
    matrixName: matrix.name,
    blas,
    packed,
    incrementalTableMaxima: options.incrementalTableMaxima ?? true,
    fusedMlpUpdate: options.fusedMlpUpdate ?? true,
  });
  try {
    for (const h of helpers) await expectReady(h);
    await engine.initialize(options.params, options.seed ?? 0);
  } catch (error) {
    await engine.dispose();
    throw error;
  }
  return engine;
}

async function expectReady(helper: Helper): Promise<void> {
  const m = await helper.next();
  if (m.type !== "ready") throw new Error(`A CPU engine thread failed: ${m.message}`);
}

class CpuEngine implements Engine {
  readonly spec: ModelSpec;
  readonly info: EngineInfo;
  /** Each call runs to its end before it returns: nothing to overlap. */
  readonly capabilities: EngineCapabilities = { overlapsChunks: false };
  readonly #layout: CpuLayout;
  readonly #program: CpuProgram;
  readonly #memory: WebAssembly.Memory;
  readonly #tables: Float32Array[];
  readonly #barrier: SpinBarrier;
  readonly #helpers: Helper[];
  readonly #quant: QuantConfig | null;
  readonly #scales: Float32Array;
  readonly #tableMemories: WebAssembly.Memory[];
  readonly #tableKernels: Kernels[];
  readonly #tablePlan: TablePlan;
  readonly #blas: BlasLibrary | null;
  readonly #packed: PackedGather | null;
  /** Predict's tile queue (shared with the helpers). */
  readonly #tiles: TileQueue;
  /** Global steps taken (K simulated workers' batches count once): the scale period's clock. */
  #step = 0;
  #quantActive = true;
  #disposed = false;
  /**
   * Whether the tables may have been written outside a run since the last one (set, quantized,
   * handed out): the threads then re-read their block maxima (`RunRequest.tableMaximaValid`).
   * Once {@linkcode CpuEngine.gradientAccess} has handed the tables out, always.
   */
  #tablesWritten = true;
  #tablesHandedOut = false;
  readonly #incrementalTableMaxima: boolean;
  readonly #fusedMlpUpdate: boolean;

  constructor(
    spec: ModelSpec,
    layout: CpuLayout,
    program: CpuProgram,
    memory: WebAssembly.Memory,
    tables: Float32Array[],
    barrier: SpinBarrier,
    helpers: Helper[],
    threads: number,
    q: {
      tiles: TileQueue;
      quant: QuantConfig | null;
      scales: Float32Array;
      tableMemories: WebAssembly.Memory[];
      tableKernels: Kernels[];
      tablePlan: TablePlan;
      /** What runs the matrix products (recorded in `info`). */
      matrixName: string;
      /** The BLAS library the main thread opened, or null on the WebAssembly path. */
      blas: BlasLibrary | null;
      /** Packed tables read in place of FP32 ones, or null. */
      packed: PackedGather | null;
      /** See `CpuEngineOptions.incrementalTableMaxima`. */
      incrementalTableMaxima: boolean;
      /** See `CpuEngineOptions.fusedMlpUpdate`. */
      fusedMlpUpdate: boolean;
    },
  ) {
    this.spec = spec;
    this.#layout = layout;
    this.#program = program;
    this.#memory = memory;
    this.#tables = tables;
    this.#barrier = barrier;
    this.#helpers = helpers;
    this.#quant = q.quant;
    this.#scales = q.scales;
    this.#tableMemories = q.tableMemories;
    this.#tableKernels = q.tableKernels;
    this.#tablePlan = q.tablePlan;
    this.#blas = q.blas;
    this.#packed = q.packed;
    this.#incrementalTableMaxima = q.incrementalTableMaxima;
    this.#fusedMlpUpdate = q.fusedMlpUpdate;
    this.#tiles = q.tiles;
    this.info = {
      name: "cpu",
      device: cpuModel(),
      threads,
      details: {
        kernels: q.matrixName,
        cpuKernels: q.blas ? "blas" : "wasm",
        maxBatch: layout.maxBatch,
        tables: q.packed ? `packed INT${q.packed.bits}` : "fp32",
      },
    };
  }

  /** Copies given parameters in, or runs DLRM's seeded initialisation on every thread. */
  async initialize(params: Params | undefined, seed: number): Promise<void> {
    this.#tablesWritten = true;
    const mlps = params ?? initMlps(this.spec, seed);
    this.#writeLinear(this.#layout.bottom, mlps.bottom);
    this.#writeLinear(this.#layout.top, mlps.top);
    if (params) {
      params.embeddings.forEach((e, t) => {
        if (e.length !== this.#tables[t].length) {
          throw new RangeError(
            `Expected table ${t} to hold ${this.#tables[t].length} values but found ${e.length}`,
          );
        }
        this.#tables[t].set(e);
      });
      return;
    }
    const assigned = balanceTables(this.spec.tableRows, this.#helpers.length + 1);
    this.#helpers.forEach((h, i) => {
      const msg: WorkerRequest = { type: "initTables", seed, tables: assigned[i + 1] };
      h.worker.postMessage(msg);
    });
    for (const t of assigned[0]) initTable(this.#tables[t], this.spec.tableRows[t], seed, t);
    for (const h of this.#helpers) await expectReady(h);
  }

  trainChunk(chunk: BatchChunk, options: TrainOptions): Promise<TrainChunkResult> {
    return this.trainChunkExchanging(chunk, options);
  }

  /**
   * `trainChunk`, with an optional data-parallel `exchange` and `batchesPerStep` batches per
   * global step (see {@linkcode CpuDataParallelHooks}).
   */
  async trainChunkExchanging(
    chunk: BatchChunk,
    options: TrainOptions,
    exchange?: (rows: number, firstSample: number) => void,
    batchesPerStep = 1,
  ): Promise<TrainChunkResult> {
    const iterations = batchCount(chunk);
    if (!Number.isInteger(batchesPerStep) || batchesPerStep < 1) {
      throw new RangeError(
        `Expected a positive integer of batches per step but found ${batchesPerStep}`,
      );
    }
    if (iterations % batchesPerStep !== 0) {
      throw new RangeError(
        `Expected whole steps of ${batchesPerStep} batches but found ${iterations} batches`,
      );
    }
    const phases = allocatePhaseSamples(iterations);
    const loss = new Float32Array(iterations);
    const start = performance.now();
    const count = iterations * chunk.batchSize;
    await this.#run("train", chunk, count, chunk.batchSize, options, {
      loss,
      scaleMs: phases.scale,
      forwardMs: phases.forward,
      backwardMs: phases.backward,
      updateMs: phases.update,
      ...(exchange ? { exchange, communicationMs: phases.communication } : {}),
    }, batchesPerStep);
    return { iterations, loss, phases, wallMs: performance.now() - start };
  }

  /** See {@linkcode CpuGradientAccess}. */
  gradientAccess(): CpuGradientAccess {
    this.#tablesHandedOut = true;
    const L = this.#layout;
    return {
      memory: this.#program.f32,
      layers: [...L.bottom, ...L.top].map((l) => ({
        inputs: l.inputs,
        outputs: l.outputs,
        inP: l.inP,
        w: l.w / 4,
        b: l.b / 4,
        gw: l.gw / 4,
        gb: l.gb / 4,
      })),
      dt: L.dt / 4,
      ldt: L.ldt,
      dimP: L.dimP,
      tables: this.#tables,
    };
  }

  async predict(chunk: BatchChunk): Promise<Float32Array> {
    return (await this.predictTimed(chunk, null)).probabilities;
  }

  /** `predict`, timed by phase when `predictMs` is given (see {@linkcode cpuPredictPhases}). */
  async predictTimed(
    chunk: BatchChunk,
    predictMs: Float64Array | null,
  ): Promise<{ probabilities: Float32Array; wallMs: number }> {
    const start = performance.now();
    // Helper threads write the probabilities of their row tiles: shared memory then.
    const shared = this.#helpers.length > 0
      ? new Float32Array(new SharedArrayBuffer(chunk.samples * 4))
      : undefined;
    const probabilities = shared ?? new Float32Array(chunk.samples);
    const batch = Math.min(chunk.batchSize, this.#layout.maxBatch);
    await this.#run(
      "predict",
      chunk,
      chunk.samples,
      batch,
      { learningRate: 0 },
      {
        probabilities,
        ...(predictMs ? { predictMs } : {}),
      },
      1,
      shared,
    );
    return {
      probabilities: shared ? shared.slice() : probabilities,
      wallMs: performance.now() - start,
    };
  }

  async traceStep(chunk: BatchChunk, options: TrainOptions): Promise<StepTrace> {
    const probabilities = new Float32Array(chunk.batchSize);
    const loss = new Float32Array(1);
    let gradients: Params | undefined;
    await this.#run("trace", chunk, chunk.batchSize, chunk.batchSize, options, {
      loss,
      probabilities,
      onGradients: (rows, s0) => {
        gradients = this.#readGradients(chunk, s0, rows);
      },
    });
    return { probabilities, loss: loss[0], gradients: gradients! };
  }

  readParams(): Promise<Params> {
    const f32 = this.#program.f32;
    const read = (layers: LinearLayout[], w: "w" | "gw", b: "b" | "gb") =>
      layers.map((l) => unpadLinear(f32, l, l[w], l[b]));
    return Promise.resolve({
      embeddings: this.#tables.map((t, i) => this.#packed?.dequantize(i) ?? t.slice()),
      bottom: read(this.#layout.bottom, "w", "b"),
      top: read(this.#layout.top, "w", "b"),
    });
  }

  readTable(table: number): Promise<Float32Array> {
    if (!(table >= 0 && table < this.#tables.length)) {
      return Promise.reject(
        new RangeError(`Expected a table in [0, ${this.#tables.length}) but found ${table}`),
      );
    }
    return Promise.resolve(this.#packed?.dequantize(table) ?? this.#tables[table].slice());
  }

  embeddingScales(): Promise<Float32Array> {
    return Promise.resolve(this.#scales.slice());
  }

  get quantization(): QuantConfig | null {
    return this.#quant;
  }

  setQuantizationActive(active: boolean): void {
    this.#quantActive = active;
  }

  quantizeInPlace(config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">): void {
    if (this.#packed) {
      throw new RangeError("Expected FP32 tables to quantize but found packed ones");
    }
    const f32 = this.#program.f32;
    if (config.embeddingBits !== null) {
      this.#tablesWritten = true;
      const n = levels(config.embeddingBits);
      this.#tablePlan.slots.forEach((slot, t) => {
        const k = this.#tableKernels[slot.memory];
        this.#scales[t] = scaleOf(k.maxAbsFlat(slot.offset, slot.length), config.embeddingBits!);
        k.fakeQuantizeFlat(slot.offset, slot.offset, slot.length, this.#scales[t], n);
      });
    }
    if (config.mlpBits === null) return;
    const n = levels(config.mlpBits);
    for (const l of [...this.#layout.bottom, ...this.#layout.top]) {
      for (let o = 0; o < l.outputs; o++) {
        const row = f32.subarray(l.w / 4 + o * l.inP, l.w / 4 + o * l.inP + l.inputs);
        const s = scaleOf(maxAbs(row), config.mlpBits);
        fakeQuantizeArray(row, row, s, config.mlpBits);
        if (config.quantizeBias) f32[l.b / 4 + o] = quantizeLevel(f32[l.b / 4 + o], s, n) * s;
      }
    }
  }

  memoryBytes(): number {
    return this.#tableMemories.reduce(
      (bytes, m) => bytes + m.buffer.byteLength,
      this.#memory.buffer.byteLength + (this.#packed?.bytes ?? 0),
    );
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const h of this.#helpers) h.worker.terminate();
    this.#blas?.close();
    await Promise.resolve();
  }

  async #run(
    kind: RunKind,
    chunk: BatchChunk,
    count: number,
    batch: number,
    options: TrainOptions,
    out: RunOutputs,
    batchesPerStep = 1,
    probabilities?: Float32Array,
  ): Promise<void> {
    if (this.#disposed) throw new Error("Expected a live engine but it was disposed");
    if (this.#packed && kind !== "predict") {
      throw new RangeError(`Expected to predict with packed tables but was asked to ${kind}`);
    }
    validateChunk(chunk, this.spec);
    if (batch > this.#layout.maxBatch) {
      throw new RangeError(
        `Expected a batch of at most ${this.#layout.maxBatch} (the engine's maxBatch) but found ${batch}`,
      );
    }
    if (count > chunk.samples) {
      throw new RangeError(`Expected ${count} samples in the chunk but found ${chunk.samples}`);
    }
    if (kind !== "predict" && !(options.learningRate >= 0)) {
      throw new RangeError(`Expected a learning rate >= 0 but found ${options.learningRate}`);
    }
    if (count === 0) return;
    const shared = this.#helpers.length > 0 ? shareChunk(chunk) : chunk;
    // One request per chunk (nothing per iteration): posted to the helpers and run here.
    const request: Extract<WorkerRequest, { type: "run" }> = {
      type: "run",
      kind,
      chunk: shared,
      first: 0,
      count,
      batch,
      learningRate: options.learningRate,
      firstStep: this.#step,
      batchesPerStep,
      quantize: this.#quantActive,
      tableMaximaValid: !this.#tablesWritten && !this.#tablesHandedOut,
      incrementalTableMaxima: this.#incrementalTableMaxima,
      fusedMlpUpdate: this.#fusedMlpUpdate,
      // An exchange or a gradient hook needs every gradient before any weight moves.
      mlpUpdateInBackward: this.#fusedMlpUpdate && !out.exchange && !out.onGradients,
      ...(probabilities ? { probabilities } : {}),
    };
    this.#tiles.reset();
    // Until a run completes, its tables are not known to be as the threads' maxima say.
    this.#tablesWritten = true;
    for (const h of this.#helpers) h.worker.postMessage(request);
    try {
      this.#program.run(request, out);
      this.#tablesWritten = false;
      if (kind !== "predict") this.#step += Math.floor(count / batch / batchesPerStep);
    } catch (error) {
      this.#barrier.abort();
      // Collect every helper's report so that the next run starts clean.
      const reports = await Promise.all(this.#helpers.map((h) => h.next()));
      this.#barrier.reset();
      const cause = reports.find((r) => r.type === "error" && !r.aborted);
      if (error instanceof BarrierAbortedError && cause) {
        throw new Error(`A CPU engine thread failed: ${cause.message}`);
      }
      throw error;
    }
  }

  #writeLinear(layers: LinearLayout[], params: LinearParams[]): void {
    const f32 = this.#program.f32;
    checkLinearShapes(layers, params);
    layers.forEach((l, i) => {
      const p = params[i];
      for (let o = 0; o < l.outputs; o++) {
        f32.set(p.weight.subarray(o * l.inputs, (o + 1) * l.inputs), l.w / 4 + o * l.inP);
      }
      f32.set(p.bias, l.b / 4);
    });
  }

  #readGradients(chunk: BatchChunk, s0: number, rows: number): Params {
    const f32 = this.#program.f32;
    const L = this.#layout;
    const d = this.spec.embeddingDim;
    const embeddings = this.spec.tableRows.map((n, t) => {
      const g = new Float32Array(n * d);
      const idx = chunk.indices[t], off = chunk.offsets[t];
      for (let r = 0; r < rows; r++) {
        const src = L.dt / 4 + r * L.ldt + (t + 1) * L.dimP;
        for (let j = off[s0 + r]; j < off[s0 + r + 1]; j++) {
          for (let q = 0; q < d; q++) g[idx[j] * d + q] += f32[src + q];
        }
      }
      return g;
    });
    const read = (layers: LinearLayout[]) => layers.map((l) => unpadLinear(f32, l, l.gw, l.gb));
    return { embeddings, bottom: read(L.bottom), top: read(L.top) };
  }
}

function unpadLinear(f32: Float32Array, l: LinearLayout, w: number, b: number): LinearParams {
  const weight = new Float32Array(l.inputs * l.outputs);
  for (let o = 0; o < l.outputs; o++) {
    weight.set(f32.subarray(w / 4 + o * l.inP, w / 4 + o * l.inP + l.inputs), o * l.inputs);
  }
  return { weight, bias: f32.slice(b / 4, b / 4 + l.outputs) };
}
