/**
 * The bound kernels of a training iteration over the current buffers: every layer's GEMMs and
 * QAT kernels, the interaction, loss, SGD, and the table kernels once per arena group. Bound
 * again whenever a buffer they use is replaced (the chunk input grew).
 *
 * @module
 */
import { levels } from "../quant.ts";
import { floatRange } from "./binder.ts";
import { type GemmFields, type GemmOp, gemmOp } from "./gemm_bind.ts";
import { bindBlockMaxRows } from "./bind_scales.ts";
import { bindPairwiseUpdate, engineUpdateBuffers } from "./bind_sorted_update.ts";
import {
  GATHER_ACCUMULATE,
  GATHER_DOREFA,
  GATHER_QUANTIZE,
  gatherKernel,
  gatherWidth,
} from "./kernels/gather.ts";
import {
  GEMM_A_AT_S0,
  GEMM_B_AT_S0,
  GEMM_BIAS,
  GEMM_K_ROWS,
  GEMM_M_ROWS,
  GEMM_MASK,
  GEMM_RELU,
} from "./kernels/gemm.ts";
import { LOSS, LOSS_SUM } from "./kernels/loss.ts";
import { lsqEmbeddingUpdateKernel } from "./kernels/lsq_embedding_update.ts";
import { LSQ_ROW_STEP } from "./kernels/lsq_row_step.ts";
import { LSQ_ROWS } from "./kernels/lsq_rows.ts";
import { LSQ_TABLE_STEP } from "./kernels/lsq_table_step.ts";
import { dorefaQuantizeKernel } from "./kernels/dorefa_quantize.ts";
import { PACT_ALPHA } from "./kernels/pact_alpha.ts";
import { PACT_BACKWARD } from "./kernels/pact_backward.ts";
import { PACT_FORWARD } from "./kernels/pact_forward.ts";
import { rowMaxAbsKernel } from "./kernels/row_max_abs.ts";
import {
  ROW_QUANTIZE_BIAS,
  ROW_QUANTIZE_LEARNED,
  ROW_QUANTIZE_MATRIX,
  rowQuantizeKernel,
  rowQuantizeSetup,
} from "./kernels/row_quantize.ts";
import { SGD } from "./kernels/sgd.ts";
import { planInteraction } from "./interaction_plan.ts";
import type { PackedLinear } from "./layout.ts";
import type { BoundKernel } from "./pipelines.ts";
import type { GpuState } from "./state.ts";

/** Bound kernels of one layer. */
export interface LayerKernels {
  forward: GemmOp;
  /** Forward with the fake-quantized weights (QAT). */
  forwardQuantized: GemmOp;
  weightGrad: GemmOp;
  /** The bias gradient, dYᵀ times a column of ones: a GEMM, so large batches split K. */
  biasGrad: GemmOp;
  inputGrad: GemmOp | null;
  inputGradQuantized: GemmOp | null;
  /** LSQ: gradient masking with the steps' gradient (backward), step update, or null. */
  lsqRows: BoundKernel | null;
  lsqStep: BoundKernel | null;
  /** PACT: this layer's output clip (forward), its input's clip backward, or null. */
  pactForward: BoundKernel | null;
  pactBackward: BoundKernel | null;
  layer: PackedLinear;
}

/** A kernel over every layer's rows and its grid (`rowQuantizeSetup`). */
export interface RowsDispatch {
  kernel: BoundKernel;
  x: number;
  y: number;
}

/** An interaction kernel: x workgroups by one workgroup per `samples` of the batch's rows. */
export interface InteractionDispatch {
  kernel: BoundKernel;
  x: number;
  samples: number;
}

