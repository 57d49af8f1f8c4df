/**
 * The WebGPU engine: DLRM training in WGSL kernels through Deno's built-in WebGPU.
 *
 * Built for what Deno WebGPU costs (see `../shared/design/gpu.md`): a whole chunk of iterations
 * is recorded as dispatches in as few compute passes as timing allows and sent in one submit;
 * the chunk's input is uploaded with one `writeBuffer` per array and each dispatch finds its batch
 * through a per-iteration uniform block bound at a dynamic offset; nothing waits on the GPU inside
 * the chunk; losses (and scales) are read back once, at its end.
 *
 * @module
 */
import { type BatchChunk, batchCount, validateChunk } from "../batch.ts";
import type {
  Engine,
  EngineCapabilities,
  EngineInfo,
  StepTrace,
  TrainChunkResult,
  TrainOptions,
} from "../engine.ts";
import { initMlps, type LinearParams, type Params } from "../params.ts";
import { allocatePhaseSamples, type Phase, type PhaseSamples } from "../phases.ts";
import { levels, type QuantConfig, QuantConfigSchema } from "../quant.ts";
import { Rng, STREAM } from "../rng.ts";
import { type ModelSpec, validateSpec } from "../spec.ts";
import { NonFiniteLossError } from "../engine.ts";
import { BufferManager, STORAGE } from "./buffers.ts";
import { type GpuDevice, requestGpuDevice } from "./device.ts";
import { type GpuLayout, type PackedLinear, planGpuLayout } from "./layout.ts";
import {
  type Binding,
  bindKernel,
  type BoundKernel,
  ITER_STRIDE,
  type KernelSource,
  PipelineCache,
} from "./pipelines.ts";
import { planTables, segmentWords, type TablePlan } from "./table_plan.ts";
import { embeddingUpdateKernel } from "./kernels/embedding_update.ts";
import { EMBEDDING_SORT_LOCAL } from "./kernels/embedding_sort_local.ts";
import { sortDispatches, sortSegment } from "./sort_plan.ts";
import { EMBEDDING_SORT_STEP } from "./kernels/embedding_sort_step.ts";
import {
  EMBEDDING_UPDATE_SORTED_WORKGROUP,
  embeddingUpdateSortedKernel,
} from "./kernels/embedding_update_sorted.ts";
import {
  GATHER_ACCUMULATE,
  GATHER_DOREFA,
  GATHER_QUANTIZE,
  gatherKernel,
} from "./kernels/gather.ts";
import {
  GEMM_A_AT_S0,
  GEMM_B_AT_S0,
  GEMM_BIAS,
  GEMM_FIELDS,
  GEMM_K_ROWS,
  GEMM_M_ROWS,
  GEMM_MASK,
  GEMM_RELU,
} from "./kernels/gemm.ts";
import { GEMM_SPLIT_REDUCE } from "./kernels/gemm_split_reduce.ts";
import {
  gemmDispatch,
  gemmLoadOrder,
  type GemmPlan,
  gemmPlanKernel,
  gemmReduceDispatch,
  planGemm,
} from "./gemm_plan.ts";
import { INTERACTION_BACKWARD } from "./kernels/interaction_backward.ts";
import { INTERACTION_FORWARD } from "./kernels/interaction_forward.ts";
import { MODE_GRADIENT, MODE_PROBABILITIES } from "./kernels/iter.ts";
import { LOSS } from "./kernels/loss.ts";
import {
  ROW_QUANTIZE,
  ROW_QUANTIZE_BIAS,
  ROW_QUANTIZE_LEARNED,
  ROW_QUANTIZE_MATRIX,
} from "./kernels/row_quantize.ts";
import { SGD } from "./kernels/sgd.ts";
import { MAX_ABS_BLOCK, tableMaxAbsKernel } from "./kernels/table_max_abs.ts";
import {
  MAX_ABS_VEC4_BLOCK,
  MAX_ABS_VEC4_ROW,
  tableMaxAbsVec4Kernel,
} from "./kernels/table_max_abs_vec4.ts";
import { FAKE_QUANTIZE_BLOCK, tableFakeQuantizeKernel } from "./kernels/table_fake_quantize.ts";
import { TABLE_SCALE, TABLE_SCALE_DOREFA } from "./kernels/table_scale.ts";
import { ROW_MAX_ABS } from "./kernels/row_max_abs.ts";
import { DOREFA_QUANTIZE } from "./kernels/dorefa_quantize.ts";
import { COPY_QUANTIZE_BLOCK, tableCopyQuantizeKernel } from "./kernels/table_copy_quantize.ts";
import { LSQ_ROWS } from "./kernels/lsq_rows.ts";
import { LSQ_ROW_STEP } from "./kernels/lsq_row_step.ts";
import { lsqEmbeddingUpdateKernel } from "./kernels/lsq_embedding_update.ts";
import { LSQ_TABLE_STEP } from "./kernels/lsq_table_step.ts";
import { PACT_FORWARD } from "./kernels/pact_forward.ts";
import { PACT_BACKWARD, PACT_UNIT } from "./kernels/pact_backward.ts";
import { PACT_ALPHA } from "./kernels/pact_alpha.ts";

/** A call's place in the submission order (see `GpuEngine.#turn`). */
interface SubmitTurn {
  /** Null when every earlier call has submitted, else a promise of it (then record). */
  earlierSubmitted(): Promise<void> | null;
  /** Settles once every earlier call has read its work back (or failed). */
  earlierDone(): Promise<void>;
  /** Submits once every earlier call has read its work back. */
  submit(commands: GPUCommandBuffer): Promise<void>;
  /** Ends the turn (after the readback, or on failure). */
  end(): void;
}

/** What later turns see of one. */
interface TurnState {
  ended: boolean;
  submitted: boolean;
  /** Settles when the turn ends (its work read back, or it failed). */
  done: Promise<void>;
  /** Settles when it has submitted (or ended without). */
  sent: Promise<void>;
}

/** Resolves on a later task of the event loop (after the caller's synchronous code). */
function nextTask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Options of {@linkcode createGpuEngine}. */
export interface GpuEngineOptions {
  /** The architecture. */
  spec: ModelSpec;
  /** Largest batch the engine will see (training or evaluation). */
  maxBatch: number;
  /** Seed of DLRM's initialisation (ignored when `params` is given). */
  seed?: number;
  /** Initial parameters (copied), instead of a seeded initialisation. */
  params?: Params;
  /** Quantization-aware training; absent or null trains in FP32. */
  quantization?: QuantConfig | null;
  /**
   * Largest table arena in bytes (default: the device's largest storage binding). Tests force a
   * small one to exercise tables split across buffers.
   */
  arenaBytes?: number;
  /** Most arenas one kernel binds (default: what the device allows). */
  arenasPerGroup?: number;
  /**
   * With `timestamp-query`, every this many iterations (the first of each chunk included) are
   * recorded as one compute pass per phase and timed per phase; the others run in one pass per
   * stretch and get its time divided evenly, split by the sampled phases' proportions. Default 32.
   */
  timingEvery?: number;
  /**
   * Batches whose largest table gets at least this many indices update the embeddings through a
   * GPU sort of the indices by row (O(B log² B)) instead of the pairwise scan (O(B²)); both
   * apply the same subtractions in the same order. Default {@linkcode SORTED_UPDATE_FROM}; 0
   * always sorts, Infinity never does.
   */
  sortedUpdateFrom?: number;
}

/** Default of {@linkcode GpuEngineOptions.sortedUpdateFrom}. */
export const SORTED_UPDATE_FROM = 512;

/** Creates a WebGPU engine and initialises its parameters exactly as the CPU engine does. */
export async function createGpuEngine(options: GpuEngineOptions): Promise<Engine> {
  const spec = validateSpec(options.spec);
  if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1 || options.maxBatch > 65535) {
    throw new RangeError(
      `Expected maxBatch to be an integer in [1, 65535] but found ${options.maxBatch}`,
    );
  }
  const quant = options.quantization ? QuantConfigSchema.parse(options.quantization) : null;
  if (quant) checkSupported(quant);
  const d = spec.embeddingDim;
  const gpu = await requestGpuDevice();
  try {
    const limits = gpu.device.limits;
    const arenaBytes = Math.floor(
      Math.min(
        options.arenaBytes ?? Infinity,
        limits.maxStorageBufferBindingSize,
        limits.maxBufferSize,
      ) / 4,
    ) * 4;
    // The table kernels bind at most 7 other storage buffers.
    // HAWQ's copy kernel binds each arena twice (source and copy) beside 3 other buffers.
    const perGroup = Math.min(
      options.arenasPerGroup ?? Infinity,
      limits.maxStorageBuffersPerShaderStage - 7,
      wholeTableCopies(quant)
        ? Math.floor((limits.maxStorageBuffersPerShaderStage - 3) / 2)
        : Infinity,
    );
    const plan = planTables(spec.tableRows, d, arenaBytes, perGroup);
    const engine = new GpuEngine(spec, options, quant, gpu, plan);
    engine.initialize(options.params, options.seed ?? 0);
    return engine;
  } catch (error) {
    gpu.device.destroy();
    throw error;
  }
}

/**
 * Throws for the QAT settings that neither engine defines: DoReFa ("PACT") quantizes gathered
 * rows only (the CPU engine makes no DoReFa table copy) and leaves biases in FP32 (the CPU engine
 * quantizes no bias for it).
 */
function checkSupported(q: QuantConfig): void {
  const missing = [];
  if (q.quantizer === "dorefa" && q.embeddingBits !== null && !q.gatheredRowsOnly) {
    missing.push("DoReFa with whole-table copies (expected gatheredRowsOnly: true)");
  }
  if (q.quantizer === "dorefa" && q.mlpBits !== null && q.quantizeBias) {
    missing.push("DoReFa with quantized biases (expected quantizeBias: false)");
  }
  if (missing.length) {
    throw new Error(`The WebGPU engine does not run ${missing.join(", ")}`);
  }
}

/** Whether `q` clips activations (PACT), as the CPU engine decides it. */
function pactActive(q: QuantConfig | null): boolean {
  return Boolean(q?.activationClip && q.mlpBits !== null);
}

/** Whether `q` trains on whole-table fake-quantized copies (HAWQ). */
function wholeTableCopies(q: QuantConfig | null): boolean {
  return q !== null && q.embeddingBits !== null && !q.gatheredRowsOnly;
}

/** GPU state of the QAT methods beyond DQRM (absent parts are null). */
interface QatBuffers {
  /** Per-row max |w| of every layer (matrix-wise minmax, DoReFa). */
  rowMax: GPUBuffer;
  /** LSQ's learned MLP row steps and their gradients. */
  rowSteps: GPUBuffer | null;
  rowStepGrads: GPUBuffer | null;
  /** HAWQ's fake-quantized copies of the arenas, arena by arena. */
  copies: GPUBuffer[] | null;
  /** Fills a group's unused copy bindings (the read-side filler may not alias a written one). */
  copyDummy: GPUBuffer | null;
  /** PACT: each layer's learned clip, its gradient parts per 8-column unit, unit counts. */
  alphas: GPUBuffer | null;
  pactParts: GPUBuffer | null;
  pactUnits: GPUBuffer | null;
  unitsPerLayer: number;
  /** PACT: each clipped layer's unclipped ReLU output. */
  pre: Map<PackedLinear, GPUBuffer>;
}

