/**
 * What a WebGPU engine can be configured with, and the QAT settings it refuses.
 *
 * @module
 */
import type { Params } from "../params.ts";
import type { QuantConfig } from "../quant.ts";
import type { ModelSpec } from "../spec.ts";

/** Default of {@linkcode GpuEngineOptions.sortedUpdateFrom}. */
export const SORTED_UPDATE_FROM = 512;

/** Options of `createGpuEngine`. */
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
   * GPU sort of the indices by row (O(B log² B)) and the tree update instead of the pairwise
   * scan (O(B²)); both sum each row's gradients in the same order. Default {@linkcode SORTED_UPDATE_FROM}; 0
   * always sorts, Infinity never does.
   */
  sortedUpdateFrom?: number;
  /**
   * Which GPU this process opens (`adapter_select.ts`); default: the one already selected, else
   * the Open MPI local rank's, else the default adapter.
   */
  gpuIndex?: number;
  /**
   * Whether scale finding keeps per-block table maxima current after each step's update and
   * reads those (O(rows touched)) instead of every table: true (default) where a step's rereads
   * cost less than a full pass (else the next scale finding recomputes every block), "always",
   * or false (the full read every time, to compare against). All give the same bits.
   */
  incrementalTableMaxima?: boolean | "always";
}

/**
 * Throws for the QAT settings that neither engine defines: DoReFa ("PACT") quantizes gathered
 * rows only (the CPU engine makes no DoReFa table copy) and leaves biases in FP32 (the CPU engine
 * quantizes no bias for it).
 */
export function checkSupported(q: QuantConfig): void {
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
