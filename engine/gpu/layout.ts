/**
 * Where the GPU engine's MLP parameters live: every weight matrix and bias, unpadded (PyTorch's
 * row-major `[out, in]`), packed into one buffer with each tensor starting on a 256-byte
 * boundary (a storage binding offset must be). Gradients and fake-quantized weights use the same
 * packing in buffers of their own, so one SGD dispatch updates the whole MLP.
 *
 * @module
 */
import type { ModelSpec } from "../spec.ts";
import { interactionWidth } from "../spec.ts";

/** Floats per 256 bytes: tensor starts are multiples of it. */
export const ALIGN_FLOATS = 64;

/** One linear layer's place in the packed buffers (float offsets). */
export interface PackedLinear {
  inputs: number;
  outputs: number;
  /** Where the weights `[outputs, inputs]` and the biases start. */
  weightOffset: number;
  biasOffset: number;
  /** Where this layer's per-row scales start in the scales buffer. */
  scaleOffset: number;
}

/** The packing of both MLPs and the activation widths. */
export interface GpuLayout {
  bottom: PackedLinear[];
  top: PackedLinear[];
  /** Floats of the packed parameter buffer. */
  floats: number;
  /** Rows of all layers (scales buffer length). */
  rows: number;
  /** Vectors in the interaction (tables + 1); T's and dT's row length (vectors * d). */
  vectors: number;
  ldt: number;
  /**
   * R's (and dR's) row stride: the interaction's output width rounded up to a multiple of 4, so
   * that the Top MLP's first GEMMs may load R with vec4s (the pad columns are never read).
   */
  ldr: number;
}

/** Packs the MLPs of `spec`. */
export function planGpuLayout(spec: ModelSpec): GpuLayout {
  let next = 0;
  let rows = 0;
  const alloc = (n: number) => {
    const at = next;
    next += Math.ceil(n / ALIGN_FLOATS) * ALIGN_FLOATS;
    return at;
  };
  const pack = (widths: number[]) =>
    widths.slice(1).map((outputs, l) => {
      const inputs = widths[l];
      const layer = {
        inputs,
        outputs,
        weightOffset: alloc(inputs * outputs),
        biasOffset: alloc(outputs),
        scaleOffset: rows,
      };
      rows += outputs;
      return layer;
    });
  const bottom = pack(spec.bottomMlp);
  const top = pack(spec.topMlp);
  const vectors = spec.tableRows.length + 1;
  return {
    bottom,
    top,
    floats: Math.max(next, ALIGN_FLOATS),
    rows,
    vectors,
    ldt: vectors * spec.embeddingDim,
    ldr: Math.ceil(interactionWidth(spec) / 4) * 4,
  };
}
