/**
 * The engine's GPU state: every buffer of parameters, activations and QAT, allocated at creation
 * with the sizes `maxBatch` needs, and the chunk input buffers, which grow with the chunks.
 *
 * @module
 */
import { pactActive, type QuantConfig } from "../quant.ts";
import type { ModelSpec } from "../spec.ts";
import { KernelBinder } from "./binder.ts";
import { BufferManager, STORAGE, writeTo } from "./buffers.ts";
import { gemmMostSplits } from "./gemm_plan.ts";
import { lossWorkgroups } from "./kernels/loss.ts";
import { PACT_UNIT } from "./kernels/pact_backward.ts";
import { type GpuLayout, type PackedLinear, planGpuLayout } from "./layout.ts";
import { ITER_STRIDE } from "./pipelines.ts";
import { BLOCK_MAX_FLOATS } from "./kernels/block_max.ts";
import {
  type BlockDirectory,
  blockDirectory,
  planTables,
  segmentWords,
  type TablePlan,
} from "./table_plan.ts";
import type { GpuEngineOptions } from "./options.ts";

/**
 * Whether a call under `q` reads the table scales back after its work (quantized tables: the
 * host keeps a copy of them).
 */
export function readsTableScales(q: QuantConfig | null): boolean {
  return q?.embeddingBits != null;
}

/** Whether `q` trains on whole-table fake-quantized copies (HAWQ). */
export function wholeTableCopies(q: QuantConfig | null): boolean {
  return q !== null && q.embeddingBits !== null && !q.gatheredRowsOnly;
}

/**
 * Scale periods up to this keep the block maxima current after every step; a longer period (DQRM's
 * 200) reads the tables once per period, which costs less than rereading the rows' blocks every
 * step.
 */
export const INCREMENTAL_MAXIMA_PERIOD = 16;

/**
 * Whether `q` finds table maxima often enough to keep block maxima current: every step (PACT's
 * DoReFa, HAWQ, DQRM with P = 1) or every few; not LSQ (learned steps).
 */
export function stepTableMaxima(q: QuantConfig | null): boolean {
  return q !== null && q.embeddingBits !== null && q.quantizer !== "lsq" &&
    (q.quantizer === "dorefa" || q.scalePeriod <= INCREMENTAL_MAXIMA_PERIOD);
}

/**
 * Per-block table maxima (`kernels/block_max.ts`): exact max |w| bits of every block, kept
 * current after each QAT step's update so scale finding reads only the blocks, not the tables.
 */
export interface BlockMaxima {
  /** Block maxima as u32 bits (16 bytes when the configured QAT finds no maxima). */
  bits: GPUBuffer;
  /** First block of each segment (and the total), and each table's [first, end) blocks. */
  segmentBlocks: GPUBuffer;
  tableBlocks: GPUBuffer;
  directory: BlockDirectory;
  /** False: scale finding reads every table (today's full pass), for comparisons. */
  incremental: boolean;
  /**
   * Floats a step may reread to keep the block maxima current (a block per index); a larger
   * batch marks them stale instead, as the next full pass costs less (half the tables' floats;
   * Infinity: always incremental).
   */
  rereadLimit: number;
  /**
   * Whether the block maxima may not match the tables (something wrote them without the
   * incremental pass): the next scale finding recomputes every block first.
   */
  stale: boolean;
  /**
   * Whether the last table update was one that leaves them stale every step (a batch over
   * `rereadLimit`, a data-parallel update): scale finding then reads every table with the
   * streaming kernel, as before, and leaves the blocks stale.
   */
  fallback: boolean;
}

/** GPU state of the QAT methods beyond DQRM (absent parts are null). */
export interface QatBuffers {
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
  clips: GPUBuffer | null;
  clipGradParts: GPUBuffer | null;
  clipUnits: GPUBuffer | null;
  unitsPerLayer: number;
  /** PACT: each clipped layer's unclipped ReLU output. */
  unclipped: Map<PackedLinear, GPUBuffer>;
}

/** Names of the chunk input buffers (and their labels). */
export type InputName =
  | "dense"
  | "labels"
  | "indices"
  | "offsets"
  | "tableDirectory"
  | "iterations"
  | "probabilities"
  | "losses"
  | "lsqParts";