/** A GEMM planned for one batch size: its bound kernels (none for an empty product) and grids. */
interface PlannedGemm {
  kernels: BoundKernel[];
  main: [number, number, number];
  reduce: [number, number];
}

/**
 * One matrix product of an iteration: its GEMM uniform fields and buffers (A, B, C, bias, mask),
 * bound per plan (tile shape, K splits) when first recorded.
 */
interface GemmOp {
  fields: Partial<Record<typeof GEMM_FIELDS[number], number>>;
  buffers: Binding[];
  /** Floats between the partial sums of two K splits: the most rows of C times its columns. */
  splitStride: number;
  bound: Map<string, BoundKernel[]>;
  /** The plan, kernels and workgroup counts per batch rows (planned once per batch size). */
  byRows: Map<number, PlannedGemm>;
}

/** Bound kernels of one layer. */
interface LayerKernels {
  forward: GemmOp;
  /** Forward with the fake-quantized weights (QAT). */
  forwardQ: GemmOp;
  weightGrad: GemmOp;
  /** The bias gradient, dYᵀ times a column of ones: a GEMM, so large batches split K. */
  biasGrad: GemmOp;
  inputGrad: GemmOp | null;
  inputGradQ: GemmOp | null;
  quantize: BoundKernel;
  /** Row maxima before `quantize` (matrix-wise minmax) or DoReFa's quantizer, or null. */
  rowMax: BoundKernel | null;
  dorefa: BoundKernel | null;
  /** LSQ: gradient masking with the steps' gradient (backward), step update, or null. */
  lsqRows: BoundKernel | null;
  lsqStep: BoundKernel | null;
  /** PACT: this layer's output clip (forward), its input's clip backward, or null. */
  pactForward: BoundKernel | null;
  pactBackward: BoundKernel | null;
  layer: PackedLinear;
}

/** The chunk input buffers, grown as needed. */
interface InputBuffers {
  dense: GPUBuffer;
  labels: GPUBuffer;
  indices: GPUBuffer;
  offsets: GPUBuffer;
  dir: GPUBuffer;
  iter: GPUBuffer;
  probs: GPUBuffer;
  losses: GPUBuffer;
  /** LSQ: the step-gradient parts of each table's gathered values in one batch. */
  lsqParts: GPUBuffer;
  /** Capacities in bytes, parallel to the buffers. */
  caps: Record<string, number>;
}

type Kind = "train" | "predict" | "trace";

/** Phases of one training iteration that get a pass of their own when sampled. */
const PASS_PHASES: readonly Phase[] = ["scale", "forward", "backward", "update"];

class GpuEngine implements Engine {
  readonly spec: ModelSpec;
  readonly info: EngineInfo;
  /** A chunk is recorded while the one before trains (calls take turns to submit). */
  readonly capabilities: EngineCapabilities = { overlapsChunks: true };
  readonly #gpu: GpuDevice;
  readonly #device: GPUDevice;
  readonly #buffers: BufferManager;
  readonly #cache: PipelineCache;
  readonly #layout: GpuLayout;
  readonly #plan: TablePlan;
  readonly #quant: QuantConfig | null;
  readonly #options: GpuEngineOptions;
  readonly #timingEvery: number;
  // Parameters and state.
  readonly #arenas: GPUBuffer[];
  readonly #mlp: GPUBuffer;
  readonly #mlpGrad: GPUBuffer;
  readonly #mlpQ: GPUBuffer;
  readonly #rowScales: GPUBuffer;
  readonly #scales: GPUBuffer;
  readonly #maxBits: GPUBuffer;
  readonly #segs: GPUBuffer;
  readonly #segTable: GPUBuffer;
  // Activations.
  readonly #t: GPUBuffer;
  readonly #dt: GPUBuffer;
  readonly #r: GPUBuffer;
  readonly #dr: GPUBuffer;
  readonly #hidden: Map<PackedLinear, { y: GPUBuffer; dy: GPUBuffer }>;
  readonly #z: GPUBuffer;
  readonly #dz: GPUBuffer;
  readonly #dummy: GPUBuffer;
  readonly #qat: QatBuffers;
  /** maxBatch ones: B of the bias gradient GEMM. */
  readonly #ones: GPUBuffer;
  #input: InputBuffers;
  #bound: ReturnType<GpuEngine["bindAll"]> | null = null;
  #querySet: GPUQuerySet | null = null;
  #queryResolve: GPUBuffer | null = null;
  // Host state.
  #step = 0;
  #quantActive = true;
  #scalesFound = false;
  #hostScales: Float32Array;
  #scalesStale = false;
  /** LSQ's steps have been initialised from the weights (at the first quantized call). */
  #lsqReady = false;
  #qatPreparing: Promise<void> | null = null;
  #disposed = false;

  constructor(
    spec: ModelSpec,
    options: GpuEngineOptions,
    quant: QuantConfig | null,
    gpu: GpuDevice,
    plan: TablePlan,
  ) {
    this.spec = spec;
    this.#options = options;
    this.#quant = quant;
    this.#gpu = gpu;
    this.#device = gpu.device;
    this.#plan = plan;
    this.#timingEvery = Math.max(1, Math.floor(options.timingEvery ?? 32));
    const buffers = this.#buffers = new BufferManager(gpu.device);
    this.#cache = new PipelineCache(gpu.device);
    const L = this.#layout = planGpuLayout(spec);
    const tables = spec.tableRows.length;
    const B = options.maxBatch;
    this.#arenas = plan.arenaFloats.map((f, i) => buffers.create(`arena ${i}`, f * 4));
    this.#mlp = buffers.create("mlp", L.floats * 4);
    this.#mlpGrad = buffers.create("mlp gradients", L.floats * 4);
    this.#mlpQ = buffers.create("mlp quantized", quant?.mlpBits ? L.floats * 4 : 16);
    this.#rowScales = buffers.create("row scales", L.rows * 4);
    this.#scales = buffers.create("table scales", tables * 4);
    this.#maxBits = buffers.create("table max bits", tables * 4);
    const segWords = segmentWords(plan);
    this.#segs = buffers.create("segments", segWords.byteLength);
    writeTo(this.#device.queue, this.#segs, 0, segWords);
    const segTable = Uint32Array.from(plan.segments, (s) => s.table);
    this.#segTable = buffers.create("segment tables", Math.max(4, segTable.byteLength));
    if (segTable.length) writeTo(this.#device.queue, this.#segTable, 0, segTable);
    this.#t = buffers.create("T", B * L.ldt * 4);
    this.#dt = buffers.create("dT", B * L.ldt * 4);
    this.#r = buffers.create("R", B * L.ldr * 4);
    this.#dr = buffers.create("dR", B * L.ldr * 4);
    this.#hidden = new Map();
    for (const part of [L.bottom, L.top]) {
      for (const layer of part.slice(0, -1)) {
        this.#hidden.set(layer, {
          y: buffers.create("activation", B * layer.outputs * 4),
          dy: buffers.create("activation gradient", B * layer.outputs * 4),
        });
      }
    }
    this.#z = buffers.create("logits", B * 4);
    this.#dz = buffers.create("logit gradients", B * 4);
    this.#dummy = buffers.create("dummy", 16);
    this.#ones = buffers.create("ones", B * 4);
    writeTo(this.#device.queue, this.#ones, 0, new Float32Array(B).fill(1));
    // Split-K partials: room for the largest split product of a batch of maxBatch.
    const splitFloats = [...L.bottom, ...L.top].flatMap((l) =>
      [
        [B, l.outputs, l.inputs],
        [B, l.inputs, l.outputs],
        [l.outputs, l.inputs, B],
        [l.outputs, 1, B],
      ].map(
        ([m, n, k]) => {
          const p = planGemm(m, n, k);
          return p.splits > 1 ? p.splits * m * n : 0;
        },
      )
    );
    this.#splitScratch = buffers.create("gemm split partials", 4 * Math.max(...splitFloats));
    this.#hostScales = new Float32Array(tables);
    const make = (name: string, bytes: number, usage = STORAGE) =>
      buffers.create(name, bytes, usage);
    this.#input = {
      dense: make("dense", 16),
      labels: make("labels", 16),
      indices: make("indices", 16),
      offsets: make("offsets", 16),
      dir: make("table directory", tables * 16),
      iter: make("iterations", ITER_STRIDE, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST),
      probs: make("probabilities", 16),
      losses: make("losses", 16),
      lsqParts: make("lsq step parts", 16),
      caps: { iter: ITER_STRIDE },
    };
    this.#qat = this.#createQatBuffers(B);
    const lim = gpu.device.limits;
    this.info = {
      name: "gpu",
      device: gpu.description,
      threads: 1,
      details: {
        backend: "webgpu",
        maxBatch: B,
        arenas: plan.arenaFloats.length,
        arenaGroups: plan.groups,
        maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
        maxBufferSize: lim.maxBufferSize,
        timing: gpu.timestamps
          ? `timestamp-query, phases sampled every ${this.#timingEvery} iterations`
          : "wall clock (no timestamp-query): all time in forward",
      },
    };
  }

