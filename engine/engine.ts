/**
 * The engine interface that the CPU and WebGPU engines implement.
 *
 * An engine owns one DLRM's parameters and trains it a chunk of many batches per call, reading
 * metrics back only at the end of the chunk: a GPU engine records a whole chunk in one submit, and
 * every host-device wait costs milliseconds.
 *
 * @module
 */
import type { BatchChunk } from "./batch.ts";
import type { Params } from "./params.ts";
import type { PhaseSamples } from "./phases.ts";
import type { QuantConfig } from "./quant.ts";
import type { ModelSpec } from "./spec.ts";

/** What an engine runs on, recorded in every result. */
export interface EngineInfo {
  /** Engine name, `"cpu"` or `"gpu"`. */
  name: string;
  /** The device: CPU model or GPU adapter description. */
  device: string;
  /** Threads (CPU) or workgroup-parallel device (GPU, 1). */
  threads: number;
  /** Free-form details such as kernel variant or adapter limits. */
  details: Record<string, string | number | boolean>;
}

/** Options of one training chunk. */
export interface TrainOptions {
  /** SGD learning rate. */
  learningRate: number;
}

/** What training a chunk returns. */
export interface TrainChunkResult {
  /** Iterations (batches) trained. */
  iterations: number;
  /** Mean training loss of each iteration. */
  loss: Float32Array;
  /** Per-iteration milliseconds of each phase. */
  phases: PhaseSamples;
  /** Wall-clock milliseconds of the whole call. */
  wallMs: number;
  /**
   * Bytes each worker sent per iteration (mean over the chunk), by part: set by data-parallel
   * trainers only.
   */
  bytesPerIteration?: ByteCount;
  /**
   * The device's clock, in ms, at the start of the chunk's first timed pass and at the end of its
   * last (engines with GPU timestamps only): the next chunk's start minus this one's end is the
   * device's idle time between them, and this span minus the phases' times what ran untimed.
   */
  deviceClockMs?: { start: number; end: number };
}

/** Bytes of one iteration's messages of one worker, by part. */
export interface ByteCount {
  /** Embedding gradients: row ids (with the per-table counts) and values, or dense tables. */
  embedding: number;
  /** MLP gradients. */
  mlp: number;
  /** Quantization scales (the scale all-reduce). */
  scales: number;
  total: number;
}

/** What an engine can do beyond the interface's promise, declared by the engine. */
export interface EngineCapabilities {
  /**
   * The engine copies a chunk's input when the call starts, so the caller may start the next
   * `trainChunk` before the previous one settles (the calls still apply in call order): the
   * next chunk is recorded while one trains.
   */
  overlapsChunks: boolean;
}

/** Raised when the loss stops being finite. */
export class NonFiniteLossError extends Error {
  /** Iteration (batch) index within the chunk. */
  readonly iteration: number;
  constructor(iteration: number, loss: number) {
    super(
      `Training diverged: the loss of iteration ${iteration} of the chunk is ${loss}; ` +
        `lower the learning rate or check the input data`,
    );
    this.name = "NonFiniteLossError";
    this.iteration = iteration;
  }
}

/** The results of one traced step: what the golden fixtures check. */
export interface StepTrace {
  /** Predicted click probabilities of the batch. */
  probabilities: Float32Array;
  /** Mean binary cross-entropy. */
  loss: number;
  /** Gradients of every parameter, dense (embedding gradients zero for untouched rows). */
  gradients: Params;
}

/** A DLRM training engine. */
export interface Engine {
  /** The architecture this engine holds. */
  readonly spec: ModelSpec;
  /** What the engine runs on. */
  readonly info: EngineInfo;
  /** What the engine can do beyond the interface's promise. */
  readonly capabilities: EngineCapabilities;
  /** Trains on every full batch of `chunk`, one SGD step per batch. */
  trainChunk(chunk: BatchChunk, options: TrainOptions): Promise<TrainChunkResult>;
  /** Click probabilities of every sample of `chunk` (batched by `chunk.batchSize`). */
  predict(chunk: BatchChunk): Promise<Float32Array>;
  /**
   * Runs one training step on the first batch of `chunk` and returns its probabilities, loss
   * and dense gradients; the parameters are updated as in `trainChunk`. For golden checks on
   * small models: dense embedding gradients cost the size of the tables.
   */
  traceStep(chunk: BatchChunk, options: TrainOptions): Promise<StepTrace>;
  /**
   * A copy of one embedding table as every call made before this one left it (cheaper than
   * `readParams` for one tensor); rejects with a RangeError for a table out of range.
   */
  readTable(table: number): Promise<Float32Array>;
  /** A copy of the parameters (the FP32 shadow weights under QAT). */
  readParams(): Promise<Params>;
  /** The quantization-aware training settings, or null for FP32 training. */
  readonly quantization: QuantConfig | null;
  /**
   * Pauses (false) or resumes (true, the default) quantization-aware training, e.g. to train a
   * first epoch in FP32 before QAT (the paper's Table 8). Scales keep their period clock.
   */
  setQuantizationActive(active: boolean): void;
  /**
   * The per-table embedding scales in use (0 where none was found yet), as every call made
   * before this one left them (`quantizeInPlace` included).
   */
  embeddingScales(): Promise<Float32Array>;
  /**
   * Post-training quantization: replaces the weights by their fake-quantized values (one scale
   * per table, one per MLP row), in place. Training afterwards continues from them.
   */
  quantizeInPlace(config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">): void;
  /** Bytes the engine holds for parameters, gradients and activations. */
  memoryBytes(): number;
  /**
   * A checksum of each replica's parameters, for engines that hold several (data-parallel
   * replicas must stay bit-identical); absent on single engines.
   */
  replicaChecksums?(): Promise<string[]>;
  /** Frees threads and memory. */
  dispose(): Promise<void>;
}
