/**
 * Data parallelism with GPU engines, the same algorithm as with CPU engines (`compression.ts`):
 * after every backward pass each worker's gradients are compressed on its GPU
 * (`engine/gpu/grad_exchange.ts`), only the compressed bytes are read back and exchanged, and the
 * global gradient goes back up: the MLP's into the engine's gradient buffer (its SGD applies
 * it), the tables' as a list of row updates applied on the GPU with JavaScript's rounding
 * (`engine/gpu/grad_apply.ts`). So a GPU replica takes the same steps as a CPU replica of the same
 * gradients, bit for bit.
 *
 * - {@linkcode GpuRankExchange}: one rank of real data parallelism, one GPU engine per rank,
 *   exchanging through a {@linkcode Communicator} (shared memory between Workers, or MPI).
 * - {@linkcode SimulatedGpuDataParallel}: K workers simulated on one GPU engine (the paper's
 *   Algorithm 1, as `simulated.ts` does on a CPU engine): the same model as K GPU ranks.
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";
import type { Engine } from "../engine/engine.ts";
import { GpuMlpGradient, GpuRowApply } from "../engine/gpu/grad_apply.ts";
import {
  DEFAULT_GPU_READBACK,
  GpuGradientExchange,
  gpuLayoutAccess,
  type GpuMessages,
  type GpuReadback,
} from "../engine/gpu/grad_exchange.ts";
import {
  createGpuEngine,
  gpuDataParallelHooks,
  type GpuExchange,
  type GpuReplicaBuffers,
  type GpuTableStep,
} from "../engine/gpu/mod.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { addBytesDivided, bytesTimes, meanBytesPerIteration } from "./accounting.ts";
import { sliceChunk } from "./chunk.ts";
import { type Communicator, sumInOrder } from "./communicator.ts";
import {
  type ByteCount,
  byteCount,
  type Compression,
  CompressionSchema,
  writeGlobalMlpGradient,
} from "./compression.ts";
import { GlobalRowDeltas } from "./row_deltas.ts";
import { paramsChecksum } from "./replicas.ts";
import { microBatchChunk, perGlobalBatch, type SimulatedChunkResult } from "./simulated.ts";

/** A worker's bytes for one iteration, as `WorkerGradients.bytes` counts them. */
function bytesOf(scales: number, m: GpuMessages): ByteCount {
  return byteCount(m.embedding.byteLength, m.mlp.byteLength, 4 * scales);
}

/**
 * The error-compensation residuals of an exchange's workers (one per simulated worker, or the
 * rank's one): training state kept for the whole run, apart from the {@linkcode GpuReplicaParts}
 * that are rebuilt whenever the engine replaces an input buffer (a longer chunk, or a prediction
 * over a larger test chunk). Residuals made with the parts would restart at zero then, and an
 * evaluation would change the model trained.
 */
class GpuResiduals {
  readonly #config: Compression;
  readonly #buffers: GPUBuffer[] = [];

  constructor(config: Compression) {
    this.#config = config;
  }

  /** The residuals of `workers` workers on the engine of `buffers` (none without compensation). */
  of(buffers: GpuReplicaBuffers, workers: number): readonly GPUBuffer[] {
    if (!this.#config.errorCompensation || this.#config.mlpBits === null) return [];
    while (this.#buffers.length < workers) {
      this.#buffers.push(buffers.device.createBuffer({
        label: "mlp residual",
        size: Math.max(16, buffers.layout.floats * 4),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      }));
    }
    return this.#buffers;
  }

  destroy(): void {
    for (const b of this.#buffers) b.destroy();
    this.#buffers.length = 0;
  }
}

/**
 * What a GPU replica's exchange builds over the engine's buffers: `own` compressions (one per
 * simulated worker, each with its own copy of the MLP gradients; or one over the engine's
 * gradients) keeping their error-compensation residuals in `residuals`, the table update and
 * the host copy of the global MLP gradient.
 */