/** The chunk input buffers, grown as needed. */
export type InputBuffers = Record<InputName, GPUBuffer> & {
  /** Capacities in bytes, by buffer. */
  capacity: Partial<Record<InputName, number>>;
};

/** A hidden layer's output and its gradient. */
export interface Activation {
  output: GPUBuffer;
  grad: GPUBuffer;
}

/** Every GPU buffer of one engine, and the binder of its kernels. */
export class GpuState {
  readonly spec: ModelSpec;
  readonly device: GPUDevice;
  readonly buffers: BufferManager;
  readonly binder: KernelBinder;
  readonly layout: GpuLayout;
  readonly plan: TablePlan;
  /** The configured QAT (whether or not it is active). */
  readonly quant: QuantConfig | null;
  readonly maxBatch: number;
  // Parameters and state.
  /** The tables, packed into arenas (see `table_plan.ts`). */
  readonly arenas: GPUBuffer[];
  /** Packed MLP weights and biases (see `layout.ts`), their gradients, fake-quantized copy. */
  readonly mlp: GPUBuffer;
  readonly mlpGrad: GPUBuffer;
  readonly mlpQuantized: GPUBuffer;
  /** Per-row scales of the MLP's fake quantization. */
  readonly rowScales: GPUBuffer;
  /** Per-table scales, and their max |w| as u32 bits (scale finding). */
  readonly tableScales: GPUBuffer;
  readonly tableMaxBits: GPUBuffer;
  /** Every table segment as vec4 (rowStart, rowEnd, arena, offset), and its table. */
  readonly segments: GPUBuffer;
  readonly segmentTables: GPUBuffer;
  // Activations.
  /** T: the bottom MLP's output and the gathered embedding vectors (`ldt` floats a sample). */
  readonly interactionInput: GPUBuffer;
  readonly interactionInputGrad: GPUBuffer;
  /** R: the pairwise dot products with the bottom output (`ldr` floats a sample). */
  readonly interactionOutput: GPUBuffer;
  readonly interactionOutputGrad: GPUBuffer;
  /** Outputs of the layers that feed another layer of their MLP. */
  readonly hidden: Map<PackedLinear, Activation>;
  readonly logits: GPUBuffer;
  readonly logitGrads: GPUBuffer;
  /** The loss's partial sums, one per workgroup of its first pass (`kernels/loss.ts`). */
  readonly lossPartials: GPUBuffer;
  /** Fills bindings a kernel does not use. */
  readonly dummy: GPUBuffer;
  /** maxBatch ones: B of the bias gradient GEMM. */
  readonly ones: GPUBuffer;
  /** Split-K partial sums, sized for every product's plan at maxBatch. */
  readonly splitScratch: GPUBuffer;
  readonly qat: QatBuffers;
  readonly blockMaxima: BlockMaxima;
  /** Chunk input (grown per chunk). */
  readonly input: InputBuffers;
  /** Sort keys of the sorted embedding update (tables x a power of two), sized per chunk. */
  sortKeys: GPUBuffer | null = null;
  /**
   * The tree update's run starts and row sums, sized with the sort keys; null where the sums
   * would not fit one binding (the sorted update then sums each row in one lane).
   */
  sortTree: { runStart: GPUBuffer; sums: GPUBuffer } | null = null;
  /** The bind group of the iteration blocks, over the current `input.iterations`. */
  iterationsGroup: { buffer: GPUBuffer; group: GPUBindGroup } | null = null;

