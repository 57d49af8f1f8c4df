/**
 * The CPU engine's run contract: what one run of a chunk does (`RunRequest`, the same for every
 * thread) and what thread 0 fills while running it (`RunOutputs`). The engine (`cpu_engine.ts`)
 * makes them, every thread's program (`program.ts`) runs them.
 *
 * @module
 */
import type { BatchChunk } from "../batch.ts";

/** What the run of a chunk does with each batch. */
export type RunKind = "train" | "predict" | "trace";

/**
 * What one run of a chunk does; every thread receives the same request (the main thread
 * posts it to the helpers as their `run` message, so it holds only cloneable data).
 */
export interface RunRequest {
  /** What is done with each batch. */
  kind: RunKind;
  /** The chunk whose batches are run. */
  chunk: BatchChunk;
  /** First sample of the chunk to run. */
  first: number;
  /** Samples to run from `first`. */
  count: number;
  /** Samples per batch (the last batch may be shorter for predict). */
  batch: number;
  /** SGD learning rate (ignored by predict). */
  learningRate: number;
  /** Global step of the first batch: table scales are refreshed every `scalePeriod` steps. */
  firstStep: number;
  /** Batches per global step (K simulated workers' shares; 1 otherwise): see `firstStep`. */
  batchesPerStep: number;
  /** Whether quantization-aware training (or quantized prediction) is active. */
  quantize: boolean;
  /**
   * Predict with helper threads: the probabilities of the run's samples, over shared memory,
   * which every thread writes for the row tiles it runs.
   */
  probabilities?: Float32Array;
  /**
   * Whether the tables are as the last run left them (nothing else wrote them since): the
   * threads' block maxima of the tables stay valid (`table_max.ts`), else they are read again.
   */
  tableMaximaValid: boolean;
  /** Whether table scales use kept block maxima at all (else every table is read). */
  incrementalTableMaxima: boolean;
  /**
   * Per-channel min-max MLP quantization (`mlpQuantizedInUpdate`): whether each thread's share
   * of a layer's SGD step and fake quantization runs as one kernel (`sgdQuantizeRows`), or as
   * `sgd`, `rowMaxAbs` and `fakeQuantizeRows` in turn (to compare against). The same bits.
   */
  fusedMlpUpdate: boolean;
  /**
   * Whether those MLP updates run in the backward pass, each layer's right after its backward
   * (the gradient still in cache), rather than after the whole backward: only where nothing
   * needs every gradient first (no exchange, no `onGradients`). The same bits.
   */
  mlpUpdateInBackward: boolean;
}

/** The phases of a predict run that `RunOutputs.predictMs` times, in order. */
export const PREDICT_PHASES = [
  "gather",
  "bottom",
  "interaction",
  "top",
  "output",
  "wait",
] as const;

/** Per-iteration outputs that thread 0 fills while running a chunk. */
export interface RunOutputs {
  /** Mean loss per iteration (train, trace). */
  loss?: Float32Array;
  /** Probabilities per sample (predict, trace). */
  probabilities?: Float32Array;
  /** Per-iteration phase milliseconds (train). */
  scaleMs?: Float64Array;
  forwardMs?: Float64Array;
  backwardMs?: Float64Array;
  updateMs?: Float64Array;
  /**
   * Predict: milliseconds thread 0 spends in each phase of {@linkcode PREDICT_PHASES}, added
   * over the run's batches (the last entry, `wait`, is its time at barriers: the other threads'
   * lag and the hand-off itself).
   */
  predictMs?: Float64Array;
  /** Per-iteration milliseconds of `exchange` (train with an exchange). */
  communicationMs?: Float64Array;
  /** Called by thread 0 after the backward pass, before the update (trace). */
  onGradients?: (rows: number, firstSample: number) => void;
  /**
   * Data-parallel gradient exchange (single-threaded engines only): called after the backward
   * pass with the local gradients in memory. It may rewrite the MLP gradients in place (the SGD
   * update then applies them) and must update the embedding tables itself: when it is set, the
   * engine's own table update is skipped.
   */
  exchange?: (rows: number, firstSample: number) => void;
}