/** Every bound kernel of a training iteration (see {@linkcode bindTraining}). */
export interface TrainingKernels {
  /** Uniform buffers of these bind groups (freed when they are bound again). */
  uniforms: GPUBuffer[];
  lsqUpdate: BoundKernel[] | null;
  lsqTableStep: BoundKernel | null;
  pactAlpha: BoundKernel | null;
  /** Every layer's weights fake-quantized by minmax or LSQ steps: one dispatch over all rows. */
  quantize: RowsDispatch;
  /**
   * Every layer's row maxima before `quantize` (matrix-wise minmax) or DoReFa's quantizer, and
   * DoReFa's fake quantization of every layer; null where the method has none.
   */
  rowMax: RowsDispatch | null;
  dorefa: RowsDispatch | null;
  /** Layers bottom then top, and each MLP's. */
  layers: LayerKernels[];
  bottom: LayerKernels[];
  top: LayerKernels[];
  /** The interaction and its gradient (`interaction_plan.ts`). */
  interactForward: InteractionDispatch;
  interactBackward: InteractionDispatch;
  /** The loss terms per workgroup, then their sum (`kernels/loss.ts`). */
  loss: BoundKernel;
  lossSum: BoundKernel;
  sgd: BoundKernel;
  /** One per arena group: the plain gather, and the gather of the QAT method. */
  gather: BoundKernel[];
  gatherQuantized: BoundKernel[];
  /** The pairwise-scan embedding update, one per arena group. */
  update: BoundKernel[];
  /** The block maxima of the batch's rows after the update, one per arena group, or null. */
  blockMaxRows: BoundKernel[] | null;
  /** Sorted-update dispatches (kernel, x, y) by key segment size (bound when first recorded). */
  sortedUpdates: Map<number, [BoundKernel, number, number][]>;
}

/** Binds every kernel of a training iteration over the state's current buffers. */
export function bindTraining(state: GpuState): TrainingKernels {
  const uniforms: GPUBuffer[] = [];
  return state.binder.collecting(uniforms, () => bindTrainingNow(state, uniforms));
}

function bindTrainingNow(state: GpuState, uniforms: GPUBuffer[]): TrainingKernels {
  const L = state.layout;
  const all = [...L.bottom, ...L.top];
  const layerKernels = new Map<PackedLinear, LayerKernels>();
  for (const [part, layers] of [["bottom", L.bottom], ["top", L.top]] as const) {
    layers.forEach((layer, l) => {
      const below = l > 0 ? layers[l - 1] : null;
      layerKernels.set(layer, bindLayer(state, part, layer, below, l === layers.length - 1, all));
    });
  }
  return {
    uniforms,
    quantize: bindQuantize(state, all),
    ...bindWholeMatrix(state, all),
    ...bindTableKernels(state),
    layers: all.map((l) => layerKernels.get(l)!),
    bottom: L.bottom.map((l) => layerKernels.get(l)!),
    top: L.top.map((l) => layerKernels.get(l)!),
    blockMaxRows: bindBlockMaxRows(state),
    sortedUpdates: new Map(),
  };
}

/** The fake quantization of every layer's weights (minmax or LSQ's steps), one dispatch. */
function bindQuantize(state: GpuState, all: PackedLinear[]): TrainingKernels["quantize"] {
  const quant = state.quant;
  const lsq = quant?.quantizer === "lsq";
  const flags = (quant?.quantizeBias ? ROW_QUANTIZE_BIAS : 0) |
    (lsq ? ROW_QUANTIZE_LEARNED : quant?.mlpGranularity === "matrix" ? ROW_QUANTIZE_MATRIX : 0);
  const setup = rowQuantizeSetup(all, levels(quant?.mlpBits ?? 8), flags);
  const binder = state.binder;
  const kernel = binder.bind(rowQuantizeKernel(all.length), [
    binder.uniform("row quantize", setup.words, setup.floats),
    state.mlp,
    state.mlpQuantized,
    lsq && state.qat.rowSteps ? state.qat.rowSteps : state.rowScales,
    state.qat.rowMax,
  ]);
  return { kernel, x: setup.grid[0], y: setup.grid[1] };
}

/**
 * The row maxima of every layer (matrix-wise minmax, DoReFa) and DoReFa's fake quantization of
 * every layer, one dispatch each, or null where the method needs none.
 */