  /** The buffers of the configured QAT method (see {@linkcode QatBuffers}). */
  #createQatBuffers(maxBatch: number): QatBuffers {
    const q = this.#quant;
    const L = this.#layout;
    const buffers = this.#buffers;
    const all = [...L.bottom, ...L.top];
    const lsqMlp = q?.quantizer === "lsq" && q.mlpBits !== null;
    const pact = pactActive(q);
    const pre = new Map<PackedLinear, GPUBuffer>();
    let alphas = null, pactParts = null, pactUnits = null;
    const unitsPerLayer = Math.max(...all.map((l) => Math.ceil(l.outputs / PACT_UNIT)));
    if (pact) {
      // PACT clips the ReLU outputs that feed another linear layer: the hidden activations.
      for (const layer of this.#hidden.keys()) {
        pre.set(layer, buffers.create("pact unclipped", maxBatch * layer.outputs * 4));
      }
      alphas = buffers.create("pact clips", all.length * 4);
      writeTo(this.#device.queue, alphas, 0, new Float32Array(all.length).fill(10));
      pactParts = buffers.create("pact clip gradients", all.length * unitsPerLayer * 4);
      pactUnits = buffers.create("pact units", all.length * 4);
      const units = Uint32Array.from(
        all,
        (l) => (pre.has(l) ? Math.ceil(l.outputs / PACT_UNIT) : 0),
      );
      writeTo(this.#device.queue, pactUnits, 0, units);
    }
    return {
      rowMax: buffers.create("row max", L.rows * 4),
      rowSteps: lsqMlp ? buffers.create("lsq row steps", L.rows * 4) : null,
      rowStepGrads: lsqMlp ? buffers.create("lsq row step gradients", L.rows * 4) : null,
      copies: wholeTableCopies(q)
        ? this.#plan.arenaFloats.map((f, i) => buffers.create(`arena copy ${i}`, f * 4))
        : null,
      copyDummy: wholeTableCopies(q) ? buffers.create("copy dummy", 16) : null,
      alphas,
      pactParts,
      pactUnits,
      unitsPerLayer,
      pre,
    };
  }

  /** Uploads given parameters, or DLRM's seeded initialisation (the CPU engine's values). */
  initialize(params: Params | undefined, seed: number): void {
    const L = this.#layout;
    const mlps = params ?? initMlps(this.spec, seed);
    const packed = new Float32Array(L.floats);
    const put = (layers: PackedLinear[], given: LinearParams[]) => {
      if (given.length !== layers.length) {
        throw new RangeError(`Expected ${layers.length} layers but found ${given.length}`);
      }
      layers.forEach((l, i) => {
        const p = given[i];
        if (p.weight.length !== l.inputs * l.outputs || p.bias.length !== l.outputs) {
          throw new RangeError(
            `Expected layer ${i} to be ${l.outputs}x${l.inputs} but found ${p.weight.length} weights and ${p.bias.length} biases`,
          );
        }
        packed.set(p.weight, l.w);
        packed.set(p.bias, l.b);
      });
    };
    put(L.bottom, mlps.bottom);
    put(L.top, mlps.top);
    writeTo(this.#device.queue, this.#mlp, 0, packed);
    const d = this.spec.embeddingDim;
    this.spec.tableRows.forEach((rows, t) => {
      if (params && params.embeddings[t].length !== rows * d) {
        throw new RangeError(
          `Expected table ${t} to hold ${rows * d} values but found ${params.embeddings[t].length}`,
        );
      }
      this.#forEachTablePiece(t, params?.embeddings[t], seed, (piece, floatStart) => {
        this.#writeTableRange(t, floatStart, piece);
      });
    });
  }

