/**
 * Recording: one phase (scale, forward, backward, update) of one iteration encoded as dispatches
 * into an open compute pass. This is the host's hot path (a chunk records thousands of
 * iterations), so it only dispatches kernels bound beforehand: GEMMs are planned and bound once
 * per batch size, the sorted update once per key segment size.
 *
 * @module
 */
import type { BatchChunk } from "../batch.ts";
import type { Phase } from "../phases.ts";
import type { QuantConfig } from "../quant.ts";
import type { GridDispatch, ScaleKernels } from "./bind_scales.ts";
import { sortedUpdate } from "./bind_sorted_update.ts";
import type { InteractionDispatch, LayerKernels, TrainingKernels } from "./bind_training.ts";
import { type GemmOp, planGemmOp } from "./gemm_bind.ts";
import { batchEntries, sortKeyBytes } from "./input.ts";
import { BLOCK_MAX_FLOATS } from "./kernels/block_max.ts";
import { gatherGrid } from "./kernels/gather.ts";
import { lossWorkgroups } from "./kernels/loss.ts";
import { PACT_UNIT } from "./kernels/pact_backward.ts";
import { type BoundKernel, ITER_STRIDE } from "./pipelines.ts";
import { type GpuState, stepTableMaxima } from "./state.ts";
import { pactActive } from "../quant.ts";
import { gridOf, MOST_PER_DIMENSION } from "./kernels/grid.ts";

/** What recording a call's iterations needs, gathered once per call. */
export interface Recording {
  state: GpuState;
  kernels: TrainingKernels;
  scaleKernels: ScaleKernels;
  /** The bind group of the call's iteration blocks. */
  iterations: GPUBindGroup;
  /** Least indices of a table in a batch for the sorted embedding update. */
  sortedUpdateFrom: number;
}

/** Records one dispatch (none when the grid is empty). */
export function dispatch(
  pass: GPUComputePassEncoder,
  k: BoundKernel,
  x: number,
  y = 1,
  z = 1,
): void {
  if (x === 0 || y === 0 || z === 0) return;
  pass.setPipeline(k.kernel.pipeline);
  pass.setBindGroup(0, k.group);
  pass.dispatchWorkgroups(x, y, z);
}

/** Records an interaction kernel over a batch of `rows`. */
function dispatchInteraction(
  pass: GPUComputePassEncoder,
  k: InteractionDispatch,
  rows: number,
): void {
  dispatch(pass, k.kernel, k.x, Math.ceil(rows / k.samples));
}

/**
 * Records one matrix product of a batch of `rows`: its GEMM (and split-K reduction). Returns
 * whether it wrote its bias gradient too ({@linkcode GemmOp.biasGrad}).
 */
function recordGemm(
  recording: Recording,
  pass: GPUComputePassEncoder,
  op: GemmOp,
  rows: number,
): boolean {
  let planned = op.byRows.get(rows);
  if (!planned) {
    const state = recording.state;
    planned = planGemmOp(state.binder, recording.kernels.uniforms, state.splitScratch, op, rows);
    op.byRows.set(rows, planned);
  }
  if (planned.kernels.length === 0) return false;
  dispatch(pass, planned.kernels[0], ...planned.main);
  if (planned.kernels[1]) dispatch(pass, planned.kernels[1], ...planned.reduce);
  return planned.withBiasGrad;
}