  constructor(
    spec: ModelSpec,
    device: GPUDevice,
    plan: TablePlan,
    quant: QuantConfig | null,
    maxBatch: number,
  ) {
    this.spec = spec;
    this.device = device;
    this.plan = plan;
    this.quant = quant;
    this.maxBatch = maxBatch;
    const buffers = this.buffers = new BufferManager(device);
    this.binder = new KernelBinder(device, buffers);
    const L = this.layout = planGpuLayout(spec);
    const tables = spec.tableRows.length;
    const B = maxBatch;
    this.arenas = plan.arenaFloats.map((f, i) => buffers.create(`arena ${i}`, f * 4));
    this.mlp = buffers.create("mlp", L.floats * 4);
    this.mlpGrad = buffers.create("mlp gradients", L.floats * 4);
    this.mlpQuantized = buffers.create("mlp quantized", quant?.mlpBits ? L.floats * 4 : 16);
    this.rowScales = buffers.create("row scales", L.rows * 4);
    this.tableScales = buffers.create("table scales", tables * 4);
    this.tableMaxBits = buffers.create("table max bits", tables * 4);
    const words = segmentWords(plan);
    this.segments = buffers.create("segments", words.byteLength);
    writeTo(device.queue, this.segments, 0, words);
    const segmentTables = Uint32Array.from(plan.segments, (s) => s.table);
    this.segmentTables = buffers.create("segment tables", Math.max(4, segmentTables.byteLength));
    if (segmentTables.length) writeTo(device.queue, this.segmentTables, 0, segmentTables);
    this.interactionInput = buffers.create("T", B * L.ldt * 4);
    this.interactionInputGrad = buffers.create("dT", B * L.ldt * 4);
    this.interactionOutput = buffers.create("R", B * L.ldr * 4);
    this.interactionOutputGrad = buffers.create("dR", B * L.ldr * 4);
    this.hidden = new Map();
    for (const part of [L.bottom, L.top]) {
      for (const layer of part.slice(0, -1)) {
        this.hidden.set(layer, {
          output: buffers.create("activation", B * layer.outputs * 4),
          grad: buffers.create("activation gradient", B * layer.outputs * 4),
        });
      }
    }
    this.logits = buffers.create("logits", B * 4);
    this.logitGrads = buffers.create("logit gradients", B * 4);
    this.lossPartials = buffers.create("loss partial sums", lossWorkgroups(B) * 4);
    this.dummy = buffers.create("dummy", 16);
    this.ones = buffers.create("ones", B * 4);
    writeTo(device.queue, this.ones, 0, new Float32Array(B).fill(1));
    // Split-K partials: room for the largest split product of a batch of maxBatch.
    const splitFloats = [...L.bottom, ...L.top].flatMap((l) =>
      [
        [B, l.outputs, l.inputs],
        [B, l.inputs, l.outputs],
        [l.outputs, l.inputs, B],
        [l.outputs, 1, B],
      ].map(
        ([m, n, k]) => {
          const splits = gemmMostSplits(m, n, k);
          return splits > 1 ? splits * m * n : 0;
        },
      )
    );
    this.splitScratch = buffers.create("gemm split partials", 4 * Math.max(...splitFloats));
    const make = (name: string, bytes: number, usage = STORAGE) =>
      buffers.create(name, bytes, usage);
    this.input = {
      dense: make("dense", 16),
      labels: make("labels", 16),
      indices: make("indices", 16),
      offsets: make("offsets", 16),
      tableDirectory: make("table directory", tables * 16),
      iterations: make(
        "iterations",
        ITER_STRIDE,
        GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      ),
      probabilities: make("probabilities", 16),
      losses: make("losses", 16),
      lsqParts: make("lsq step parts", 16),
      capacity: { iterations: ITER_STRIDE },
    };
    this.qat = this.#createQatBuffers();
    const directory = blockDirectory(plan, spec.embeddingDim, BLOCK_MAX_FLOATS);
    const upload = (name: string, words: Uint32Array) => {
      const buffer = buffers.create(name, words.byteLength);
      if (words.length) writeTo(device.queue, buffer, 0, words);
      return buffer;
    };
    this.blockMaxima = {
      bits: buffers.create("block maxima", stepTableMaxima(quant) ? directory.total * 4 + 16 : 16),
      segmentBlocks: upload("segment blocks", directory.segmentBlocks),
      tableBlocks: upload("table blocks", directory.tableBlocks),
      directory,
      incremental: true,
      rereadLimit: (directory.total * BLOCK_MAX_FLOATS) / 2,
      stale: true,
      fallback: false,
    };
  }

