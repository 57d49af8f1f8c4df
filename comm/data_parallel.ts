/**
 * Data-parallel training in one process: N Workers, each a single-threaded CPU engine holding a
 * replica, exchange gradients through a {@linkcode SharedMemoryCommunicator} every iteration
 * and apply identical updates. The coordinator (the caller's thread) only posts chunks and
 * collects results.
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";
import type { CpuKernelChoice } from "../engine/cpu/mod.ts";
import type { TrainChunkResult, TrainOptions } from "../engine/engine.ts";
import type { Params } from "../engine/params.ts";
import { PHASES } from "../engine/phases.ts";
import { type QuantConfig, QuantConfigSchema } from "../engine/quant.ts";
import { type ModelSpec, validateSpec } from "../engine/spec.ts";
import { shareChunk } from "../engine/batch.ts";
import { meanBytesPerIteration } from "./accounting.ts";
import { meanWorkerLoss } from "./chunk.ts";
import { createSharedGroup } from "./communicator.ts";
import { type ByteCount, type Compression, CompressionSchema } from "./compression.ts";
import type { ReplicaRequest } from "./replica_worker.ts";
import { ReplicaDivergenceError } from "./replicas.ts";

/** Options of {@linkcode DataParallelTrainer.create}. */
export interface DataParallelOptions {
  spec: ModelSpec;
  /** Workers (replicas). */
  workers: number;
  /** Largest global batch; each worker's engine holds `maxBatch / workers`. */
  maxBatch: number;
  /** Largest batch replica 0 predicts (default: the local batch). */
  predictBatch?: number;
  /** Seed of the initialisation (every replica starts from the same one). */
  seed?: number;
  /** Initial parameters instead of the seeded initialisation. */
  params?: Params;
  quantization?: QuantConfig | null;
  compression?: Partial<Compression>;
  /** Bytes each worker may send per collective (default 8 MiB; more go in pieces). */
  slotBytes?: number;
  /** Every replica's matrix kernels (default `wasm`; see `engine/cpu/blas.ts`). */
  kernels?: CpuKernelChoice;
}

/** What a data-parallel chunk returns. */
export interface DataParallelChunkResult extends TrainChunkResult {
  /** Bytes a worker sends per iteration, by part (mean over workers and iterations). */
  bytesPerIteration: ByteCount;
  /** Bytes each worker's communicator actually sent over the chunk, by rank. */
  bytesSent: number[];
  /** Replica 0's embedding scales after the chunk. */
  embeddingScales: Float32Array;
}

interface Replica {
  worker: Worker;
  next(): Promise<Record<string, unknown> & { type: string; message?: string }>;
}

/** N replicas trained data-parallel in one process. */
export class DataParallelTrainer {
  readonly spec: ModelSpec;
  readonly workers: number;
  readonly compression: Compression;
  /** Bytes every replica's engine holds, summed. */
  memoryBytes = 0;
  /** Replica 0's embedding tables (shared memory: read in place, never written). */
  tables: readonly Float32Array[] = [];
  /** What the replicas' matrix products ran on (their engines' `info.details`). */
  kernels = { kernels: "", cpuKernels: "" };
  readonly #replicas: Replica[];
  #broken = false;
  /** Acknowledgements of posted commands not awaited yet (see {@linkcode #command}). */
  #pending: Promise<unknown> = Promise.resolve();

  private constructor(spec: ModelSpec, compression: Compression, replicas: Replica[]) {
    this.spec = spec;
    this.workers = replicas.length;
    this.compression = compression;
    this.#replicas = replicas;
  }