/** Records one phase of iteration `i` (batch of `rows` samples starting at `s0`). */
export function recordPhase(
  recording: Recording,
  pass: GPUComputePassEncoder,
  phase: Phase,
  i: number,
  rows: number,
  chunk: BatchChunk,
  s0: number,
  quant: QuantConfig | null,
  refresh: boolean,
): void {
  const kernels = recording.kernels;
  pass.setBindGroup(1, recording.iterations, [i * ITER_STRIDE]);
  const state = recording.state;
  const d = state.spec.embeddingDim;
  const quantizedMlp = quant?.mlpBits ? quant : null;
  const pact = pactActive(quant);
  if (phase === "scale") {
    if (quant) recordScale(recording, pass, quant, refresh);
    return;
  }
  if (phase === "forward") {
    const gather = quant?.embeddingBits != null ? kernels.gatherQuantized : kernels.gather;
    const tables = state.spec.tableRows.length;
    for (const k of gather) dispatch(pass, k, ...gatherGrid(tables, d, rows));
    for (const l of kernels.bottom) {
      recordGemm(recording, pass, quantizedMlp ? l.forwardQuantized : l.forward, rows);
      if (pact && l.pactForward) {
        dispatch(pass, l.pactForward, Math.ceil(l.layer.outputs / 64), rows);
      }
    }
    dispatchInteraction(pass, kernels.interactForward, rows);
    for (const l of kernels.top) {
      recordGemm(recording, pass, quantizedMlp ? l.forwardQuantized : l.forward, rows);
      if (pact && l.pactForward) {
        dispatch(pass, l.pactForward, Math.ceil(l.layer.outputs / 64), rows);
      }
    }
    dispatch(pass, kernels.loss, lossWorkgroups(rows));
    dispatch(pass, kernels.lossSum, 1);
    return;
  }
  if (phase === "backward") {
    const back = (l: LayerKernels) => {
      const withBiasGrad = recordGemm(recording, pass, l.weightGrad, rows);
      if (quantizedMlp && l.lsqRows) dispatch(pass, l.lsqRows, l.layer.outputs);
      if (!withBiasGrad) recordGemm(recording, pass, l.biasGrad, rows);
      const inputGrad = quantizedMlp ? l.inputGradQuantized : l.inputGrad;
      if (inputGrad) recordGemm(recording, pass, inputGrad, rows);
      if (pact && l.pactBackward) {
        dispatch(pass, l.pactBackward, Math.ceil(l.layer.inputs / PACT_UNIT));
      }
    };
    for (let l = kernels.top.length - 1; l >= 0; l--) back(kernels.top[l]);
    dispatchInteraction(pass, kernels.interactBackward, rows);
    for (let l = kernels.bottom.length - 1; l >= 0; l--) back(kernels.bottom[l]);
    return;
  }
  if (phase === "update") recordUpdate(recording, pass, rows, chunk, s0, quant, quantizedMlp, pact);
}

/** The update phase: PACT's clips, LSQ's row steps, SGD of the MLP, then the tables. */
function recordUpdate(
  recording: Recording,
  pass: GPUComputePassEncoder,
  rows: number,
  chunk: BatchChunk,
  s0: number,
  quant: QuantConfig | null,
  quantizedMlp: QuantConfig | null,
  pact: boolean,
): void {
  const kernels = recording.kernels;
  const state = recording.state;
  const d = state.spec.embeddingDim;
  recordMlpUpdate(recording, pass, quantizedMlp, pact);
  const entries = batchEntries(chunk, s0, rows);
  const tables = state.spec.tableRows.length;
  if (quant?.embeddingBits != null && kernels.lsqUpdate && kernels.lsqTableStep) {
    for (const k of kernels.lsqUpdate) dispatch(pass, k, Math.ceil((entries * d) / 64), tables);
    dispatch(pass, kernels.lsqTableStep, tables);
    state.blockMaxima.stale = true;
    return;
  }
  const keyBytes = sortKeyBytes(state, entries);
  if (
    entries >= recording.sortedUpdateFrom && entries > 0 && keyBytes <= (state.sortKeys?.size ?? 0)
  ) {
    for (const [k, x, y] of sortedUpdate(state, kernels, entries)) dispatch(pass, k, x, y);
  } else {
    for (const k of kernels.update) dispatch(pass, k, Math.ceil((entries * d) / 64), tables);
  }
  recordBlockMaxRows(recording, pass, entries, quant);
}

/**
 * After a table update: the block maxima of the batch's rows, while the active QAT finds table
 * maxima every step, they are current and rereading the rows' blocks costs less than a full
 * pass; otherwise they are marked stale.
 */
