/**
 * One data-parallel replica: a single-threaded CPU engine holding a copy of the model, joined to
 * a {@linkcode Communicator}. The in-process worker (`replica_worker.ts`) and the MPI rank runner
 * (`cli/mpi_train.ts`) both train through it, so both exchange gradients the same way.
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";
import { cpuDataParallelHooks, type CpuKernelChoice, createCpuEngine } from "../engine/cpu/mod.ts";
import type { Engine, TrainChunkResult } from "../engine/engine.ts";
import type { Params } from "../engine/params.ts";
import type { QuantConfig } from "../engine/quant.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { sliceChunk } from "./chunk.ts";
import type { Communicator } from "./communicator.ts";
import {
  type ByteCount,
  byteCount,
  type Compression,
  exchangeWithCommunicator,
  WorkerGradients,
} from "./compression.ts";
import { replicaChecksum } from "./replicas.ts";

/** Options of {@linkcode DataParallelReplica.create}. */
export interface ReplicaOptions {
  spec: ModelSpec;
  /** Samples per worker per global batch (the global batch / the group's size). */
  localBatch: number;
  /** Largest batch the replica predicts (default and at least `localBatch`). */
  maxBatch?: number;
  /** Seed of the initialisation (the same on every rank). */
  seed: number;
  /** Initial parameters instead of the seeded initialisation. */
  params?: Params;
  quantization: QuantConfig | null;
  compression: Compression;
  /** The engine's matrix kernels (default `wasm`; see `engine/cpu/blas.ts`). */
  kernels?: CpuKernelChoice;
}

/** What one replica's training of a chunk returns. */
export interface ReplicaTrainResult {
  /** This replica's result (losses of its local batches; phases of its iterations). */
  result: TrainChunkResult;
  /** Bytes this replica's messages took, summed over the chunk's iterations, by part. */
  bytes: ByteCount;
  /** Bytes the communicator actually sent over the chunk. */
  bytesSent: number;
}

/** A replica of data-parallel training on one rank of a communicator. */
export class DataParallelReplica {
  readonly comm: Communicator;
  readonly engine: Engine;
  readonly gradients: WorkerGradients;
  readonly #sums: { f32: Float32Array; i32: Int32Array };

  private constructor(comm: Communicator, engine: Engine, gradients: WorkerGradients) {
    this.comm = comm;
    this.engine = engine;
    this.gradients = gradients;
    const n = gradients.mlp.length;
    this.#sums = { f32: new Float32Array(n), i32: new Int32Array(n) };
  }

  /** Creates this rank's engine (one thread) and its gradient exchange state. */
  static async create(comm: Communicator, options: ReplicaOptions): Promise<DataParallelReplica> {
    const engine = await createCpuEngine({
      spec: options.spec,
      maxBatch: Math.max(options.localBatch, options.maxBatch ?? 0),
      seed: options.seed,
      params: options.params,
      threads: 1,
      quantization: options.quantization,
      kernels: options.kernels,
    });
    try {
      // Fails early (before any collective) on an engine data parallelism cannot drive.
      cpuDataParallelHooks(engine);
    } catch (error) {
      await engine.dispose();
      throw error;
    }
    return new DataParallelReplica(
      comm,
      engine,
      new WorkerGradients(options.spec, options.compression),
    );
  }

  /**
   * Trains on this rank's contiguous slice of every full global batch of `chunk` (the same
   * chunk on every rank), exchanging gradients after every backward pass.
   */
  async trainChunk(chunk: BatchChunk, learningRate: number): Promise<ReplicaTrainResult> {
    const comm = this.comm, state = this.gradients;
    const hooks = cpuDataParallelHooks(this.engine);
    const local = sliceChunk(chunk, comm.rank, comm.size);
    const sent0 = comm.bytesSent;
    const bytes = byteCount(0, 0, 0);
    const result = await hooks.trainChunk(local, { learningRate }, (rows, s0) => {
      exchangeWithCommunicator(
        comm,
        hooks.access,
        state,
        this.#sums,
        local,
        s0,
        rows,
        learningRate,
      );
      const b = state.bytes();
      bytes.embedding += b.embedding;
      bytes.mlp += b.mlp;
      bytes.scales += b.scales;
      bytes.total += b.total;
    });
    return { result, bytes, bytesSent: comm.bytesSent - sent0 };
  }

  /** The checksum of this replica's parameters (see {@linkcode replicaChecksum}). */
  checksum(): string {
    return replicaChecksum(cpuDataParallelHooks(this.engine).access);
  }

  /** Stops the engine. */
  async dispose(): Promise<void> {
    await this.engine.dispose();
  }
}