  /** Starts the workers and initialises every replica identically. */
  static async create(options: DataParallelOptions): Promise<DataParallelTrainer> {
    const spec = validateSpec(options.spec);
    const n = options.workers;
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      throw new RangeError(`Expected workers to be an integer in [1, 64] but found ${n}`);
    }
    if (options.maxBatch % n !== 0) {
      throw new RangeError(`Expected maxBatch ${options.maxBatch} to be a multiple of ${n}`);
    }
    const compression = CompressionSchema.parse(options.compression ?? {});
    const quantization = options.quantization
      ? QuantConfigSchema.parse(options.quantization)
      : null;
    const group = createSharedGroup(n, options.slotBytes);
    const replicas: Replica[] = [];
    for (let rank = 0; rank < n; rank++) {
      const worker = new Worker(new URL("./replica_worker.ts", import.meta.url).href, {
        type: "module",
      });
      type M = Record<string, unknown> & { type: string; message?: string };
      const queue: M[] = [];
      const waiting: ((m: M) => void)[] = [];
      const deliver = (m: M) => {
        const w = waiting.shift();
        if (w) w(m);
        else queue.push(m);
      };
      worker.onmessage = (e) => deliver(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        deliver({ type: "error", message: e.message });
      };
      const next = () =>
        queue.length ? Promise.resolve(queue.shift()!) : new Promise<M>((r) => waiting.push(r));
      replicas.push({ worker, next });
      const setup: ReplicaRequest = {
        type: "setup",
        rank,
        group,
        spec,
        localBatch: options.maxBatch / n,
        maxBatch: options.predictBatch ?? options.maxBatch / n,
        seed: options.seed ?? 0,
        params: options.params,
        quantization,
        compression,
        kernels: options.kernels,
      };
      worker.postMessage(setup);
    }
    const trainer = new DataParallelTrainer(spec, compression, replicas);
    try {
      const ready = await trainer.#collect("ready");
      trainer.memoryBytes = ready.reduce((a, r) => a + (r.memoryBytes as number), 0);
      trainer.tables = ready[0].tables as Float32Array[];
      trainer.kernels = {
        kernels: String(ready[0].kernels),
        cpuKernels: String(ready[0].cpuKernels),
      };
    } catch (error) {
      trainer.dispose();
      throw error;
    }
    return trainer;
  }

  /** Waits for every replica's reply; throws the first real error (not a peer's abort). */
  async #collect(type: string): Promise<Record<string, unknown>[]> {
    const replies = await Promise.all(this.#replicas.map((r) => r.next()));
    const errors = replies.filter((r) => r.type !== type);
    if (errors.length) {
      this.#broken = true;
      const real = errors.find((e) => !String(e.message).includes("BarrierAbortedError")) ??
        errors[0];
      throw new Error(`A data-parallel worker failed: ${real.message}`);
    }
    return replies;
  }

  #post(msg: ReplicaRequest, ranks = this.#replicas): void {
    if (this.#broken) throw new Error("Expected a live data-parallel group but a worker failed");
    for (const r of ranks) r.worker.postMessage(msg);
  }

  /**
   * Posts `msg` to every replica without waiting; its acknowledgements (`type` replies carrying
   * replica 0's scales) are collected before the next call that waits. Returns their promise.
   */
  #command(msg: ReplicaRequest, type: string): Promise<Float32Array> {
    this.#post(msg);
    const acks = this.#pending.then(() => this.#collect(type));
    this.#pending = acks.catch(() => {});
    return acks.then((r) => r[0].scales as Float32Array);
  }

  /** Waits for the acknowledgements of earlier commands; throws if one failed. */
  async #settle(): Promise<void> {
    await this.#pending;
    if (this.#broken) throw new Error("Expected a live data-parallel group but a worker failed");
  }

  /** Pauses or resumes quantization-aware training on every replica; resolves to the scales. */
  setQuantizationActive(active: boolean): Promise<Float32Array> {
    return this.#command({ type: "quantization", active }, "quantization");
  }

  /** Post-training quantization of every replica (identically); resolves to replica 0's scales. */
  quantizeInPlace(
    config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">,
  ): Promise<Float32Array> {
    return this.#command({ type: "quantizeInPlace", config }, "quantizeInPlace");
  }

  /**
   * Trains on every full global batch of `chunk` (`batchSize` is the global batch): each worker
   * takes its contiguous slice of every batch. Losses are the mean of the workers'; phases are
   * rank 0's (its `communication` includes waiting for the slowest worker).
   */
  async trainChunk(chunk: BatchChunk, options: TrainOptions): Promise<DataParallelChunkResult> {
    if (chunk.batchSize % this.workers !== 0) {
      throw new RangeError(
        `Expected the global batch ${chunk.batchSize} to be a multiple of ${this.workers} workers`,
      );
    }
    await this.#settle();
    const start = performance.now();
    this.#post({ type: "train", chunk: shareChunk(chunk), learningRate: options.learningRate });
    const replies = await this.#collect("trained");
    const results = replies.map((r) => r.result as TrainChunkResult);
    const iterations = results[0].iterations;
    const loss = meanWorkerLoss(results.map((r) => r.loss), iterations);
    const bytes = meanBytesPerIteration(replies.map((r) => r.bytes as ByteCount), iterations);
    const phases = Object.fromEntries(
      PHASES.map((p) => [p, results[0].phases[p]]),
    ) as TrainChunkResult["phases"];
    return {
      iterations,
      loss,
      phases,
      wallMs: performance.now() - start,
      bytesPerIteration: bytes,
      bytesSent: replies.map((r) => r.bytesSent as number),
      embeddingScales: replies[0].scales as Float32Array,
    };
  }

  /** Click probabilities of `chunk`, from rank 0's replica. */
  async predict(chunk: BatchChunk): Promise<Float32Array> {
    await this.#settle();
    this.#post({ type: "predict", chunk }, this.#replicas.slice(0, 1));
    const m = await this.#replicas[0].next();
    if (m.type !== "predicted") throw new Error(`A data-parallel worker failed: ${m.message}`);
    return m.probabilities as Float32Array;
  }

  /** A copy of the parameters of replica `rank` (0 by default). */
  async readParams(rank = 0): Promise<Params> {
    await this.#settle();
    this.#post({ type: "params" }, [this.#replicas[rank]]);
    const m = await this.#replicas[rank].next();
    if (m.type !== "params") throw new Error(`A data-parallel worker failed: ${m.message}`);
    return m.params as Params;
  }

  /** Every replica's parameter checksum, by rank. */
  async checksums(): Promise<string[]> {
    await this.#settle();
    this.#post({ type: "checksum" });
    const replies = await this.#collect("checksum");
    return replies.map((r) => r.checksum as string);
  }

  /** Throws {@linkcode ReplicaDivergenceError} unless every replica is bit-identical. */
  async checkReplicas(): Promise<void> {
    const sums = await this.checksums();
    if (sums.some((s) => s !== sums[0])) throw new ReplicaDivergenceError(sums);
  }

  /** Stops the workers. */
  dispose(): void {
    for (const r of this.#replicas) r.worker.terminate();
  }
}