function bindWholeMatrix(
  state: GpuState,
  all: PackedLinear[],
): Pick<TrainingKernels, "rowMax" | "dorefa"> {
  const q = state.quant;
  const bits = q?.mlpBits ?? null;
  if (!q || bits === null) return { rowMax: null, dorefa: null };
  const dorefa = q.quantizer === "dorefa";
  const needsMax = dorefa || (q.quantizer === "minmax" && q.mlpGranularity === "matrix");
  if (!needsMax) return { rowMax: null, dorefa: null };
  const binder = state.binder;
  // DoReFa's k = 2^bits - 1 rides in the setup's levels word.
  const setup = rowQuantizeSetup(all, 2 ** bits - 1, 0);
  const uniform = binder.uniform("row layers", setup.words, setup.floats);
  const [x, y] = setup.grid;
  return {
    rowMax: {
      kernel: binder.bind(rowMaxAbsKernel(all.length), [uniform, state.mlp, state.qat.rowMax]),
      x,
      y,
    },
    dorefa: dorefa
      ? {
        kernel: binder.bind(dorefaQuantizeKernel(all.length), [
          uniform,
          state.mlp,
          state.mlpQuantized,
          state.qat.rowMax,
        ]),
        x,
        y,
      }
      : null,
  };
}

/** The kernels of one layer of MLP `part`, fed by `below` (null: the MLP's input). */
function bindLayer(
  state: GpuState,
  part: "bottom" | "top",
  layer: PackedLinear,
  below: PackedLinear | null,
  isLast: boolean,
  all: PackedLinear[],
): LayerKernels {
  const L = state.layout;
  const quant = state.quant;
  const input = state.input;
  const quantBits = quant?.mlpBits ?? null;
  // Input: dense chunk input, R, or the previous layer's output.
  const prev = below ? state.hidden.get(below)! : null;
  const x: GPUBuffer = prev
    ? prev.output
    : part === "bottom"
    ? input.dense
    : state.interactionOutput;
  const dx: GPUBuffer | null = prev
    ? prev.grad
    : part === "bottom"
    ? null
    : state.interactionOutputGrad;
  const fromChunk = part === "bottom" && !below;
  // X's row stride: R's (padded to 4 floats) for the Top MLP's first layer, else its width.
  const ldx = !prev && part === "top" ? L.ldr : layer.inputs;
  // Output: T's vector 0 (bottom), the logits (top), or a hidden activation.
  const h = state.hidden.get(layer);
  const y = h ? h.output : part === "bottom" ? state.interactionInput : state.logits;
  const dy = h ? h.grad : part === "bottom" ? state.interactionInputGrad : state.logitGrads;
  const ldy = h ? layer.outputs : part === "bottom" ? L.ldt : 1;
  const relu = part === "bottom" || !isLast;
  const weights = (buf: GPUBuffer) =>
    floatRange(buf, layer.weightOffset, layer.inputs * layer.outputs);
  const biases = (buf: GPUBuffer) => floatRange(buf, layer.biasOffset, layer.outputs);
  const forwardFields: GemmFields = {
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
  const dummy = state.dummy;
  const mlp = state.mlp, mlpQuantized = state.mlpQuantized, mlpGrad = state.mlpGrad;
  const quantizedBiases = quant?.quantizeBias ? mlpQuantized : mlp;
  const forward = gemmOp(forwardFields, [x, weights(mlp), y, biases(mlp), dummy]);
  const forwardQuantized = quantBits
    ? gemmOp(forwardFields, [x, weights(mlpQuantized), y, biases(quantizedBiases), dummy])
    : forward;
  const weightGrad = gemmOp(
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
    [dy, x, weights(mlpGrad), dummy, dummy],
    // The bias gradient beside the weight gradient: biases follow the weights (layout.ts).
    {
      biasGrad: {
        c: floatRange(
          mlpGrad,
          layer.weightOffset,
          layer.biasOffset + layer.outputs - layer.weightOffset,
        ),
        cBase: 0,
        biasBase: layer.biasOffset - layer.weightOffset,
      },
    },
  );
  const biasGrad = gemmOp(
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
    [dy, state.ones, biases(mlpGrad), dummy, dummy],
    { columnSum: true },
  );
  let inputGrad: GemmOp | null = null, inputGradQuantized: GemmOp | null = null;
  if (dx) {
    const fields: GemmFields = {
      m: 0,
      n: layer.inputs,
      k: layer.outputs,
      flags: GEMM_M_ROWS | (prev ? GEMM_MASK : 0),
      aRow: ldy,
      aCol: 1,
      bRow: layer.inputs,
      bCol: 1,
      cRow: ldx,
      maskRow: ldx,
    };
    inputGrad = gemmOp(fields, [dy, weights(mlp), dx, dummy, x]);
    // PACT masks by the unclipped ReLU output of the layer below (quantized layers only).
    const mask = (below && state.qat.unclipped.get(below)) ?? x;
    inputGradQuantized = quantBits
      ? gemmOp(fields, [dy, weights(mlpQuantized), dx, dummy, mask])
      : inputGrad;
  }
  return {
    forward,
    forwardQuantized,
    weightGrad,
    biasGrad,
    inputGrad,
    inputGradQuantized,
    ...bindQatLayer(state, layer, all.indexOf(layer), below, dx, y),
    layer,
  };
}

/**
 * The QAT kernels of one layer beyond DQRM's: `index` is its place in bottom-then-top order,
 * `below` the hidden layer feeding it (or null), `dx` and `y` its input gradient and output.
 */
function bindQatLayer(
  state: GpuState,
  layer: PackedLinear,
  index: number,
  below: PackedLinear | null,
  dx: GPUBuffer | null,
  y: GPUBuffer,
): Pick<
  LayerKernels,
  "lsqRows" | "lsqStep" | "pactForward" | "pactBackward"
> {
  const q = state.quant;
  const qat = state.qat;
  const binder = state.binder;
  const bits = q?.mlpBits ?? null;
  if (!q || bits === null) {
    return {
      lsqRows: null,
      lsqStep: null,
      pactForward: null,
      pactBackward: null,
    };
  }
  const shape = [layer.outputs, layer.inputs, layer.weightOffset, layer.scaleOffset];
  const k = 2 ** bits - 1;
  const lsq = q.quantizer === "lsq";
  const unclippedBelow = below ? qat.unclipped.get(below) : undefined;
  const unclipped = qat.unclipped.get(layer);
  return {
    lsqRows: lsq
      ? binder.bind(LSQ_ROWS, [
        binder.uniform("lsq rows", [...shape, levels(bits), 0, 0, 0], new Set([4])),
        state.mlp,
        state.mlpGrad,
        qat.rowSteps!,
        qat.rowStepGrads!,
      ])
      : null,
    lsqStep: lsq
      ? binder.bind(LSQ_ROW_STEP, [
        binder.uniform("lsq row step", [
          layer.outputs,
          layer.scaleOffset,
          Math.sqrt(levels(bits) * layer.inputs * layer.outputs),
          0,
        ], new Set([2])),
        qat.rowSteps!,
        qat.rowStepGrads!,
      ])
      : null,
    pactForward: unclipped
      ? binder.bind(PACT_FORWARD, [
        binder.uniform("pact forward", [layer.outputs, index, k, 0], new Set([2])),
        qat.clips!,
        y,
        unclipped,
      ])
      : null,
    pactBackward: below && unclippedBelow && dx
      ? binder.bind(PACT_BACKWARD, [
        binder.uniform("pact backward", [
          below.outputs,
          index - 1,
          (index - 1) * qat.unitsPerLayer,
          0,
        ]),
        qat.clips!,
        dx,
        unclippedBelow,
        qat.clipGradParts!,
      ])
      : null,
  };
}

/** The interaction, loss, SGD and the table kernels (one per arena group). */
function bindTableKernels(state: GpuState): Pick<
  TrainingKernels,
  | "interactForward"
  | "interactBackward"
  | "loss"
  | "lossSum"
  | "sgd"
  | "gather"
  | "gatherQuantized"
  | "update"
  | "lsqUpdate"
  | "lsqTableStep"
  | "pactAlpha"
> {
  const L = state.layout;
  const binder = state.binder;
  const quant = state.quant;
  const input = state.input;
  const d = state.spec.embeddingDim;
  const tables = state.spec.tableRows.length;
  const all = [...L.bottom, ...L.top];
  const interaction = binder.uniform("interaction", [L.vectors, d, L.ldt, L.ldr]);
  const plan = planInteraction(L.vectors, d, L.ldr);
  const interactForward = {
    kernel: binder.bind(plan.forward, [
      interaction,
      state.interactionInput,
      state.interactionOutput,
    ]),
    x: plan.forwardX,
    samples: plan.forwardSamples,
  };
  const interactBackward = {
    kernel: binder.bind(plan.backward, [
      interaction,
      state.interactionInput,
      state.interactionOutputGrad,
      state.interactionInputGrad,
    ]),
    x: plan.backwardX,
    samples: plan.backwardSamples,
  };
  const loss = binder.bind(LOSS, [
    state.logits,
    input.labels,
    state.logitGrads,
    input.probabilities,
    state.lossPartials,
  ]);
  const lossSum = binder.bind(LOSS_SUM, [state.lossPartials, input.losses]);
  const sgd = binder.bind(SGD, [binder.uniform("sgd", [L.floats]), state.mlp, state.mlpGrad]);
  const k = state.plan.arenasPerGroup;
  const groups = Array.from({ length: state.plan.groups }, (_, g) => g);
  const bits = quant?.embeddingBits ?? null;
  // DQRM fake-quantizes the gathered rows, DoReFa maps them, HAWQ reads its quantized copies.
  const dorefa = quant?.quantizer === "dorefa";
  const copies = state.qat.copies;
  const gatherFor = (quantize: boolean) =>
    groups.map((g) =>
      binder.bind(gatherKernel(k, gatherWidth(d)), [
        binder.uniform("gather", [
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
        input.tableDirectory,
        state.segments,
        input.indices,
        input.offsets,
        state.tableScales,
        state.interactionInput,
        ...state.groupArenas(g, quantize && copies ? copies : state.arenas),
      ])
    );
  const gather = gatherFor(false);
  const gatherQuantized = bits !== null ? gatherFor(true) : gather;
  // LSQ's masked table update and per-table step update (stride: floats per table).
  const partStride = Math.floor((input.capacity.lsqParts ?? 16) / 4 / tables);
  const lsqTables = bits !== null && quant?.quantizer === "lsq";
  const lsqUpdate = lsqTables
    ? groups.map((g) =>
      binder.bind(lsqEmbeddingUpdateKernel(k), [
        binder.uniform(
          "lsq embedding update",
          [tables, d, L.ldt, partStride, g * k, k, levels(bits), 0],
          new Set([6]),
        ),
        input.tableDirectory,
        state.segments,
        input.indices,
        input.offsets,
        state.interactionInputGrad,
        state.tableScales,
        input.lsqParts,
        ...state.groupArenas(g),
      ])
    )
    : null;
  const lsqTableStep = lsqTables
    ? binder.bind(LSQ_TABLE_STEP, [
      binder.uniform("lsq table step", [tables, d, partStride, levels(bits)], new Set([3])),
      input.tableDirectory,
      input.offsets,
      input.lsqParts,
      state.tableScales,
    ])
    : null;
  const qat = state.qat;
  const pactAlpha = qat.clips
    ? binder.bind(PACT_ALPHA, [
      binder.uniform("pact alpha", [all.length, qat.unitsPerLayer]),
      qat.clips,
      qat.clipGradParts!,
      qat.clipUnits!,
    ])
    : null;
  const update = bindPairwiseUpdate(binder, engineUpdateBuffers(state));
  return {
    interactForward,
    interactBackward,
    loss,
    lossSum,
    sgd,
    gather,
    gatherQuantized,
    update,
    lsqUpdate,
    lsqTableStep,
    pactAlpha,
  };
}