class GpuReplicaParts {
  readonly buffers: GpuReplicaBuffers;
  readonly entries: number;
  readonly exchanges: GpuGradientExchange[];
  readonly apply: GpuRowApply;
  /** The global MLP gradient written on the GPU, where it gives the host's bits; else null. */
  readonly #mlpGradient: GpuMlpGradient | null;
  readonly #workers: number;
  readonly #host: Float32Array;
  readonly #grads: GPUBuffer[] = [];
  readonly #config: Compression;
  readonly #rowDeltas: GlobalRowDeltas;

  constructor(
    buffers: GpuReplicaBuffers,
    config: Compression,
    entries: number,
    workers: number,
    own: number | null,
    readback: GpuReadback,
    residuals: readonly GPUBuffer[],
  ) {
    this.buffers = buffers;
    this.entries = entries;
    this.#config = config;
    const b = buffers, layout = b.layout;
    const grad = () => {
      const g = b.device.createBuffer({
        label: "worker mlp gradients",
        size: layout.floats * 4,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      this.#grads.push(g);
      return g;
    };
    this.exchanges = Array.from({ length: own ?? 1 }, (_, j) =>
      new GpuGradientExchange({
        device: b.device,
        binder: b.binder,
        spec: b.spec,
        layout,
        compression: config,
        entries,
        input: b.input,
        dT: b.dT,
        grad: own === null ? b.mlpGrad : grad(),
        readback,
        residual: residuals[j],
      }));
    this.apply = new GpuRowApply({
      device: b.device,
      binder: b.binder,
      embeddingDim: b.spec.embeddingDim,
      plan: b.plan,
      tableDirectory: b.input.tableDirectory,
      segments: b.segments,
      groupArenas: b.groupArenas,
      maxRows: workers * b.spec.tableRows.length * Math.max(1, entries),
    });
    this.#workers = workers;
    this.#mlpGradient = GpuMlpGradient.supports(workers, config.mlpBits)
      ? new GpuMlpGradient({
        device: b.device,
        binder: b.binder,
        layout,
        mlpGrad: b.mlpGrad,
        workers,
        mlpBits: config.mlpBits,
        scaleBase: config.embeddingBits ? b.spec.tableRows.length : 0,
      })
      : null;
    this.#host = new Float32Array(layout.floats);
    this.#rowDeltas = new GlobalRowDeltas(b.spec, config);
  }

  /** Whether these parts serve `buffers` for batches of `entries` indices per table. */
  fits(buffers: GpuReplicaBuffers, entries: number): boolean {
    const a = this.buffers, b = buffers;
    return a.mlpGrad === b.mlpGrad && a.dT === b.dT && a.segments === b.segments &&
      a.input.tableDirectory === b.input.tableDirectory && a.input.indices === b.input.indices &&
      a.input.offsets === b.input.offsets && entries <= this.entries;
  }

  /**
   * Writes the global gradient of the parts' workers: the MLP's into the engine's gradient
   * buffer, the tables' into the update that the step records.
   */
  globalStep(
    learningRate: number,
    scales: Float32Array,
    mlpSum: Float32Array | Int32Array,
    messages: readonly Int8Array[],
  ): GpuTableStep {
    this.tableStep(learningRate, scales, messages);
    return this.mlpStep(scales, mlpSum);
  }

  /**
   * The tables' part of {@linkcode globalStep}: uploads the row updates of the workers'
   * embedding messages, which the step records.
   */
  tableStep(learningRate: number, scales: Float32Array, messages: readonly Int8Array[]): void {
    // globalRowDeltas of compression.ts, bit for bit (tests/row_deltas_test.ts).
    this.apply.upload(this.#rowDeltas.compute(this.#workers, learningRate, scales, messages));
  }

  /**
   * The MLP's part of {@linkcode globalStep}, after {@linkcode tableStep}: writes the global
   * MLP gradient into the engine's gradient buffer (or uploads the sums its first dispatch
   * turns into it); the step.
   */
  mlpStep(scales: Float32Array, mlpSum: Float32Array | Int32Array): GpuTableStep {
    const b = this.buffers, c = { spec: b.spec, config: this.#config };
    const workers = this.#workers, onGpu = this.#mlpGradient;
    if (onGpu) {
      // Only the sums go up; the step's first dispatch writes the gradient (same bits).
      onGpu.upload(mlpSum, scales);
    } else {
      writeGlobalMlpGradient(
        gpuLayoutAccess(b.spec, b.layout, this.#host),
        c,
        workers,
        scales,
        mlpSum,
      );
      b.device.queue.writeBuffer(b.mlpGrad, 0, this.#host as Float32Array<ArrayBuffer>);
    }
    return {
      recordMlpGradient: onGpu ? (pass) => onGpu.record(pass) : undefined,
      recordTables: (pass) => this.apply.record(pass),
    };
  }

  destroy(): void {
    for (const e of this.exchanges) e.destroy();
    this.apply.destroy();
    this.#mlpGradient?.destroy();
    for (const g of this.#grads) g.destroy();
  }
}

/**
 * Where a GPU rank's exchange spends its time, ms summed over a chunk: `gpu` waits for the
 * GPU (the iteration's forward and backward passes, the compression kernels and the two
 * readbacks), `exchange` in the communicator's collectives (waiting for the other ranks
 * included), `apply` computes the global gradient on the host and uploads it; `wait` is the part
 * of `exchange` spent waiting for the other ranks at the communicator's barriers (0 where the
 * communicator cannot tell).
 */
export interface GpuExchangeTiming {
  gpu: number;
  exchange: number;
  apply: number;
  wait: number;
}

/** What a GPU rank's chunk returns: {@linkcode SimulatedChunkResult} and its timing. */
export interface GpuRankChunkResult extends SimulatedChunkResult {
  timing: GpuExchangeTiming;
}

/** One rank of real data parallelism on a GPU engine, exchanging through `comm`. */
export class GpuRankExchange implements GpuExchange {
  readonly comm: Communicator;
  readonly config: Compression;
  #learningRate = 0;
  #parts: GpuReplicaParts | null = null;
  #bytes: ByteCount = byteCount(0, 0, 0);
  #mlpSum: Int32Array | null = null;
  #timing: GpuExchangeTiming = { gpu: 0, exchange: 0, apply: 0, wait: 0 };
  readonly #residuals: GpuResiduals;

  readonly #readback: GpuReadback;

  /** A rank's exchange; `readback` as `GpuGradientExchange`'s. */
  constructor(
    comm: Communicator,
    compression: Partial<Compression>,
    readback: GpuReadback = DEFAULT_GPU_READBACK,
  ) {
    this.#readback = readback;
    this.comm = comm;
    this.config = CompressionSchema.parse(compression);
    this.#residuals = new GpuResiduals(this.config);
  }

  /** Trains `chunk` on `engine` (a GPU engine), exchanging after every backward pass. */
  async trainChunk(
    engine: Engine,
    chunk: BatchChunk,
    learningRate: number,
  ): Promise<GpuRankChunkResult> {
    this.#learningRate = learningRate;
    this.#bytes = byteCount(0, 0, 0);
    this.#timing = { gpu: 0, exchange: 0, apply: 0, wait: 0 };
    const r = await gpuDataParallelHooks(engine).trainChunk(chunk, { learningRate }, this);
    return {
      ...r,
      bytesPerIteration: meanBytesPerIteration([this.#bytes], r.iterations),
      timing: this.#timing,
    };
  }

  prepare(buffers: GpuReplicaBuffers, entries: number): void {
    if (this.#parts?.fits(buffers, entries)) return;
    this.#parts?.destroy();
    this.#parts = new GpuReplicaParts(
      buffers,
      this.config,
      entries,
      this.comm.size,
      null,
      this.#readback,
      this.#residuals.of(buffers, 1),
    );
    const n = this.#parts.exchanges[0].mlpValues;
    this.#mlpSum = new Int32Array(n);
  }

  async step(i: number): Promise<GpuTableStep> {
    const parts = this.#parts!, gpu = parts.exchanges[0], comm = this.comm, t = this.#timing;
    const bind = (p: GPUComputePassEncoder) => parts.buffers.bindIteration(p, i);
    const wait0 = comm.waitMs ?? 0;
    let t0 = performance.now();
    gpu.collect(bind);
    const scales = gpu.scaleCount ? await gpu.readLocalScales() : new Float32Array(0);
    let t1 = performance.now();
    t.gpu += t1 - t0;
    if (scales.length) comm.allReduceMean(scales);
    t0 = performance.now();
    t.exchange += t0 - t1;
    // The embedding message first: where the MLP message is mapped on its own
    // (`GpuGradientExchange.messageParts`), it is exchanged and applied during the map's sleep.
    const sent = await gpu.messageParts(scales, bind);
    t1 = performance.now();
    t.gpu += t1 - t0;
    const messages = comm.allGather(sent.embedding);
    t0 = performance.now();
    t.exchange += t0 - t1;
    parts.tableStep(this.#learningRate, scales, messages);
    t1 = performance.now();
    t.apply += t1 - t0;
    const mlp = await sent.mlp;
    t0 = performance.now();
    t.gpu += t0 - t1;
    const sums = this.#mlpSum!;
    let mlpSum: Float32Array | Int32Array;
    if (mlp instanceof Float32Array) {
      // The FP32 message is this iteration's own array: summed in place, not copied first.
      comm.allReduceSum(mlp);
      mlpSum = mlp;
    } else {
      comm.allReduceSumWiden(mlp, sums);
      mlpSum = sums;
    }
    t1 = performance.now();
    t.exchange += t1 - t0;
    t.wait += (comm.waitMs ?? 0) - wait0;
    addBytesDivided(this.#bytes, bytesOf(scales.length, { mlp, embedding: sent.embedding }), 1);
    const step = parts.mlpStep(scales, mlpSum);
    t.apply += performance.now() - t1;
    return step;
  }

  finish(): void {}

  /** Frees the GPU objects (before the engine is disposed). */
  destroy(): void {
    this.#parts?.destroy();
    this.#parts = null;
    this.#residuals.destroy();
  }
}

/**
 * K workers simulated on one GPU engine: the model of K GPU ranks, bit for bit (QAT's scale
 * period counts global steps, as on the ranks; see `simulated.ts`).
 */
export class SimulatedGpuDataParallel implements GpuExchange {
  readonly workers: number;
  readonly config: Compression;
  readonly #engine: Engine;
  #learningRate = 0;
  #parts: GpuReplicaParts | null = null;
  #bytes: ByteCount = byteCount(0, 0, 0);
  /** The shared scales and the MLP message sum of a step, reused (the sum is ~2 MB). */
  #sums: { scales: Float32Array; mlp: Float32Array | Int32Array } | null = null;
  readonly #residuals: GpuResiduals;

  readonly #readback: GpuReadback;

  /** K workers on `engine`; `readback` as `GpuGradientExchange`'s. */
  constructor(
    engine: Engine,
    workers: number,
    compression: Partial<Compression> = {},
    readback: GpuReadback = DEFAULT_GPU_READBACK,
  ) {
    this.#readback = readback;
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(`Expected a positive integer of workers but found ${workers}`);
    }
    this.#engine = engine;
    this.workers = workers;
    this.config = CompressionSchema.parse(compression);
    this.#residuals = new GpuResiduals(this.config);
  }

  /**
   * Trains on every full global batch of `chunk` (its `batchSize`, a multiple of the workers):
   * one step per global batch; losses are the mean of the workers'.
   */
  async trainChunk(
    chunk: BatchChunk,
    options: { learningRate: number },
  ): Promise<SimulatedChunkResult> {
    const K = this.workers, micro = microBatchChunk(chunk, K);
    this.#learningRate = options.learningRate;
    this.#bytes = byteCount(0, 0, 0);
    const hooks = gpuDataParallelHooks(this.#engine);
    const r = perGlobalBatch(await hooks.trainChunk(micro, options, this, K), K);
    return { ...r, bytesPerIteration: meanBytesPerIteration([this.#bytes], r.iterations) };
  }

  prepare(buffers: GpuReplicaBuffers, entries: number): void {
    if (this.#parts?.fits(buffers, entries)) return;
    this.#parts?.destroy();
    const K = this.workers;
    this.#parts = new GpuReplicaParts(
      buffers,
      this.config,
      entries,
      K,
      K,
      this.#readback,
      this.#residuals.of(buffers, K),
    );
    // The sizes depend on the model only, so rebuilt parts keep the sums already made.
    const e = this.#parts.exchanges[0], n = e.mlpValues;
    if (this.#sums?.scales.length !== e.scaleCount || this.#sums.mlp.length !== n) {
      this.#sums = {
        scales: new Float32Array(e.scaleCount),
        // The MLP messages are FP32 without quantization, else INT8/INT16 summed in INT32.
        mlp: this.config.mlpBits === null ? new Float32Array(n) : new Int32Array(n),
      };
    }
  }

  async step(i: number): Promise<GpuTableStep | null> {
    const K = this.workers, parts = this.#parts!, k = i % K;
    const bind = (j: number) => (p: GPUComputePassEncoder) => parts.buffers.bindIteration(p, j);
    // Worker k keeps its own copy of the MLP gradients; its row sums stay in its buffers.
    parts.exchanges[k].collect(bind(i), parts.buffers.mlpGrad);
    if (k < K - 1) return null;
    const local: Float32Array[] = [];
    for (const e of parts.exchanges) local.push(await e.readLocalScales());
    const { scales, mlp: mlpSum } = this.#sums!;
    if (scales.length) {
      sumInOrder(local, scales);
      for (let j = 0; j < scales.length; j++) scales[j] /= K;
    }
    const sent: GpuMessages[] = [];
    for (const [j, e] of parts.exchanges.entries()) {
      sent.push(await e.messages(scales, bind(i - (K - 1) + j)));
    }
    // sumInOrder overwrites every element, so the reused sum needs no clearing.
    sumInOrder(sent.map((m) => m.mlp) as (Float32Array | Int8Array | Int16Array)[], mlpSum);
    for (const m of sent) addBytesDivided(this.#bytes, bytesOf(scales.length, m), K);
    const messages = sent.map((m) => m.embedding);
    return parts.globalStep(this.#learningRate, scales, mlpSum, messages);
  }

  finish(): void {}

  /** Frees the GPU objects (before the engine is disposed). */
  destroy(): void {
    this.#parts?.destroy();
    this.#parts = null;
    this.#residuals.destroy();
  }
}

/**
 * A GPU replica of real data parallelism: a GPU engine (on GPU `gpuIndex`, default the Open MPI
 * local rank's, else the default adapter) and its {@linkcode GpuRankExchange}, with the
 * interface of the CPU's `DataParallelReplica`.
 */
export class GpuReplica {
  readonly engine: Engine;
  readonly #exchange: GpuRankExchange;

  private constructor(engine: Engine, exchange: GpuRankExchange) {
    this.engine = engine;
    this.#exchange = exchange;
  }

  /** A replica on this rank of `comm`, initialised as every other rank's (same seed). */
  static async create(comm: Communicator, o: {
    spec: ModelSpec;
    localBatch: number;
    seed: number;
    compression: Partial<Compression>;
    gpuIndex?: number;
    readback?: GpuReadback;
  }): Promise<GpuReplica> {
    const engine = await createGpuEngine({
      spec: o.spec,
      maxBatch: o.localBatch,
      seed: o.seed,
      gpuIndex: o.gpuIndex,
    });
    return new GpuReplica(engine, new GpuRankExchange(comm, o.compression, o.readback));
  }

  /** Trains on this rank's slice of every full global batch of `chunk`. */
  async trainChunk(chunk: BatchChunk, learningRate: number) {
    const comm = this.#exchange.comm, sent0 = comm.bytesSent;
    const local = sliceChunk(chunk, comm.rank, comm.size);
    const result = await this.#exchange.trainChunk(this.engine, local, learningRate);
    const bytes = bytesTimes(result.bytesPerIteration, result.iterations);
    return { result, bytes, bytesSent: comm.bytesSent - sent0 };
  }

  /** The checksum of this replica's parameters (`replicas.ts`), read from the GPU. */
  async checksum(): Promise<string> {
    return paramsChecksum(await this.engine.readParams());
  }

  /** Frees the exchange and the engine. */
  async dispose(): Promise<void> {
    this.#exchange.destroy();
    await this.engine.dispose();
  }
}