  /** Table t's initial values in pieces of at most 16 Mi floats (the seeded stream, or params). */
  #forEachTablePiece(
    t: number,
    given: Float32Array | undefined,
    seed: number,
    each: (piece: Float32Array, floatStart: number) => void,
  ): void {
    const rows = this.spec.tableRows[t];
    const total = rows * this.spec.embeddingDim;
    if (given) {
      each(given, 0);
      return;
    }
    // initTable's stream, drawn piece by piece (the stream does not depend on the slicing).
    const bound = Math.sqrt(1 / rows);
    const rng = new Rng(seed, STREAM.init, t);
    const piece = new Float32Array(Math.min(total, 1 << 24));
    for (let at = 0; at < total; at += piece.length) {
      const view = piece.subarray(0, Math.min(piece.length, total - at));
      rng.fillUniform(view, -bound, bound);
      each(view, at);
    }
  }

  /** Writes floats [floatStart, floatStart + data.length) of table t into its arenas. */
  #writeTableRange(t: number, floatStart: number, data: Float32Array): void {
    const d = this.spec.embeddingDim;
    const p = this.#plan;
    for (let s = p.firstSegment[t]; s < p.firstSegment[t] + p.segmentCount[t]; s++) {
      const seg = p.segments[s];
      const lo = Math.max(seg.rowStart * d, floatStart);
      const hi = Math.min(seg.rowEnd * d, floatStart + data.length);
      if (lo >= hi) continue;
      writeTo(
        this.#device.queue,
        this.#arenas[seg.arena],
        (seg.offset + lo - seg.rowStart * d) * 4,
        data,
        lo - floatStart,
        hi - lo,
      );
    }
  }

  // ---------------------------------------------------------------- binding

  #kernel(source: KernelSource) {
    return this.#cache.get(source);
  }

  #uniform(label: string, words: ArrayLike<number>, floats: ReadonlySet<number> = new Set()) {
    const data = new ArrayBuffer(Math.max(16, Math.ceil(words.length / 4) * 16));
    const u32 = new Uint32Array(data), f32 = new Float32Array(data);
    for (let i = 0; i < words.length; i++) {
      if (floats.has(i)) f32[i] = words[i];
      else u32[i] = words[i];
    }
    const buffer = this.#buffers.create(
      label,
      data.byteLength,
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    );
    writeTo(this.#device.queue, buffer, 0, data);
    this.#collect?.push(buffer);
    return buffer;
  }

  #bind(source: KernelSource, buffers: Binding[]): BoundKernel {
    return bindKernel(this.#device, this.#kernel(source), buffers);
  }

  #range(buffer: GPUBuffer, floatOffset: number, floats: number): Binding {
    return { buffer, offset: floatOffset * 4, size: Math.max(4, floats * 4) };
  }

  /** Builds every bind group over the current buffers (again after input buffers grow). */
  bindAll() {
    for (const u of this.#bindUniforms.splice(0)) this.#buffers.destroy(u);
    this.#collect = this.#bindUniforms;
    try {
      return this.#bindAllNow();
    } finally {
      this.#collect = null;
    }
  }

  /** Uniform buffers of the current bind groups (freed when they are rebuilt). */
  readonly #bindUniforms: GPUBuffer[] = [];
  #collect: GPUBuffer[] | null = null;

  #bindAllNow() {
    const L = this.#layout;
    const spec = this.spec;
    const d = spec.embeddingDim;
    const tables = spec.tableRows.length;
    const inp = this.#input;
    const gemm = (fields: GemmOp["fields"], buffers: Binding[]): GemmOp => ({
      fields,
      buffers,
      splitStride: (fields.flags! & GEMM_M_ROWS ? this.#options.maxBatch : fields.m!) * fields.n!,
      bound: new Map(),
      byRows: new Map(),
    });
    const layerKernels = new Map<PackedLinear, LayerKernels>();
    const all = [...L.bottom, ...L.top];
    const quantBits = this.#quant?.mlpBits ?? null;
    for (const [part, layers] of [["bottom", L.bottom], ["top", L.top]] as const) {
      layers.forEach((layer, l) => {
        const isLast = l === layers.length - 1;
        // Input: dense chunk input, R, or the previous layer's output.
        const prev = l > 0 ? this.#hidden.get(layers[l - 1])! : null;
        const x: GPUBuffer = prev ? prev.y : part === "bottom" ? inp.dense : this.#r;
        const dx: GPUBuffer | null = prev ? prev.dy : part === "bottom" ? null : this.#dr;
        const fromChunk = part === "bottom" && l === 0;
        const ldx = layer.inputs;
        // Output: T's vector 0 (bottom), the logits (top), or a hidden activation.
        const h = this.#hidden.get(layer);
        const y = h ? h.y : part === "bottom" ? this.#t : this.#z;
        const dy = h ? h.dy : part === "bottom" ? this.#dt : this.#dz;
        const ldy = h ? layer.outputs : part === "bottom" ? L.ldt : 1;
        const relu = part === "bottom" || !isLast;
        const wRange = (buf: GPUBuffer) => this.#range(buf, layer.w, layer.inputs * layer.outputs);
        const bRange = (buf: GPUBuffer) => this.#range(buf, layer.b, layer.outputs);
        const fwdU: GemmOp["fields"] = {
          m: 0,
          n: layer.outputs,
          k: layer.inputs,
          flags: GEMM_M_ROWS | GEMM_BIAS | (relu ? GEMM_RELU : 0) | (fromChunk ? GEMM_A_AT_S0 : 0),
          aRow: ldx,
          aCol: 1,
          bRow: 1,
          bCol: layer.inputs,
          cRow: ldy,
        };
        const biasQ = this.#quant?.quantizeBias ? this.#mlpQ : this.#mlp;
        const forward = gemm(fwdU, [x, wRange(this.#mlp), y, bRange(this.#mlp), this.#dummy]);
        const forwardQ = quantBits
          ? gemm(fwdU, [x, wRange(this.#mlpQ), y, bRange(biasQ), this.#dummy])
          : forward;
        const weightGrad = gemm(
          {
            m: layer.outputs,
            n: layer.inputs,
            k: 0,
            flags: GEMM_K_ROWS | (fromChunk ? GEMM_B_AT_S0 : 0),
            aRow: 1,
            aCol: ldy,
            bRow: ldx,
            bCol: 1,
            cRow: layer.inputs,
          },
          [dy, x, wRange(this.#mlpGrad), this.#dummy, this.#dummy],
        );
        const biasGrad = gemm(
          {
            m: layer.outputs,
            n: 1,
            k: 0,
            flags: GEMM_K_ROWS,
            aRow: 1,
            aCol: ldy,
            bRow: 1,
            bCol: 0,
            cRow: 1,
          },
          [dy, this.#ones, bRange(this.#mlpGrad), this.#dummy, this.#dummy],
        );
        let inputGrad: GemmOp | null = null, inputGradQ: GemmOp | null = null;
        if (dx) {
          const u: GemmOp["fields"] = {
            m: 0,
            n: layer.inputs,
            k: layer.outputs,
            flags: GEMM_M_ROWS | (prev ? GEMM_MASK : 0),
            aRow: ldy,
            aCol: 1,
            bRow: layer.inputs,
            bCol: 1,
            cRow: layer.inputs,
            maskRow: layer.inputs,
          };
          inputGrad = gemm(u, [dy, wRange(this.#mlp), dx, this.#dummy, x]);
          // PACT masks by the unclipped ReLU output of the layer below (quantized layers only).
          const maskQ = (prev && this.#qat.pre.get(layers[l - 1])) ?? x;
          inputGradQ = quantBits
            ? gemm(u, [dy, wRange(this.#mlpQ), dx, this.#dummy, maskQ])
            : inputGrad;
        }
        const lsq = this.#quant?.quantizer === "lsq";
        const quantize = this.#bind(ROW_QUANTIZE, [
          this.#uniform("row quantize", [
            layer.outputs,
            layer.inputs,
            layer.w,
            layer.b,
            levels(quantBits ?? 8),
            (this.#quant?.quantizeBias ? ROW_QUANTIZE_BIAS : 0) |
            (lsq
              ? ROW_QUANTIZE_LEARNED
              : this.#quant?.mlpGranularity === "matrix"
              ? ROW_QUANTIZE_MATRIX
              : 0),
            layer.scales,
            0,
          ], new Set([4])),
          this.#mlp,
          this.#mlpQ,
          lsq && this.#qat.rowSteps ? this.#qat.rowSteps : this.#rowScales,
          this.#qat.rowMax,
        ]);
        layerKernels.set(layer, {
          forward,
          forwardQ,
          weightGrad,
          biasGrad,
          inputGrad,
          inputGradQ,
          quantize,
          ...this.#bindQatLayer(layer, all.indexOf(layer), prev ? layers[l - 1] : null, dx, y),
          layer,
        });
      });
    }
    const interaction = this.#uniform("interaction", [L.vectors, d, L.ldt, L.ldr]);
    const interactForward = this.#bind(INTERACTION_FORWARD, [interaction, this.#t, this.#r]);
    const interactBackward = this.#bind(INTERACTION_BACKWARD, [
      interaction,
      this.#t,
      this.#dr,
      this.#dt,
    ]);
    const loss = this.#bind(LOSS, [this.#z, inp.labels, this.#dz, inp.probs, inp.losses]);
    const sgd = this.#bind(SGD, [this.#uniform("sgd", [L.floats]), this.#mlp, this.#mlpGrad]);
    // Table kernels, one bound kernel per arena group.
    const plan = this.#plan;
    const k = plan.arenasPerGroup;
    const groupArenas = (g: number, arenas = this.#arenas) => {
      const list = arenas.slice(g * k, g * k + k);
      while (list.length < k) list.push(this.#dummy);
      return list;
    };
    const groups = Array.from({ length: plan.groups }, (_, g) => g);
    const bits = this.#quant?.embeddingBits ?? null;
    // DQRM fake-quantizes the gathered rows, DoReFa maps them, HAWQ reads its quantized copies.
    const dorefa = this.#quant?.quantizer === "dorefa";
    const copies = this.#qat.copies;
    const gatherFor = (quantize: boolean) =>
      groups.map((g) =>
        this.#bind(gatherKernel(k), [
          this.#uniform("gather", [
            tables,
            d,
            L.ldt,
            (quantize && !copies ? (dorefa ? GATHER_DOREFA : GATHER_QUANTIZE) : 0) |
            (g > 0 ? GATHER_ACCUMULATE : 0),
            g * k,
            k,
            dorefa ? 2 ** (bits ?? 8) - 1 : levels(bits ?? 8),
            0,
          ], new Set([6])),
          inp.dir,
          this.#segs,
          inp.indices,
          inp.offsets,
          this.#scales,
          this.#t,
          ...groupArenas(g, quantize && copies ? copies : this.#arenas),
        ])
      );
    const gather = gatherFor(false);
    const gatherQ = bits !== null ? gatherFor(true) : gather;
    // LSQ's masked table update and per-table step update (stride: floats per table).
    const partStride = Math.floor((inp.caps.lsqParts ?? 16) / 4 / tables);
    const lsqTables = bits !== null && this.#quant?.quantizer === "lsq";
    const lsqUpdate = lsqTables
      ? groups.map((g) =>
        this.#bind(lsqEmbeddingUpdateKernel(k), [
          this.#uniform(
            "lsq embedding update",
            [tables, d, L.ldt, partStride, g * k, k, levels(bits), 0],
            new Set([6]),
          ),
          inp.dir,
          this.#segs,
          inp.indices,
          inp.offsets,
          this.#dt,
          this.#scales,
          inp.lsqParts,
          ...groupArenas(g),
        ])
      )
      : null;
    const lsqTableStep = lsqTables
      ? this.#bind(LSQ_TABLE_STEP, [
        this.#uniform("lsq table step", [tables, d, partStride, levels(bits)], new Set([3])),
        inp.dir,
        inp.offsets,
        inp.lsqParts,
        this.#scales,
      ])
      : null;
    const qat = this.#qat;
    const pactAlpha = qat.alphas
      ? this.#bind(PACT_ALPHA, [
        this.#uniform("pact alpha", [all.length, qat.unitsPerLayer]),
        qat.alphas,
        qat.pactParts!,
        qat.pactUnits!,
      ])
      : null;
    const update = groups.map((g) =>
      this.#bind(embeddingUpdateKernel(k), [
        this.#uniform("embedding update", [tables, d, L.ldt, 0, g * k, k, 0, 0]),
        inp.dir,
        this.#segs,
        inp.indices,
        inp.offsets,
        this.#dt,
        ...groupArenas(g),
      ])
    );
    return {
      lsqUpdate,
      lsqTableStep,
      pactAlpha,
      layers: all.map((l) => layerKernels.get(l)!),
      bottom: L.bottom.map((l) => layerKernels.get(l)!),
      top: L.top.map((l) => layerKernels.get(l)!),
      interactForward,
      interactBackward,
      loss,
      sgd,
      gather,
      gatherQ,
      update,
      /** Sorted-update dispatches by key segment size (bound when first recorded). */
      sortedUpdates: new Map<number, [BoundKernel, number, number][]>(),
    };
  }

  /**
   * The QAT kernels of one layer beyond DQRM's: `index` is its place in bottom-then-top order,
   * `below` the hidden layer feeding it (or null), `dx` and `y` its input gradient and output.
   */
  #bindQatLayer(
    layer: PackedLinear,
    index: number,
    below: PackedLinear | null,
    dx: GPUBuffer | null,
    y: GPUBuffer,
  ): Pick<
    LayerKernels,
    "rowMax" | "dorefa" | "lsqRows" | "lsqStep" | "pactForward" | "pactBackward"
  > {
    const q = this.#quant;
    const qat = this.#qat;
    const bits = q?.mlpBits ?? null;
    const none = {
      rowMax: null,
      dorefa: null,
      lsqRows: null,
      lsqStep: null,
      pactForward: null,
      pactBackward: null,
    };
    if (!q || bits === null) return none;
    const shape = [layer.outputs, layer.inputs, layer.w, layer.scales];
    const dorefa = q.quantizer === "dorefa";
    const needsMax = dorefa || (q.quantizer === "minmax" && q.mlpGranularity === "matrix");
    const k = 2 ** bits - 1;
    const lsq = q.quantizer === "lsq";
    const preBelow = below ? qat.pre.get(below) : undefined;
    const pre = qat.pre.get(layer);
    return {
      rowMax: needsMax
        ? this.#bind(ROW_MAX_ABS, [this.#uniform("row max", shape), this.#mlp, qat.rowMax])
        : null,
      dorefa: dorefa
        ? this.#bind(DOREFA_QUANTIZE, [
          this.#uniform("dorefa", [...shape, k, 0, 0, 0], new Set([4])),
          this.#mlp,
          this.#mlpQ,
          qat.rowMax,
        ])
        : null,
      lsqRows: lsq
        ? this.#bind(LSQ_ROWS, [
          this.#uniform("lsq rows", [...shape, levels(bits), 0, 0, 0], new Set([4])),
          this.#mlp,
          this.#mlpGrad,
          qat.rowSteps!,
          qat.rowStepGrads!,
        ])
        : null,
      lsqStep: lsq
        ? this.#bind(LSQ_ROW_STEP, [
          this.#uniform("lsq row step", [
            layer.outputs,
            layer.scales,
            Math.sqrt(levels(bits) * layer.inputs * layer.outputs),
            0,
          ], new Set([2])),
          qat.rowSteps!,
          qat.rowStepGrads!,
        ])
        : null,
      pactForward: pre
        ? this.#bind(PACT_FORWARD, [
          this.#uniform("pact forward", [layer.outputs, index, k, 0], new Set([2])),
          qat.alphas!,
          y,
          pre,
        ])
        : null,
      pactBackward: below && preBelow && dx
        ? this.#bind(PACT_BACKWARD, [
          this.#uniform("pact backward", [
            below.outputs,
            index - 1,
            (index - 1) * qat.unitsPerLayer,
            0,
          ]),
          qat.alphas!,
          dx,
          preBelow,
          qat.pactParts!,
        ])
        : null,
    };
  }

  /** Kernels that do not touch the chunk input (scale finding): bound once. */
  #scaleKernels: {
    /** The max-|w| dispatches, one per arena group: kernel and grid. */
    maxAbs: { kernel: BoundKernel; x: number; y: number }[];
    scale: Map<number, BoundKernel>;
    fakeQuantize: Map<number, BoundKernel[]>;
    block: number;
    blocks: number;
  } | null = null;

  #scaleBound(bits: number) {
    const plan = this.#plan;
    const k = plan.arenasPerGroup;
    const d = this.spec.embeddingDim;
    if (!this.#scaleKernels) {
      const maxSeg = Math.max(1, ...plan.segments.map((s) => (s.rowEnd - s.rowStart) * d));
      const least = Math.max(MAX_ABS_BLOCK, FAKE_QUANTIZE_BLOCK, COPY_QUANTIZE_BLOCK);
      const block = Math.max(least, Math.ceil(maxSeg / 65535 / 256) * 256);
      const blocks = Math.ceil(maxSeg / block);
      // Segments on 4-float boundaries (any embedding width that is a multiple of 4) are read
      // as vec4s from a work list; others by the scalar kernel over a (block, segment) grid.
      const vec4 = d % 4 === 0 && plan.segments.every((seg) => seg.offset % 4 === 0);
      const maxAbs = Array.from({ length: plan.groups }, (_, g) => {
        const list = this.#arenas.slice(g * k, g * k + k);
        while (list.length < k) list.push(this.#dummy);
        if (!vec4) {
          const kernel = this.#bind(tableMaxAbsKernel(k), [
            this.#uniform("max abs", [plan.segments.length, d, g * k, k, block, 0, 0, 0]),
            this.#segs,
            this.#segTable,
            this.#maxBits,
            ...list,
          ]);
          return { kernel, x: blocks, y: plan.segments.length };
        }
        const work: number[] = [];
        plan.segments.forEach((seg, i) => {
          if (seg.arena < g * k || seg.arena >= g * k + k) return;
          const floats = (seg.rowEnd - seg.rowStart) * d;
          for (let at = 0; at < floats; at += MAX_ABS_VEC4_BLOCK) work.push(i, at);
        });
        const items = this.#buffers.create("max abs work list", Math.max(16, work.length * 4));
        if (work.length) writeTo(this.#device.queue, items, 0, Uint32Array.from(work));
        const count = work.length / 2;
        const kernel = this.#bind(tableMaxAbsVec4Kernel(k), [
          this.#uniform("max abs", [count, d, g * k, k, MAX_ABS_VEC4_BLOCK, 0, 0, 0]),
          this.#segs,
          this.#segTable,
          this.#maxBits,
          items,
          ...list,
        ]);
        const x = Math.min(count, MAX_ABS_VEC4_ROW);
        return { kernel, x, y: Math.ceil(count / MAX_ABS_VEC4_ROW) };
      });
      this.#scaleKernels = { maxAbs, scale: new Map(), fakeQuantize: new Map(), block, blocks };
    }
    const sk = this.#scaleKernels;
    if (!sk.scale.has(bits)) {
      sk.scale.set(
        bits,
        this.#bind(TABLE_SCALE, [
          this.#uniform(
            "table scale",
            [this.spec.tableRows.length, levels(bits), 0, 0],
            new Set([1]),
          ),
          this.#maxBits,
          this.#scales,
        ]),
      );
      sk.fakeQuantize.set(
        bits,
        Array.from({ length: plan.groups }, (_, g) => {
          const list = this.#arenas.slice(g * k, g * k + k);
          while (list.length < k) list.push(this.#dummy);
          return this.#bind(tableFakeQuantizeKernel(k), [
            this.#uniform("fake quantize", [
              plan.segments.length,
              d,
              g * k,
              k,
              levels(bits),
              sk.block,
              0,
              0,
            ], new Set([4])),
            this.#segs,
            this.#segTable,
            this.#scales,
            ...list,
          ]);
        }),
      );
    }
    return sk;
  }

  /** Table scale kernels of DoReFa and HAWQ (beside {@linkcode #scaleBound}'s): bound once. */
  #qatScaleKernels: { dorefaScale: BoundKernel; copy: Map<number, BoundKernel[]> } | null = null;

  #qatScaleBound(bits: number) {
    const sk = this.#scaleBound(bits);
    this.#qatScaleKernels ??= {
      dorefaScale: this.#bind(TABLE_SCALE, [
        this.#uniform(
          "dorefa table scale",
          [this.spec.tableRows.length, 1, TABLE_SCALE_DOREFA, 0],
          new Set([1]),
        ),
        this.#maxBits,
        this.#scales,
      ]),
      copy: new Map(),
    };
    const qk = this.#qatScaleKernels;
    const copies = this.#qat.copies;
    if (copies && !qk.copy.has(bits)) {
      const plan = this.#plan;
      const k = plan.arenasPerGroup;
      const pad = (list: GPUBuffer[], filler = this.#dummy) => {
        while (list.length < k) list.push(filler);
        return list;
      };
      qk.copy.set(
        bits,
        Array.from({ length: plan.groups }, (_, g) =>
          this.#bind(tableCopyQuantizeKernel(k), [
            this.#uniform("copy quantize", [
              plan.segments.length,
              this.spec.embeddingDim,
              g * k,
              k,
              levels(bits),
              sk.block,
              0,
              0,
            ], new Set([4])),
            this.#segs,
            this.#segTable,
            this.#scales,
            ...pad(this.#arenas.slice(g * k, g * k + k)),
            ...pad(copies.slice(g * k, g * k + k), this.#qat.copyDummy!),
          ])),
      );
    }
    return { ...sk, dorefaScale: qk.dorefaScale, copy: qk.copy.get(bits) ?? [] };
  }

  // ---------------------------------------------------------------- submission order

  /** The latest call's turn (null before the first). */
  #lastTurn: TurnState | null = null;
  /** Calls between taking a turn and ending it. */
  #inFlight = 0;

  /**
   * The next turn to submit, taken when a call starts (so turns follow call order). Recording
   * may start once every earlier call has submitted (its commands may use buffers that recording
   * grows); `submit` waits until every earlier call has read its work back, then submits: Deno's
   * mapAsync blocks until the queue is idle, so a readback while a later chunk is queued would
   * wait for that chunk too and leave the GPU idle while the host records the one after. So a
   * chunk is recorded while the one before trains, and submitted the moment it is read back.
   * Both happen at once (synchronously) when no earlier call is in their way.
   */
  #turn(): SubmitTurn {
    const previous = this.#lastTurn;
    let ended!: () => void, submitted!: () => void;
    const state: TurnState = {
      ended: false,
      submitted: false,
      done: new Promise<void>((r) => (ended = r)),
      sent: new Promise<void>((r) => (submitted = r)),
    };
    this.#lastTurn = state;
    this.#inFlight++;
    const submitNow = (commands: GPUCommandBuffer) => {
      this.#device.queue.submit([commands]);
      state.submitted = true;
      submitted();
    };
    return {
      earlierSubmitted: () =>
        !previous || previous.submitted || previous.ended ? null : previous.sent,
      earlierDone: () => (!previous || previous.ended ? Promise.resolve() : previous.done),
      submit: (commands) => {
        if (!previous || previous.ended) {
          submitNow(commands);
          return Promise.resolve();
        }
        return previous.done.then(() => submitNow(commands));
      },
      end: () => {
        if (state.ended) return;
        state.ended = true;
        this.#inFlight--;
        submitted();
        ended();
      },
    };
  }

  /** Throws unless no call is in flight (for the synchronous methods that submit). */
  #assertIdle(what: string): void {
    if (this.#inFlight > 0) {
      throw new Error(
        `Expected no training or prediction in flight before ${what} but found ${this.#inFlight}` +
          " (await them first)",
      );
    }
  }

  // ---------------------------------------------------------------- input

  #ensure(name: keyof Omit<InputBuffers, "caps">, bytes: number, usage = STORAGE): boolean {
    const inp = this.#input;
    const cap = inp.caps[name] ?? 16;
    if (bytes <= cap) return false;
    const size = Math.max(bytes, Math.ceil(cap * 1.5));
    this.#buffers.destroy(inp[name]);
    inp[name] = this.#buffers.create(name, size, usage);
    inp.caps[name] = Math.ceil(size / 16) * 16;
    return true;
  }

  /** Uploads samples [0, samples) of the chunk: one writeBuffer per array. */
  #upload(chunk: BatchChunk, samples: number): void {
    const q = this.#device.queue;
    const nd = this.spec.denseFeatures;
    const tables = this.spec.tableRows.length;
    let grown = false;
    grown = this.#ensure("dense", samples * nd * 4) || grown;
    grown = this.#ensure("labels", samples * 4) || grown;
    // Indices of every table back to back; offsets arrays once each (one-hot tables share one).
    let indexCount = 0;
    const unique = new Map<Int32Array, number>();
    const dir = new Uint32Array(tables * 4);
    let offsetCount = 0;
    for (let t = 0; t < tables; t++) {
      const off = chunk.offsets[t];
      dir[4 * t] = indexCount;
      indexCount += off[samples];
      let at = unique.get(off);
      if (at === undefined) {
        unique.set(off, at = offsetCount);
        offsetCount += samples + 1;
      }
      dir[4 * t + 1] = at;
      dir[4 * t + 2] = this.#plan.firstSegment[t];
      dir[4 * t + 3] = this.#plan.segmentCount[t];
    }
    const indices = new Int32Array(Math.max(4, indexCount));
    for (let t = 0; t < tables; t++) {
      indices.set(chunk.indices[t].subarray(0, chunk.offsets[t][samples]), dir[4 * t]);
    }
    const offsets = new Int32Array(Math.max(4, offsetCount));
    for (const [off, at] of unique) offsets.set(off.subarray(0, samples + 1), at);
    grown = this.#ensure("indices", indices.byteLength) || grown;
    grown = this.#ensure("offsets", offsets.byteLength) || grown;
    if (grown) this.#bound = null;
    writeTo(q, this.#input.dense, 0, chunk.dense, 0, samples * nd);
    writeTo(q, this.#input.labels, 0, chunk.labels, 0, samples);
    writeTo(q, this.#input.indices, 0, indices);
    writeTo(q, this.#input.offsets, 0, offsets);
    writeTo(q, this.#input.dir, 0, dir);
  }

  /** Writes the per-iteration uniform blocks of `iterations` batches of `batch` samples. */
  #writeIterations(
    iterations: number,
    batch: number,
    samples: number,
    mode: number,
    lr: number,
  ): void {
    const words = ITER_STRIDE / 4;
    const data = new ArrayBuffer(iterations * ITER_STRIDE);
    const u32 = new Uint32Array(data), f32 = new Float32Array(data);
    for (let i = 0; i < iterations; i++) {
      const s0 = i * batch;
      u32[i * words] = s0;
      u32[i * words + 1] = Math.min(batch, samples - s0);
      u32[i * words + 2] = i;
      u32[i * words + 3] = mode;
      f32[i * words + 4] = lr;
      u32[i * words + 5] = s0;
    }
    if (this.#ensure("iter", data.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST)) {
      this.#bound = null;
    }
    writeTo(this.#device.queue, this.#input.iter, 0, data);
  }

  #iterGroup: { buffer: GPUBuffer; group: GPUBindGroup } | null = null;

  #iterBindGroup(): GPUBindGroup {
    const buffer = this.#input.iter;
    if (this.#iterGroup?.buffer !== buffer) {
      this.#iterGroup = {
        buffer,
        group: this.#device.createBindGroup({
          label: "iterations",
          layout: this.#cache.iterLayout,
          entries: [{ binding: 0, resource: { buffer, offset: 0, size: 32 } }],
        }),
      };
    }
    return this.#iterGroup.group;
  }

  // ---------------------------------------------------------------- recording

  #dispatch(pass: GPUComputePassEncoder, k: BoundKernel, x: number, y = 1, z = 1): void {
    if (x === 0 || y === 0 || z === 0) return;
    pass.setPipeline(k.kernel.pipeline);
    pass.setBindGroup(0, k.group);
    pass.dispatchWorkgroups(x, y, z);
  }

  /** Sort keys of the sorted embedding update (tables x a power of two), sized per chunk. */
  #sortKeys: GPUBuffer | null = null;

  /** Sizes the sort keys for the chunk's batches that take the sorted update (before binding). */
  #ensureSortKeys(chunk: BatchChunk, batch: number, iterations: number): void {
    let entries = 0;
    for (const off of new Set(chunk.offsets)) {
      for (let i = 0; i < iterations; i++) {
        entries = Math.max(entries, off[(i + 1) * batch] - off[i * batch]);
      }
    }
    const from = this.#options.sortedUpdateFrom ?? SORTED_UPDATE_FROM;
    if (entries < from || entries === 0) return;
    const bytes = this.spec.tableRows.length * sortSegment(entries) * 8;
    if (bytes <= (this.#sortKeys?.size ?? 0)) return;
    if (this.#sortKeys) this.#buffers.destroy(this.#sortKeys);
    this.#sortKeys = this.#buffers.create("embedding sort keys", bytes);
    this.#bound = null;
  }

  /** Dispatches (kernel, x, y) of the sorted update of batches of at most `entries` per table. */
  #sortedUpdate(entries: number): [BoundKernel, number, number][] {
    const b = this.#bound!;
    const p = sortSegment(entries);
    let list = b.sortedUpdates.get(p);
    if (list) return list;
    const L = this.#layout;
    const tables = this.spec.tableRows.length;
    const inp = this.#input;
    const keys = this.#sortKeys!;
    list = [];
    this.#collect = this.#bindUniforms;
    try {
      for (const s of sortDispatches(tables, p)) {
        const u = this.#uniform("sort", s.words);
        list.push([
          s.kind === "local"
            ? this.#bind(EMBEDDING_SORT_LOCAL, [u, inp.dir, inp.indices, inp.offsets, keys])
            : this.#bind(EMBEDDING_SORT_STEP, [u, keys]),
          s.x,
          1,
        ]);
      }
      const d = this.spec.embeddingDim;
      const x = Math.min(65535, Math.ceil((p * d) / EMBEDDING_UPDATE_SORTED_WORKGROUP));
      const k = this.#plan.arenasPerGroup;
      for (let g = 0; g < this.#plan.groups; g++) {
        const arenas = this.#arenas.slice(g * k, g * k + k);
        while (arenas.length < k) arenas.push(this.#dummy);
        list.push([
          this.#bind(embeddingUpdateSortedKernel(k), [
            this.#uniform("sorted update", [tables, d, L.ldt, p, g * k, k, 0, 0]),
            inp.dir,
            this.#segs,
            inp.offsets,
            keys,
            this.#dt,
            ...arenas,
          ]),
          x,
          tables,
        ]);
      }
    } finally {
      this.#collect = null;
    }
    b.sortedUpdates.set(p, list);
    return list;
  }

  /** Split-K partial sums, sized for every product's plan at maxBatch. */
  #splitScratch: GPUBuffer | null = null;

  /** Records one matrix product of a batch of `rows`: its GEMM (and split-K reduction). */
  #gemm(pass: GPUComputePassEncoder, op: GemmOp, rows: number): void {
    // Recording is the host's hot path: plan and bind once per batch size, then only dispatch.
    let planned = op.byRows.get(rows);
    if (!planned) {
      planned = this.#planGemm(op, rows);
      op.byRows.set(rows, planned);
    }
    if (planned.kernels.length === 0) return;
    this.#dispatch(pass, planned.kernels[0], ...planned.main);
    if (planned.kernels[1]) this.#dispatch(pass, planned.kernels[1], ...planned.reduce);
  }

  /** The plan of `op` at `rows` batch rows: its kernels (bound) and workgroup counts. */
  #planGemm(op: GemmOp, rows: number): PlannedGemm {
    const f = op.fields;
    const m = f.flags! & GEMM_M_ROWS ? rows : f.m!;
    const k = f.flags! & GEMM_K_ROWS ? rows : f.k!;
    const n = f.n!;
    if (m === 0 || n === 0) return { kernels: [], main: [0, 0, 0], reduce: [0, 0] };
    let plan: GemmPlan = planGemm(m, n, k);
    const room = Math.floor((this.#splitScratch?.size ?? 0) / 4 / op.splitStride);
    if (plan.splits > room) plan = { tile: plan.tile, splits: Math.max(1, room) };
    const key = `${plan.tile}/${plan.splits}`;
    let kernels = op.bound.get(key);
    if (!kernels) {
      const [a, b, c, bias, mask] = op.buffers;
      const { aKFast, bKFast } = gemmLoadOrder(f as Parameters<typeof gemmLoadOrder>[0]);
      const source = gemmPlanKernel(plan, aKFast, bKFast);
      const words = (fields: GemmOp["fields"]) => GEMM_FIELDS.map((name) => fields[name] ?? 0);
      this.#collect = this.#bindUniforms;
      try {
        if (plan.splits === 1) {
          kernels = [this.#bind(source, [this.#uniform("gemm", words(f)), a, b, c, bias, mask])];
        } else {
          const split = { ...f, splits: plan.splits, splitStride: op.splitStride };
          const u = this.#uniform("gemm", words(split));
          // The partials' rows are n floats apart: C's layout for the main pass.
          const partU = this.#uniform("gemm", words({ ...split, cRow: n, cBase: 0 }));
          kernels = [
            this.#bind(source, [partU, a, b, this.#splitScratch!, bias, mask]),
            this.#bind(GEMM_SPLIT_REDUCE, [u, this.#splitScratch!, c, bias, mask]),
          ];
        }
      } finally {
        this.#collect = null;
      }
      op.bound.set(key, kernels);
    }
    return { kernels, main: gemmDispatch(plan, m, n), reduce: gemmReduceDispatch(m, n) };
  }

  /** Records one phase of iteration `i` (batch of `rows` samples starting at `s0`). */
  #record(
    pass: GPUComputePassEncoder,
    phase: Phase,
    i: number,
    rows: number,
    chunk: BatchChunk,
    s0: number,
    quant: QuantConfig | null,
    refresh: boolean,
  ): void {
    const b = this.#bound!;
    pass.setBindGroup(1, this.#iterBindGroup(), [i * ITER_STRIDE]);
    const L = this.#layout;
    const d = this.spec.embeddingDim;
    const qm = quant?.mlpBits ? quant : null;
    const pact = pactActive(quant);
    if (phase === "scale") {
      if (quant) this.#recordScale(pass, quant, refresh);
      return;
    }
    if (phase === "forward") {
      const gather = quant?.embeddingBits != null ? b.gatherQ : b.gather;
      const tables = this.spec.tableRows.length;
      for (const k of gather) this.#dispatch(pass, k, Math.ceil((tables * d) / 64), rows);
      for (const l of b.bottom) {
        this.#gemm(pass, qm ? l.forwardQ : l.forward, rows);
        if (pact && l.pactForward) {
          this.#dispatch(pass, l.pactForward, Math.ceil(l.layer.outputs / 64), rows);
        }
      }
      this.#dispatch(pass, b.interactForward, Math.ceil(L.ldr / 64), rows);
      for (const l of b.top) {
        this.#gemm(pass, qm ? l.forwardQ : l.forward, rows);
        if (pact && l.pactForward) {
          this.#dispatch(pass, l.pactForward, Math.ceil(l.layer.outputs / 64), rows);
        }
      }
      this.#dispatch(pass, b.loss, 1);
      return;
    }
    if (phase === "backward") {
      const back = (l: LayerKernels) => {
        this.#gemm(pass, l.weightGrad, rows);
        if (qm && l.lsqRows) this.#dispatch(pass, l.lsqRows, Math.ceil(l.layer.outputs / 64));
        this.#gemm(pass, l.biasGrad, rows);
        const ig = qm ? l.inputGradQ : l.inputGrad;
        if (ig) this.#gemm(pass, ig, rows);
        if (pact && l.pactBackward) {
          this.#dispatch(pass, l.pactBackward, Math.ceil(l.layer.inputs / PACT_UNIT / 64));
        }
      };
      for (let l = b.top.length - 1; l >= 0; l--) back(b.top[l]);
      this.#dispatch(pass, b.interactBackward, Math.ceil((L.vectors * d) / 64), rows);
      for (let l = b.bottom.length - 1; l >= 0; l--) back(b.bottom[l]);
      return;
    }
    if (phase === "update") {
      // The CPU engine's order: PACT's clips, LSQ's row steps, then SGD of the weights.
      if (pact && b.pactAlpha) this.#dispatch(pass, b.pactAlpha, 1);
      if (qm) {
        for (const l of b.layers) {
          if (l.lsqStep) this.#dispatch(pass, l.lsqStep, Math.ceil(l.layer.outputs / 64));
        }
      }
      const n = Math.ceil(L.floats / 256);
      this.#dispatch(pass, b.sgd, Math.min(n, 65535), Math.ceil(n / 65535));
      let entries = 0;
      for (let t = 0; t < chunk.offsets.length; t++) {
        const off = chunk.offsets[t];
        entries = Math.max(entries, off[s0 + rows] - off[s0]);
      }
      const tables = this.spec.tableRows.length;
      if (quant?.embeddingBits != null && b.lsqUpdate && b.lsqTableStep) {
        for (const k of b.lsqUpdate) this.#dispatch(pass, k, Math.ceil((entries * d) / 64), tables);
        this.#dispatch(pass, b.lsqTableStep, tables);
        return;
      }
      const from = this.#options.sortedUpdateFrom ?? SORTED_UPDATE_FROM;
      const keyBytes = tables * sortSegment(entries) * 8;
      if (entries >= from && entries > 0 && keyBytes <= (this.#sortKeys?.size ?? 0)) {
        for (const [k, x, y] of this.#sortedUpdate(entries)) this.#dispatch(pass, k, x, y);
        return;
      }
      for (const k of b.update) {
        this.#dispatch(pass, k, Math.ceil((entries * d) / 64), tables);
      }
    }
  }

  /**
   * The scale phase of QAT: table scales (minmax when `refresh`, DoReFa's every step; LSQ's are
   * learned), HAWQ's whole-table copies, then every MLP matrix fake-quantized.
   */
  #recordScale(pass: GPUComputePassEncoder, quant: QuantConfig, refresh: boolean): void {
    const bits = quant.embeddingBits;
    if (bits !== null) {
      const sk = this.#qatScaleBound(bits);
      const segments = this.#plan.segments.length;
      const tableBlocks = Math.ceil(this.spec.tableRows.length / 64);
      if (quant.quantizer === "dorefa" || (quant.quantizer === "minmax" && refresh)) {
        for (const m of sk.maxAbs) this.#dispatch(pass, m.kernel, m.x, m.y);
        const scale = quant.quantizer === "dorefa" ? sk.dorefaScale : sk.scale.get(bits)!;
        this.#dispatch(pass, scale, tableBlocks);
      }
      for (const k of sk.copy) this.#dispatch(pass, k, sk.blocks, segments);
    }
    if (quant.mlpBits === null) return;
    const b = this.#bound!;
    for (const l of b.layers) if (l.rowMax) this.#dispatch(pass, l.rowMax, l.layer.outputs);
    for (const l of b.layers) this.#dispatch(pass, l.dorefa ?? l.quantize, l.layer.outputs);
  }

  #timestampPass(
    encoder: GPUCommandEncoder,
    queryIndex: number | null,
  ): GPUComputePassEncoder {
    if (queryIndex === null) return encoder.beginComputePass();
    return encoder.beginComputePass({
      timestampWrites: {
        querySet: this.#querySet!,
        beginningOfPassWriteIndex: queryIndex,
        endOfPassWriteIndex: queryIndex + 1,
      },
    });
  }

  #ensureQueries(count: number): void {
    if (this.#querySet && this.#querySet.count >= count) return;
    this.#querySet?.destroy();
    if (this.#queryResolve) this.#buffers.destroy(this.#queryResolve);
    const n = Math.max(count, 256);
    this.#querySet = this.#device.createQuerySet({ type: "timestamp", count: n });
    this.#queryResolve = this.#buffers.create(
      "timestamps",
      n * 8,
      GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    );
  }

  /** Staging copies read back after the submit. */
  #staging(encoder: GPUCommandEncoder, src: GPUBuffer, offset: number, bytes: number): GPUBuffer {
    const buffer = this.#device.createBuffer({
      label: "staging",
      size: Math.max(16, Math.ceil(bytes / 16) * 16),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    if (bytes > 0) encoder.copyBufferToBuffer(src, offset, buffer, 0, Math.ceil(bytes / 4) * 4);
    return buffer;
  }

  async #read(buffer: GPUBuffer): Promise<ArrayBuffer> {
    await buffer.mapAsync(GPUMapMode.READ);
    const copy = buffer.getMappedRange().slice(0);
    buffer.unmap();
    buffer.destroy();
    return copy;
  }

  /**
   * A staging copy of the table scales when `quant` may change them on the GPU, and its reader,
   * which refreshes the host copy (none when `quant` leaves them as they are).
   */
  #stageScales(
    encoder: GPUCommandEncoder,
    quant: QuantConfig | null,
  ): (() => Promise<void>) | null {
    if (quant?.embeddingBits == null) return null;
    return this.#stageScalesNow(encoder);
  }

  #stageScalesNow(encoder: GPUCommandEncoder): () => Promise<void> {
    const staged = this.#staging(encoder, this.#scales, 0, this.spec.tableRows.length * 4);
    return async () => {
      this.#hostScales = new Float32Array(await this.#read(staged), 0, this.spec.tableRows.length);
      this.#scalesStale = false;
    };
  }

  /** Staging copies of table t's segments, and their reader, which assembles the table. */
  #stageTable(encoder: GPUCommandEncoder, t: number): () => Promise<Float32Array> {
    const d = this.spec.embeddingDim;
    const p = this.#plan;
    const parts = p.segments.slice(p.firstSegment[t], p.firstSegment[t] + p.segmentCount[t]).map(
      (s) => ({
        s,
        buffer: this.#staging(
          encoder,
          this.#arenas[s.arena],
          s.offset * 4,
          (s.rowEnd - s.rowStart) * d * 4,
        ),
      }),
    );
    return async () => {
      const got = await Promise.all(parts.map((part) => this.#read(part.buffer)));
      const out = new Float32Array(this.spec.tableRows[t] * d);
      parts.forEach((part, i) => {
        const floats = (part.s.rowEnd - part.s.rowStart) * d;
        out.set(new Float32Array(got[i], 0, floats), part.s.rowStart * d);
      });
      return out;
    };
  }

  #check(chunk: BatchChunk, count: number, batch: number, kind: Kind, lr: number): void {
    if (this.#disposed) throw new Error("Expected a live engine but it was disposed");
    validateChunk(chunk, this.spec);
    if (batch > this.#options.maxBatch) {
      throw new RangeError(
        `Expected a batch of at most ${this.#options.maxBatch} (the engine's maxBatch) but found ${batch}`,
      );
    }
    if (count > chunk.samples) {
      throw new RangeError(`Expected ${count} samples in the chunk but found ${chunk.samples}`);
    }
    if (kind !== "predict" && !(lr >= 0)) {
      throw new RangeError(`Expected a learning rate >= 0 but found ${lr}`);
    }
  }

  /** The QAT settings of the next step, and whether table scales are found in it. */
  #active(): QuantConfig | null {
    return this.#quantActive ? this.#quant : null;
  }

  /**
   * LSQ: initialises the learned steps from the current weights at the first quantized call, as
   * the CPU engine does at its first quantized step: a table's step is 2 mean|w| / sqrt(n)
   * (float64 sum), a row's the same over the row in float32.
   */
  /**
   * LSQ's steps from the weights, once, before the first quantized call: null when there is
   * nothing to do, so that calls record and submit synchronously (the runner relies on a call
   * having read its chunk when it returns); concurrent calls share one preparation and resume in
   * call order.
   */
  #prepareQat(): Promise<void> | null {
    const q = this.#active();
    if (!q || q.quantizer !== "lsq" || this.#lsqReady) return null;
    if (q.embeddingBits === null && q.mlpBits === null) return null;
    return this.#qatPreparing ??= this.#initLsqSteps(q);
  }

  async #initLsqSteps(q: QuantConfig): Promise<void> {
    const params = await this.readParams();
    const queue = this.#device.queue;
    if (q.embeddingBits !== null) {
      const n = levels(q.embeddingBits);
      writeTo(queue, this.#scales, 0, Float32Array.from(params.embeddings, (t) => lsqStep(t, n)));
      this.#scalesFound = true;
    }
    if (q.mlpBits !== null) {
      const L = this.#layout;
      const steps = new Float32Array(L.rows);
      const n = levels(q.mlpBits);
      [...L.bottom, ...L.top].forEach((l, i) => {
        const w = (i < L.bottom.length ? params.bottom[i] : params.top[i - L.bottom.length])
          .weight;
        for (let r = 0; r < l.outputs; r++) {
          steps[l.scales + r] = lsqRowStep(w.subarray(r * l.inputs, (r + 1) * l.inputs), n);
        }
      });
      writeTo(queue, this.#qat.rowSteps!, 0, steps);
    }
    this.#lsqReady = true;
  }

  /** LSQ: grows the buffer of the tables' step-gradient parts to the chunk's largest batch. */
  #ensureLsqParts(chunk: BatchChunk, batch: number, samples: number): boolean {
    const q = this.#quant;
    if (!q || q.quantizer !== "lsq" || q.embeddingBits === null) return false;
    let entries = 1;
    for (const off of chunk.offsets) {
      for (let s0 = 0; s0 < samples; s0 += batch) {
        entries = Math.max(entries, off[Math.min(s0 + batch, samples)] - off[s0]);
      }
    }
    const tables = this.spec.tableRows.length;
    return this.#ensure("lsqParts", tables * entries * this.spec.embeddingDim * 4);
  }

  /** Whether table scales are found at training step `step` (negative: predicting, cached). */
  #refreshAt(step: number): boolean {
    const q = this.#active();
    if (!q || q.embeddingBits === null) return false;
    const refresh = !this.#scalesFound || (step >= 0 && step % q.scalePeriod === 0);
    if (refresh) this.#scalesFound = true;
    return refresh;
  }

  // ---------------------------------------------------------------- Engine

  async trainChunk(chunk: BatchChunk, options: TrainOptions): Promise<TrainChunkResult> {
    const start = performance.now();
    const iterations = batchCount(chunk);
    const batch = chunk.batchSize;
    const samples = iterations * batch;
    this.#check(chunk, samples, batch, "train", options.learningRate);
    const preparing = this.#prepareQat();
    if (preparing) await preparing;
    const phases = allocatePhaseSamples(iterations);
    const loss = new Float32Array(iterations);
    if (iterations === 0) return { iterations, loss, phases, wallMs: 0 };
    const turn = this.#turn();
    try {
      return await this.#trainChunk(chunk, options, turn, start, phases, loss);
    } finally {
      turn.end();
    }
  }

  async #trainChunk(
    chunk: BatchChunk,
    options: TrainOptions,
    turn: SubmitTurn,
    start: number,
    phases: PhaseSamples,
    loss: Float32Array,
  ): Promise<TrainChunkResult> {
    const earlier = turn.earlierSubmitted();
    if (earlier) await earlier;
    const iterations = batchCount(chunk);
    const batch = chunk.batchSize;
    const samples = iterations * batch;
    this.#upload(chunk, samples);
    if (this.#ensureLsqParts(chunk, batch, samples)) this.#bound = null;
    this.#ensureSortKeys(chunk, batch, iterations);
    this.#writeIterations(iterations, batch, samples, MODE_GRADIENT, options.learningRate);
    if (this.#ensure("losses", iterations * 4)) this.#bound = null;
    this.#bound ??= this.bindAll();
    const quant = this.#active();
    const encoder = this.#device.createCommandEncoder();
    // Passes: sampled iterations get one per phase, the stretches between them one each.
    const timed = this.#gpu.timestamps;
    const sampled = (i: number) => timed && i % this.#timingEvery === 0;
    const passes: { phase: Phase | null; first: number; count: number }[] = [];
    for (let i = 0; i < iterations;) {
      if (sampled(i)) {
        for (const p of PASS_PHASES) passes.push({ phase: p, first: i, count: 1 });
        i++;
        continue;
      }
      let j = i;
      while (j < iterations && !sampled(j)) j++;
      passes.push({ phase: null, first: i, count: j - i });
      i = j;
    }
    if (timed) this.#ensureQueries(passes.length * 2);
    const refreshes = Array.from({ length: iterations }, (_, i) => this.#refreshAt(this.#step + i));
    passes.forEach((p, n) => {
      const pass = this.#timestampPass(encoder, timed ? 2 * n : null);
      for (let i = p.first; i < p.first + p.count; i++) {
        for (const phase of p.phase ? [p.phase] : PASS_PHASES) {
          this.#record(pass, phase, i, batch, chunk, i * batch, quant, refreshes[i]);
        }
      }
      pass.end();
    });
    let stamps: GPUBuffer | null = null;
    if (timed) {
      encoder.resolveQuerySet(this.#querySet!, 0, passes.length * 2, this.#queryResolve!, 0);
      stamps = this.#staging(encoder, this.#queryResolve!, 0, passes.length * 16);
    }
    const losses = this.#staging(encoder, this.#input.losses, 0, iterations * 4);
    const scales = this.#stageScales(encoder, quant);
    this.#step += iterations;
    await turn.submit(encoder.finish());
    // Deno's mapAsync blocks the thread until the GPU is idle. Mapping on a later task lets a
    // caller that keeps one chunk in flight record the next chunk while this one trains.
    await nextTask();
    const [lossData, stampData] = await Promise.all([
      this.#read(losses),
      stamps ? this.#read(stamps) : Promise.resolve(null),
      scales?.(),
    ]);
    loss.set(new Float32Array(lossData, 0, iterations));
    const wallMs = performance.now() - start;
    if (stampData) attributePhases(phases, passes, new BigUint64Array(stampData));
    else for (let i = 0; i < iterations; i++) phases.forward[i] = wallMs / iterations;
    for (let i = 0; i < iterations; i++) {
      if (!Number.isFinite(loss[i])) throw new NonFiniteLossError(i, loss[i]);
    }
    return { iterations, loss, phases, wallMs };
  }

  async predict(chunk: BatchChunk): Promise<Float32Array> {
    const samples = chunk.samples;
    const batch = Math.min(chunk.batchSize, this.#options.maxBatch);
    this.#check(chunk, samples, batch, "predict", 0);
    const preparing = this.#prepareQat();
    if (preparing) await preparing;
    const probabilities = new Float32Array(samples);
    if (samples === 0) return probabilities;
    const turn = this.#turn();
    try {
      return await this.#predict(chunk, batch, turn, probabilities);
    } finally {
      turn.end();
    }
  }

  async #predict(
    chunk: BatchChunk,
    batch: number,
    turn: SubmitTurn,
    probabilities: Float32Array,
  ): Promise<Float32Array> {
    const earlier = turn.earlierSubmitted();
    if (earlier) await earlier;
    const samples = chunk.samples;
    const iterations = Math.ceil(samples / batch);
    this.#upload(chunk, samples);
    this.#writeIterations(iterations, batch, samples, MODE_PROBABILITIES, 0);
    let grown = this.#ensure("probs", samples * 4);
    grown = this.#ensure("losses", iterations * 4) || grown;
    if (grown) this.#bound = null;
    this.#bound ??= this.bindAll();
    const quant = this.#active();
    const encoder = this.#device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    // Weights do not change while predicting: quantize once, with the cached table scales.
    if (quant) this.#record(pass, "scale", 0, batch, chunk, 0, quant, this.#refreshAt(-1));
    for (let i = 0; i < iterations; i++) {
      const rows = Math.min(batch, samples - i * batch);
      this.#record(pass, "forward", i, rows, chunk, i * batch, quant, false);
    }
    pass.end();
    const probs = this.#staging(encoder, this.#input.probs, 0, samples * 4);
    const scales = this.#stageScales(encoder, quant);
    await turn.submit(encoder.finish());
    const [data] = await Promise.all([this.#read(probs), scales?.()]);
    probabilities.set(new Float32Array(data, 0, samples));
    return probabilities;
  }

  async traceStep(chunk: BatchChunk, options: TrainOptions): Promise<StepTrace> {
    const rows = chunk.batchSize;
    this.#check(chunk, rows, rows, "trace", options.learningRate);
    const preparing = this.#prepareQat();
    if (preparing) await preparing;
    const turn = this.#turn();
    try {
      return await this.#traceStep(chunk, options, turn);
    } finally {
      turn.end();
    }
  }

  async #traceStep(chunk: BatchChunk, options: TrainOptions, turn: SubmitTurn): Promise<StepTrace> {
    const earlier = turn.earlierSubmitted();
    if (earlier) await earlier;
    const rows = chunk.batchSize;
    this.#upload(chunk, rows);
    if (this.#ensureLsqParts(chunk, rows, rows)) this.#bound = null;
    this.#ensureSortKeys(chunk, rows, 1);
    this.#writeIterations(1, rows, rows, MODE_GRADIENT | MODE_PROBABILITIES, options.learningRate);
    let grown = this.#ensure("probs", rows * 4);
    grown = this.#ensure("losses", 16) || grown;
    if (grown) this.#bound = null;
    this.#bound ??= this.bindAll();
    const quant = this.#active();
    const refresh = this.#refreshAt(this.#step);
    const L = this.#layout;
    const encoder = this.#device.createCommandEncoder();
    let pass = encoder.beginComputePass();
    for (const phase of ["scale", "forward", "backward"] as const) {
      this.#record(pass, phase, 0, rows, chunk, 0, quant, refresh);
    }
    pass.end();
    const dt = this.#staging(encoder, this.#dt, 0, rows * L.ldt * 4);
    const grads = this.#staging(encoder, this.#mlpGrad, 0, L.floats * 4);
    pass = encoder.beginComputePass();
    this.#record(pass, "update", 0, rows, chunk, 0, quant, refresh);
    pass.end();
    const probs = this.#staging(encoder, this.#input.probs, 0, rows * 4);
    const loss = this.#staging(encoder, this.#input.losses, 0, 4);
    const scales = this.#stageScales(encoder, quant);
    await turn.submit(encoder.finish());
    this.#step += 1;
    const [dtData, gradData, probData, lossData] = await Promise.all([
      this.#read(dt),
      this.#read(grads),
      this.#read(probs),
      this.#read(loss),
      scales?.(),
    ]);
    const lossValue = new Float32Array(lossData)[0];
    const dtf = new Float32Array(dtData);
    const d = this.spec.embeddingDim;
    const embeddings = this.spec.tableRows.map((n, t) => {
      const g = new Float32Array(n * d);
      const idx = chunk.indices[t], off = chunk.offsets[t];
      for (let r = 0; r < rows; r++) {
        const src = r * L.ldt + (t + 1) * d;
        for (let j = off[r]; j < off[r + 1]; j++) {
          for (let q = 0; q < d; q++) g[idx[j] * d + q] += dtf[src + q];
        }
      }
      return g;
    });
    const packed = new Float32Array(gradData);
    const gradients: Params = {
      embeddings,
      bottom: L.bottom.map((l) => unpack(packed, l)),
      top: L.top.map((l) => unpack(packed, l)),
    };
    return {
      probabilities: new Float32Array(probData, 0, rows).slice(),
      loss: lossValue,
      gradients,
    };
  }

  async readTable(table: number): Promise<Float32Array> {
    if (this.#disposed) throw new Error("Expected a live engine but it was disposed");
    if (!(Number.isInteger(table) && table >= 0 && table < this.spec.tableRows.length)) {
      throw new RangeError(
        `Expected a table in [0, ${this.spec.tableRows.length}) but found ${table}`,
      );
    }
    const turn = this.#turn();
    try {
      const earlier = turn.earlierSubmitted();
      if (earlier) await earlier;
      const encoder = this.#device.createCommandEncoder();
      const read = this.#stageTable(encoder, table);
      await turn.submit(encoder.finish());
      return await read();
    } finally {
      turn.end();
    }
  }

  async readParams(): Promise<Params> {
    if (this.#disposed) throw new Error("Expected a live engine but it was disposed");
    const turn = this.#turn();
    try {
      return await this.#readParams(turn);
    } finally {
      turn.end();
    }
  }

  async #readParams(turn: SubmitTurn): Promise<Params> {
    const earlier = turn.earlierSubmitted();
    if (earlier) await earlier;
    const L = this.#layout;
    const d = this.spec.embeddingDim;
    const encoder = this.#device.createCommandEncoder();
    const mlp = this.#staging(encoder, this.#mlp, 0, L.floats * 4);
    const parts = this.#plan.segments.map((s) => ({
      s,
      buffer: this.#staging(
        encoder,
        this.#arenas[s.arena],
        s.offset * 4,
        (s.rowEnd - s.rowStart) * d * 4,
      ),
    }));
    await turn.submit(encoder.finish());
    const [mlpData, ...segData] = await Promise.all([
      this.#read(mlp),
      ...parts.map((p) => this.#read(p.buffer)),
    ]);
    const embeddings = this.spec.tableRows.map((n) => new Float32Array(n * d));
    parts.forEach((p, i) => {
      embeddings[p.s.table].set(
        new Float32Array(segData[i], 0, (p.s.rowEnd - p.s.rowStart) * d),
        p.s.rowStart * d,
      );
    });
    const packed = new Float32Array(mlpData);
    return {
      embeddings,
      bottom: L.bottom.map((l) => unpack(packed, l)),
      top: L.top.map((l) => unpack(packed, l)),
    };
  }

  get quantization(): QuantConfig | null {
    return this.#quant;
  }

  setQuantizationActive(active: boolean): void {
    this.#quantActive = active;
  }

  async embeddingScales(): Promise<Float32Array> {
    if (this.#disposed) throw new Error("Expected a live engine but it was disposed");
    if (!this.#scalesStale && this.#inFlight === 0) return this.#hostScales.slice();
    const turn = this.#turn();
    try {
      // Every earlier call has refreshed the host copy once read back; only quantizeInPlace
      // leaves it stale, and then the scales are read back in this call's turn.
      await turn.earlierDone();
      if (this.#scalesStale) {
        const encoder = this.#device.createCommandEncoder();
        const read = this.#stageScalesNow(encoder);
        await turn.submit(encoder.finish());
        await read();
      }
      return this.#hostScales.slice();
    } finally {
      turn.end();
    }
  }

  quantizeInPlace(config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">): void {
    if (this.#disposed) throw new Error("Expected a live engine but it was disposed");
    this.#assertIdle("quantizeInPlace");
    // An iteration block must exist for the kernels' group 1.
    this.#writeIterations(1, 1, 1, 0, 0);
    const encoder = this.#device.createCommandEncoder();
    if (config.embeddingBits !== null) {
      const sk = this.#scaleBound(config.embeddingBits);
      const pass = encoder.beginComputePass();
      pass.setBindGroup(1, this.#iterBindGroup(), [0]);
      const segments = this.#plan.segments.length;
      for (const m of sk.maxAbs) this.#dispatch(pass, m.kernel, m.x, m.y);
      this.#dispatch(
        pass,
        sk.scale.get(config.embeddingBits)!,
        Math.ceil(this.spec.tableRows.length / 64),
      );
      for (const k of sk.fakeQuantize.get(config.embeddingBits)!) {
        this.#dispatch(pass, k, sk.blocks, segments);
      }
      pass.end();
      this.#scalesFound = true;
      this.#scalesStale = true;
    }
    if (config.mlpBits !== null) {
      const L = this.#layout;
      // Quantize into a scratch copy of the whole packed buffer, then copy it back.
      const scratch = this.#buffers.create("quantize scratch", L.floats * 4);
      encoder.copyBufferToBuffer(this.#mlp, 0, scratch, 0, L.floats * 4);
      const pass = encoder.beginComputePass();
      pass.setBindGroup(1, this.#iterBindGroup(), [0]);
      const temporary: GPUBuffer[] = [scratch];
      this.#collect = temporary;
      for (const l of [...L.bottom, ...L.top]) {
        const k = this.#bind(ROW_QUANTIZE, [
          this.#uniform("row quantize", [
            l.outputs,
            l.inputs,
            l.w,
            l.b,
            levels(config.mlpBits),
            config.quantizeBias ? ROW_QUANTIZE_BIAS : 0,
            l.scales,
            0,
          ], new Set([4])),
          this.#mlp,
          scratch,
          this.#rowScales,
          this.#qat.rowMax,
        ]);
        this.#dispatch(pass, k, l.outputs);
      }
      this.#collect = null;
      pass.end();
      encoder.copyBufferToBuffer(scratch, 0, this.#mlp, 0, L.floats * 4);
      this.#device.queue.submit([encoder.finish()]);
      for (const b of temporary) this.#buffers.destroy(b);
    } else {
      this.#device.queue.submit([encoder.finish()]);
    }
  }

  memoryBytes(): number {
    return this.#buffers.bytes;
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    try {
      await this.#device.queue.onSubmittedWorkDone();
    } finally {
      this.#querySet?.destroy();
      this.#buffers.destroyAll();
      this.#device.destroy();
    }
  }
}

/** LSQ's initial step of a table, `2 mean|w| / sqrt(n)` (float64, as the CPU engine). */
function lsqStep(table: Float32Array, n: number): number {
  let sum = 0;
  for (let i = 0; i < table.length; i++) sum += Math.abs(table[i]);
  return Math.max((2 * sum) / table.length / Math.sqrt(n), 1e-8);
}

/** LSQ's initial step of a weight row, in float32 as the CPU engine's `lsqInitRows`. */
function lsqRowStep(row: Float32Array, n: number): number {
  const f = Math.fround;
  let sum = 0;
  for (let c = 0; c < row.length; c++) sum = f(sum + Math.abs(row[c]));
  return Math.max(f(f(f(2 * sum) / row.length) / f(Math.sqrt(n))), f(1e-8));
}

/**
 * queue.writeBuffer of a typed array (offset and size in elements). Deno accepts views over
 * SharedArrayBuffers (the runner's chunks), which the DOM types do not admit: hence the cast.
 */
function writeTo(
  queue: GPUQueue,
  buffer: GPUBuffer,
  offset: number,
  data: ArrayBufferView | ArrayBuffer,
  dataOffset?: number,
  size?: number,
): void {
  queue.writeBuffer(buffer, offset, data as ArrayBuffer, dataOffset, size);
}

function unpack(packed: Float32Array, l: PackedLinear): LinearParams {
  return {
    weight: packed.slice(l.w, l.w + l.inputs * l.outputs),
    bias: packed.slice(l.b, l.b + l.outputs),
  };
}

/**
 * Per-iteration phase milliseconds from the passes' timestamps: a sampled iteration's phases are
 * its own passes; an unsampled stretch's time is divided evenly over its iterations and split by
 * the mean phase proportions of the chunk's sampled iterations.
 */
export function attributePhases(
  phases: PhaseSamples,
  passes: { phase: Phase | null; first: number; count: number }[],
  stamps: BigUint64Array,
): void {
  const ms = (n: number) => Math.max(0, Number(stamps[2 * n + 1] - stamps[2 * n])) / 1e6;
  const share: Record<string, number> = {};
  let sampledTotal = 0;
  passes.forEach((p, n) => {
    if (!p.phase) return;
    const t = ms(n);
    phases[p.phase][p.first] = t;
    share[p.phase] = (share[p.phase] ?? 0) + t;
    sampledTotal += t;
  });
  passes.forEach((p, n) => {
    if (p.phase) return;
    const per = ms(n) / p.count;
    for (let i = p.first; i < p.first + p.count; i++) {
      for (const phase of PASS_PHASES) {
        phases[phase][i] = sampledTotal > 0
          ? (per * (share[phase] ?? 0)) / sampledTotal
          : phase === "forward"
          ? per
          : 0;
      }
    }
  });
}
