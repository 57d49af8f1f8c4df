/**
 * An {@linkcode Engine} over N data-parallel replicas ({@linkcode DataParallelTrainer}): training
 * runs on every replica; prediction, parameters, tables and scales come from replica 0 (the
 * replicas are identical); QAT switches and post-training quantization go to every replica.
 * This is what `bench --workers N` trains with.
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";
import { cpuModel } from "../engine/cpu/mod.ts";
import type {
  Engine,
  EngineCapabilities,
  EngineInfo,
  StepTrace,
  TrainOptions,
} from "../engine/engine.ts";
import type { Params } from "../engine/params.ts";
import type { QuantConfig } from "../engine/quant.ts";
import type { ModelSpec } from "../engine/spec.ts";
import {
  type DataParallelChunkResult,
  type DataParallelOptions,
  DataParallelTrainer,
} from "./data_parallel.ts";

/** N single-threaded CPU replicas trained data-parallel, behind the engine interface. */
export class DataParallelEngine implements Engine {
  readonly spec: ModelSpec;
  readonly info: EngineInfo;
  /** The replicas train one chunk at a time. */
  readonly capabilities: EngineCapabilities = { overlapsChunks: false };
  readonly quantization: QuantConfig | null;
  /** The replicas. */
  readonly trainer: DataParallelTrainer;
  #scales: Float32Array;

  private constructor(trainer: DataParallelTrainer, quantization: QuantConfig | null) {
    this.trainer = trainer;
    this.spec = trainer.spec;
    this.quantization = quantization;
    this.#scales = new Float32Array(trainer.spec.tableRows.length);
    this.info = {
      name: "cpu",
      device: cpuModel(),
      threads: trainer.workers,
      details: {
        dataParallelWorkers: trainer.workers,
        threadsPerWorker: 1,
        communicator: "shared memory (Workers)",
        ...trainer.kernels,
      },
    };
  }

  /** Starts the replicas (see {@linkcode DataParallelTrainer.create}). */
  static async create(options: DataParallelOptions): Promise<DataParallelEngine> {
    const trainer = await DataParallelTrainer.create(options);
    return new DataParallelEngine(trainer, options.quantization ?? null);
  }

  async trainChunk(chunk: BatchChunk, options: TrainOptions): Promise<DataParallelChunkResult> {
    const r = await this.trainer.trainChunk(chunk, options);
    this.#scales = r.embeddingScales;
    return r;
  }

  predict(chunk: BatchChunk): Promise<Float32Array> {
    return this.trainer.predict(chunk);
  }

  traceStep(_chunk: BatchChunk, _options: TrainOptions): Promise<StepTrace> {
    return Promise.reject(
      new Error("Expected a single engine for traceStep but found data-parallel replicas"),
    );
  }

  readTable(table: number): Promise<Float32Array> {
    const tables = this.trainer.tables;
    if (!(table >= 0 && table < tables.length)) {
      return Promise.reject(
        new RangeError(`Expected a table in [0, ${tables.length}) but found ${table}`),
      );
    }
    return Promise.resolve(tables[table].slice());
  }

  readParams(): Promise<Params> {
    return this.trainer.readParams(0);
  }

  setQuantizationActive(active: boolean): void {
    // Acknowledged before the next training chunk or prediction.
    this.trainer.setQuantizationActive(active).then((s) => this.#scales = s, () => {});
  }

  embeddingScales(): Promise<Float32Array> {
    return Promise.resolve(this.#scales.slice());
  }

  replicaChecksums(): Promise<string[]> {
    return this.trainer.checksums();
  }

  quantizeInPlace(config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">): void {
    this.trainer.quantizeInPlace(config).then((s) => this.#scales = s, () => {});
  }

  memoryBytes(): number {
    return this.trainer.memoryBytes;
  }

  dispose(): Promise<void> {
    this.trainer.dispose();
    return Promise.resolve();
  }
}
