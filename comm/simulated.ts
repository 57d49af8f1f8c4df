/**
 * Simulated data parallelism on one engine (the paper's Algorithm 1): the global batch is split
 * into K micro-batches, one per simulated worker, run one after another on the same weights;
 * each micro-batch's gradients are kept as that worker's, and after the K-th the workers'
 * gradients go through the same compression and reduction as real workers
 * (`compression.ts`), and one SGD step is taken.
 *
 * Deviations from the public code (reference study §4.4), all on purpose:
 * - the shared scale is the mean of the K local scales, as in real data parallelism (the public
 *   simulation reuses the first micro-batch's scale for the whole cycle, since it quantizes
 *   each micro-batch as it comes); this needs the K FP32 gradients kept until the K-th;
 * - error compensation keeps one residual per simulated worker, as real workers do;
 * - the first update comes after K micro-batches (the public code updates after the first);
 * - the integers are summed in Int32, exactly;
 * - QAT's scale period counts global steps, as on real workers: table scales are found on a
 *   step's first micro-batch every `scalePeriod` global steps, and the other workers' shares of
 *   the step, on the same weights, use them.
 * The result is the same model, bit for bit, as K real single-threaded workers.
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";
import { type CpuDataParallelHooks, cpuDataParallelHooks } from "../engine/cpu/mod.ts";
import type { Engine, TrainChunkResult, TrainOptions } from "../engine/engine.ts";
import { addBytesDivided, meanBytesPerIteration } from "./accounting.ts";
import { sumInOrder } from "./communicator.ts";
import {
  applyGlobalGradients,
  type ByteCount,
  byteCount,
  type Compression,
  CompressionSchema,
  WorkerGradients,
} from "./compression.ts";

/** What a simulated data-parallel chunk returns. */
export interface SimulatedChunkResult extends TrainChunkResult {
  /** Bytes a simulated worker would send per global iteration (mean over workers and chunk). */
  bytesPerIteration: ByteCount;
}

/** K simulated workers on one single-threaded CPU engine. */
export class SimulatedDataParallel {
  readonly workers: number;
  readonly config: Compression;
  readonly #hooks: CpuDataParallelHooks;
  readonly #states: WorkerGradients[];
  readonly #scales: Float32Array;
  readonly #f32: Float32Array;
  readonly #i32: Int32Array;
  readonly #dense: Float32Array | null;

  constructor(engine: Engine, workers: number, compression: Partial<Compression> = {}) {
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(`Expected a positive integer of workers but found ${workers}`);
    }
    this.workers = workers;
    this.config = CompressionSchema.parse(compression);
    this.#hooks = cpuDataParallelHooks(engine);
    this.#states = Array.from(
      { length: workers },
      () => new WorkerGradients(engine.spec, this.config),
    );
    const w = this.#states[0];
    this.#scales = new Float32Array(w.scales.length);
    this.#f32 = new Float32Array(w.mlp.length);
    this.#i32 = new Int32Array(w.mlp.length);
    this.#dense = w.dense ? new Float32Array(w.dense.length) : null;
  }

  /**
   * Trains on every full global batch of `chunk` (its `batchSize` is the global batch, a
   * multiple of the workers): one SGD step per global batch. Losses are per global batch (the
   * mean of the workers'); phases are summed over the K micro-batches.
   */
  async trainChunk(chunk: BatchChunk, options: TrainOptions): Promise<SimulatedChunkResult> {
    const K = this.workers, micro = microBatchChunk(chunk, K);
    const access = this.#hooks.access;
    let j = 0;
    const bytes = byteCount(0, 0, 0);
    const exchange = (rows: number, s0: number) => {
      const w = this.#states[j];
      w.collect(access, chunk, s0, rows);
      w.localScales();
      if (++j < K) {
        // Not the last worker: no step yet (zero MLP gradients; the tables are not touched).
        for (const l of access.layers) {
          for (let o = 0; o < l.outputs; o++) {
            access.memory.fill(0, l.gw + o * l.inP, l.gw + o * l.inP + l.inputs);
          }
          access.memory.fill(0, l.gb, l.gb + l.outputs);
        }
        return;
      }
      j = 0;
      const scales = this.#scales;
      if (scales.length) {
        sumInOrder(this.#states.map((s) => s.scales), scales);
        for (let i = 0; i < scales.length; i++) scales[i] /= K;
      }
      for (const s of this.#states) s.quantize(scales);
      let mlpSum: Float32Array | Int32Array = this.#f32;
      if (this.config.mlpBits) {
        sumInOrder(this.#states.map((s) => s.mlpQ!), this.#i32);
        mlpSum = this.#i32;
      } else sumInOrder(this.#states.map((s) => s.mlp), this.#f32);
      if (this.#dense) sumInOrder(this.#states.map((s) => s.dense!), this.#dense);
      const messages = this.#dense ? [] : this.#states.map((s) => s.message());
      const last = this.#states[K - 1];
      applyGlobalGradients(
        access,
        last,
        K,
        options.learningRate,
        scales,
        mlpSum,
        messages,
        this.#dense,
      );
      for (const s of this.#states) addBytesDivided(bytes, s.bytes(), K);
    };
    const r = perGlobalBatch(await this.#hooks.trainChunk(micro, options, exchange, K), K);
    return { ...r, bytesPerIteration: meanBytesPerIteration([bytes], r.iterations) };
  }
}

/**
 * The view of `chunk` that K simulated workers train on: its full global batches (`batchSize`,
 * a multiple of `workers`) as micro-batches of `batchSize / workers`, worker k's share of a
 * global batch the k-th of its micro-batches.
 */
export function microBatchChunk(chunk: BatchChunk, workers: number): BatchChunk {
  const K = workers, B = chunk.batchSize;
  if (B % K !== 0) {
    throw new RangeError(`Expected the global batch ${B} to be a multiple of ${K} workers`);
  }
  return { ...chunk, batchSize: B / K, samples: Math.floor(chunk.samples / B) * B };
}

/**
 * A micro-batch chunk's result per global batch of `workers` micro-batches: losses the mean of
 * the workers', phases summed over them.
 */
export function perGlobalBatch(r: TrainChunkResult, workers: number): TrainChunkResult {
  const K = workers, iterations = r.iterations / K;
  const loss = new Float32Array(iterations);
  for (let i = 0; i < iterations; i++) {
    let sum = 0;
    for (let k = 0; k < K; k++) sum += r.loss[i * K + k];
    loss[i] = sum / K;
  }
  const phases = Object.fromEntries(
    Object.entries(r.phases).map(([p, v]) => {
      const out = new Float64Array(iterations);
      for (let i = 0; i < v.length; i++) out[Math.floor(i / K)] += v[i];
      return [p, out];
    }),
  ) as TrainChunkResult["phases"];
  return { iterations, loss, phases, wallMs: r.wallMs };
}