function recordBlockMaxRows(
  recording: Recording,
  pass: GPUComputePassEncoder,
  entries: number,
  quant: QuantConfig | null,
): void {
  const maxima = recording.state.blockMaxima;
  const rows = recording.kernels.blockMaxRows;
  const tables = recording.state.spec.tableRows.length;
  if (!rows || !stepTableMaxima(quant)) {
    maxima.stale = true;
    return;
  }
  maxima.fallback = entries * tables * BLOCK_MAX_FLOATS > maxima.rereadLimit;
  if (maxima.fallback) {
    maxima.stale = true;
    return;
  }
  if (maxima.stale || !maxima.incremental) return; // a full pass comes before they are read
  for (const k of rows) dispatch(pass, k, Math.min(entries, MOST_PER_DIMENSION), tables);
}

/**
 * The MLP's part of the update phase, in the CPU engine's order: PACT's clips, LSQ's row steps,
 * then SGD of the weights (data-parallel training updates the tables itself).
 */
export function recordMlpUpdate(
  recording: Recording,
  pass: GPUComputePassEncoder,
  quantizedMlp: QuantConfig | null,
  pact: boolean,
): void {
  const kernels = recording.kernels;
  if (pact && kernels.pactAlpha) dispatch(pass, kernels.pactAlpha, 1);
  if (quantizedMlp) {
    for (const l of kernels.layers) {
      if (l.lsqStep) dispatch(pass, l.lsqStep, Math.ceil(l.layer.outputs / 64));
    }
  }
  dispatch(pass, kernels.sgd, ...gridOf(Math.ceil(recording.state.layout.floats / 256)));
}

/**
 * The tables' max |w| bits into `tableMaxBits`: from the block maxima (recomputed first when
 * stale), or by reading every table (`maxAbs`) when the incremental path is off or falls back.
 */
function recordTableMaxima(
  recording: Recording,
  pass: GPUComputePassEncoder,
  maxAbs: GridDispatch[],
  quant: QuantConfig,
): void {
  const maxima = recording.state.blockMaxima;
  // Stale blocks that no step keeps current: the streaming read costs less than a full rebuild.
  const kept = stepTableMaxima(quant);
  if (!maxima.incremental || (maxima.stale && (maxima.fallback || !kept))) {
    for (const m of maxAbs) dispatch(pass, m.kernel, m.x, m.y);
    return;
  }
  const kernels = recording.scaleKernels.blockMax();
  if (maxima.stale) {
    for (const m of kernels.full) dispatch(pass, m.kernel, m.x, m.y);
    maxima.stale = false;
  }
  dispatch(pass, kernels.reduce.kernel, kernels.reduce.x, kernels.reduce.y);
}

/**
 * The scale phase of QAT: table scales (minmax when `refresh`, DoReFa's every step; LSQ's are
 * learned), HAWQ's whole-table copies, then every MLP matrix fake-quantized.
 */
function recordScale(
  recording: Recording,
  pass: GPUComputePassEncoder,
  quant: QuantConfig,
  refresh: boolean,
): void {
  const state = recording.state;
  const bits = quant.embeddingBits;
  if (bits !== null) {
    const tableKernels = recording.scaleKernels.forQat(bits);
    const tableBlocks = Math.ceil(state.spec.tableRows.length / 64);
    if (quant.quantizer === "dorefa" || (quant.quantizer === "minmax" && refresh)) {
      recordTableMaxima(recording, pass, tableKernels.maxAbs, quant);
      dispatch(
        pass,
        quant.quantizer === "dorefa" ? tableKernels.dorefaScale : tableKernels.scale,
        tableBlocks,
      );
    }
    for (const c of tableKernels.copy) dispatch(pass, c.kernel, c.x, c.y);
  }
  if (quant.mlpBits === null) return;
  const { rowMax, dorefa } = recording.kernels;
  if (rowMax) dispatch(pass, rowMax.kernel, rowMax.x, rowMax.y);
  if (dorefa) {
    dispatch(pass, dorefa.kernel, dorefa.x, dorefa.y);
    return;
  }
  const q = recording.kernels.quantize;
  dispatch(pass, q.kernel, q.x, q.y);
}
