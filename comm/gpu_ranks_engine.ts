/**
 * An {@linkcode Engine} over N GPU ranks ({@linkcode GpuRanks}: Workers, one GPU engine each,
 * gradients compressed on the GPU and exchanged through shared memory every iteration): what
 * `bench --engine gpu --workers N --dp-mode workers` trains with. Training runs on every rank
 * (checked bit-identical after every chunk); prediction, parameters, tables and scales come
 * from rank 0; QAT switches and post-training quantization go to every rank.
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";
import type {
  Engine,
  EngineCapabilities,
  EngineInfo,
  StepTrace,
  TrainChunkResult,
  TrainOptions,
} from "../engine/engine.ts";
import type { Params } from "../engine/params.ts";
import { DEFAULT_GPU_READBACK } from "../engine/gpu/grad_exchange.ts";
import type { QuantConfig } from "../engine/quant.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { bytesTimes, meanBytesPerIteration } from "./accounting.ts";
import { meanWorkerLoss } from "./chunk.ts";
import { GpuRanks, type GpuRanksOptions } from "./gpu_ranks.ts";

/** N GPU ranks trained data-parallel, behind the engine interface. */
export class GpuRanksEngine implements Engine {
  readonly spec: ModelSpec;
  readonly info: EngineInfo;
  /** The ranks train one chunk at a time. */
  readonly capabilities: EngineCapabilities = { overlapsChunks: false };
  readonly quantization: QuantConfig | null;
  /** The ranks. */
  readonly ranks: GpuRanks;
  /** A request the engine interface sends without waiting (QAT switch, quantization). */
  #deferred: Promise<void> = Promise.resolve();

  private constructor(ranks: GpuRanks, o: GpuRanksOptions) {
    this.ranks = ranks;
    this.spec = o.spec;
    this.quantization = o.quantization ?? null;
    const distinct = [...new Set(ranks.devices)];
    this.info = {
      name: "gpu",
      device: distinct.join("; "),
      threads: 1,
      details: {
        dataParallelRanks: o.ranks,
        rankDevices: ranks.devices.join("; "),
        communicator: "shared memory (Workers)",
        readback: o.readback ?? DEFAULT_GPU_READBACK,
      },
    };
  }

  /** Starts the ranks (see {@linkcode GpuRanks.create}). */
  static async create(o: GpuRanksOptions): Promise<GpuRanksEngine> {
    return new GpuRanksEngine(await GpuRanks.create(o), o);
  }

  /** Waits for the requests sent without waiting; the first error throws here. */
  async #settle(): Promise<void> {
    const deferred = this.#deferred;
    this.#deferred = Promise.resolve();
    await deferred;
  }

  /**
   * Trains every rank on its slice of every global batch of `chunk`. Losses are the mean of the
   * ranks'; phases are rank 0's; bytes per iteration are a worker's (mean over the ranks).
   */
  async trainChunk(chunk: BatchChunk, options: TrainOptions): Promise<TrainChunkResult> {
    await this.#settle();
    const start = performance.now();
    const results = await this.ranks.trainChunk(chunk, options.learningRate);
    const iterations = results[0].iterations;
    const loss = meanWorkerLoss(results.map((r) => r.loss), iterations);
    const bytes = results.map((r) => bytesTimes(r.bytesPerIteration, iterations));
    return {
      iterations,
      loss,
      phases: results[0].phases,
      wallMs: performance.now() - start,
      bytesPerIteration: meanBytesPerIteration(bytes, iterations),
    };
  }

  async predict(chunk: BatchChunk): Promise<Float32Array> {
    await this.#settle();
    return this.ranks.predict(chunk);
  }

  traceStep(_chunk: BatchChunk, _options: TrainOptions): Promise<StepTrace> {
    return Promise.reject(
      new Error("Expected a single engine for traceStep but found GPU ranks"),
    );
  }

  async readTable(table: number): Promise<Float32Array> {
    await this.#settle();
    return this.ranks.readTable(table);
  }

  async readParams(): Promise<Params> {
    await this.#settle();
    return await this.ranks.rankParams(0);
  }

  setQuantizationActive(active: boolean): void {
    const before = this.#deferred;
    this.#deferred = before.then(() => this.ranks.setQuantizationActive(active));
  }

  async embeddingScales(): Promise<Float32Array> {
    await this.#settle();
    return this.ranks.embeddingScales();
  }

  async replicaChecksums(): Promise<string[]> {
    await this.#settle();
    return this.ranks.checksums();
  }

  quantizeInPlace(config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">): void {
    const before = this.#deferred;
    this.#deferred = before.then(() => this.ranks.quantizeInPlace(config));
  }

  memoryBytes(): number {
    return this.ranks.memoryBytes;
  }

  async dispose(): Promise<void> {
    await this.#settle().catch(() => {});
    await this.ranks.dispose();
  }
}