  /** The buffers of the configured QAT method (see {@linkcode QatBuffers}). */
  #createQatBuffers(): QatBuffers {
    const q = this.quant;
    const L = this.layout;
    const buffers = this.buffers;
    const all = [...L.bottom, ...L.top];
    const lsqMlp = q?.quantizer === "lsq" && q.mlpBits !== null;
    const unclipped = new Map<PackedLinear, GPUBuffer>();
    let clips = null, clipGradParts = null, clipUnits = null;
    const unitsPerLayer = Math.max(...all.map((l) => Math.ceil(l.outputs / PACT_UNIT)));
    if (pactActive(q)) {
      // PACT clips the ReLU outputs that feed another linear layer: the hidden activations.
      for (const layer of this.hidden.keys()) {
        unclipped.set(layer, buffers.create("pact unclipped", this.maxBatch * layer.outputs * 4));
      }
      clips = buffers.create("pact clips", all.length * 4);
      writeTo(this.device.queue, clips, 0, new Float32Array(all.length).fill(10));
      clipGradParts = buffers.create("pact clip gradients", all.length * unitsPerLayer * 4);
      clipUnits = buffers.create("pact units", all.length * 4);
      const units = Uint32Array.from(
        all,
        (l) => (unclipped.has(l) ? Math.ceil(l.outputs / PACT_UNIT) : 0),
      );
      writeTo(this.device.queue, clipUnits, 0, units);
    }
    return {
      rowMax: buffers.create("row max", L.rows * 4),
      rowSteps: lsqMlp ? buffers.create("lsq row steps", L.rows * 4) : null,
      rowStepGrads: lsqMlp ? buffers.create("lsq row step gradients", L.rows * 4) : null,
      copies: wholeTableCopies(q)
        ? this.plan.arenaFloats.map((f, i) => buffers.create(`arena copy ${i}`, f * 4))
        : null,
      copyDummy: wholeTableCopies(q) ? buffers.create("copy dummy", 16) : null,
      clips,
      clipGradParts,
      clipUnits,
      unitsPerLayer,
      unclipped,
    };
  }

  /** Arenas `[g k, g k + k)` of `arenas` for arena group `g`, padded with `filler` to `k`. */
  groupArenas(g: number, arenas: GPUBuffer[] = this.arenas, filler = this.dummy): GPUBuffer[] {
    const k = this.plan.arenasPerGroup;
    const list = arenas.slice(g * k, g * k + k);
    while (list.length < k) list.push(filler);
    return list;
  }
}

/**
 * The state an engine's `options` ask for on `device`: the tables planned into arenas no larger
 * than the device binds (nor `options.arenaBytes`), at most as many bound a dispatch as its
 * kernels leave room for (nor `options.arenasPerGroup`), and the table maxima kept incrementally
 * as `options.incrementalTableMaxima` says.
 */
export function createGpuState(
  spec: ModelSpec,
  device: GPUDevice,
  quant: QuantConfig | null,
  options: Pick<
    GpuEngineOptions,
    "maxBatch" | "arenaBytes" | "arenasPerGroup" | "incrementalTableMaxima"
  >,
): GpuState {
  const limits = device.limits;
  const arenaBytes = Math.floor(
    Math.min(
      options.arenaBytes ?? Infinity,
      limits.maxStorageBufferBindingSize,
      limits.maxBufferSize,
    ) / 4,
  ) * 4;
  // The table kernels bind at most 7 other storage buffers.
  // HAWQ's copy kernel binds each arena twice (source and copy) beside 4 other buffers.
  const perGroup = Math.min(
    options.arenasPerGroup ?? Infinity,
    limits.maxStorageBuffersPerShaderStage - 7,
    wholeTableCopies(quant)
      ? Math.floor((limits.maxStorageBuffersPerShaderStage - 4) / 2)
      : Infinity,
  );
  const plan = planTables(spec.tableRows, spec.embeddingDim, arenaBytes, perGroup);
  const state = new GpuState(spec, device, plan, quant, options.maxBatch);
  const incremental = options.incrementalTableMaxima ?? true;
  state.blockMaxima.incremental = incremental !== false;
  if (incremental === "always") state.blockMaxima.rereadLimit = Infinity;
  return state;
}
