/**
 * Data-parallel training across MPI ranks: each process is one rank holding a
 * {@linkcode DataParallelReplica} (a single-threaded CPU engine) or a {@linkcode GpuReplica} (a
 * GPU engine, gradients compressed on the GPU) and trains the same global
 * batches of synthetic data, its contiguous slice of each, exactly as the in-process
 * `DataParallelTrainer` splits them; gradients go through an {@linkcode MpiCommunicator}.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import type { CpuKernelChoice } from "../engine/cpu/mod.ts";
import { describeEnvironment, type Environment } from "../engine/environment.ts";
import type { Params } from "../engine/params.ts";
import { PHASES } from "../engine/phases.ts";
import { archSpec, type ModelSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import type { CompressionPresetName } from "../record/presets.ts";
import { upperMedian } from "../record/stats.ts";
import { meanBytesPerIteration } from "../comm/accounting.ts";
import { meanWorkerLoss } from "../comm/chunk.ts";
import { type ByteCount, type Compression, COMPRESSION_PRESETS } from "../comm/compression.ts";
import { gatherJson, type MpiCommunicator } from "../comm/mpi/communicator.ts";
import { GpuReplica } from "../comm/gpu_replica.ts";
import { DataParallelReplica } from "../comm/replica.ts";

/** Architectures the MPI runner trains (or any spec given as {@linkcode MpiTrainConfig.spec}). */
export const MPI_ARCHS = ["kaggle", "terabyte"] as const;
/** One of {@linkcode MPI_ARCHS}. */
export type MpiArch = typeof MPI_ARCHS[number];

/** Settings of one MPI training run (the same on every rank). */
export interface MpiTrainConfig {
  arch: MpiArch;
  tableScale: number;
  /** Global batch (a multiple of the number of ranks). */
  batch: number;
  iterations: number;
  preset: CompressionPresetName;
  seed: number;
  learningRate: number;
  /** A model to train instead of `arch`'s (`arch` and `tableScale` are then not used). */
  spec?: ModelSpec;
  /** The replicas' engine (default cpu): a GPU engine per rank (`comm/gpu_replica.ts`). */
  engine?: "cpu" | "gpu";
  /** With engine gpu: this rank's GPU (default: its Open MPI local rank). */
  gpuIndex?: number;
  /**
   * With engine cpu: every rank's matrix kernels as asked for (default `wasm`; see
   * `engine/cpu/blas.ts`); the kernels that ran are in the result's environment.
   */
  cpuKernels?: CpuKernelChoice;
}

/** What rank 0 reports. */
export interface MpiTrainResult {
  tool: "mpi_train";
  ranks: number;
  config: MpiTrainConfig;
  spec: ModelSpec;
  compression: Compression;
  /**
   * Rank 0's machine and engine; on the CPU its engine details say which matrix kernels ran
   * (`cpuKernels`, `kernels`: the same on every rank, or the run fails before training).
   */
  environment: Environment;
  /** Training loss of each iteration: the mean of the ranks' local losses. */
  losses: number[];
  /** Rank 0's parameter checksum. */
  checksum: string;
  /** Every rank's parameter checksum, by rank (gathered after training). */
  replicaChecksums: string[];
  /** Whether every replica is bit-identical. */
  replicasAgree: boolean;
  /** Bytes a rank sends per iteration, by part (mean over ranks and iterations). */
  bytesPerIteration: ByteCount;
  /** Payload bytes each rank's communicator sent during training, by rank. */
  bytesSent: number[];
  /** Milliseconds of gradient exchange (the communication phase), total per rank, by rank. */
  communicationMs: number[];
  /** Rank 0's median milliseconds of each phase per iteration. */
  medianPhaseMs: Record<string, number>;
  /** Wall-clock milliseconds of training, rank 0 (from a barrier before to one after). */
  wallMs: number;
  /** Global samples per second. */
  samplesPerS: number;
  /** Rank 0's parameters, when asked for. */
  params?: Params;
}

interface RankReport {
  loss: number[];
  bytes: ByteCount;
  bytesSent: number;
  communicationMs: number;
  checksum: string;
}

/**
 * Trains on every rank of `comm` (every rank calls it with the same config) and returns the
 * result on rank 0 (`undefined` on the others). The caller finalises MPI.
 */
export async function trainOnMpiRanks(
  comm: MpiCommunicator,
  config: MpiTrainConfig,
  includeParams = false,
): Promise<MpiTrainResult | undefined> {
  if (config.batch % comm.size !== 0) {
    throw new RangeError(
      `Expected the global batch ${config.batch} to be a multiple of ${comm.size} ranks`,
    );
  }
  const spec = config.spec ?? archSpec(config.arch, config.tableScale);
  const compression = { ...COMPRESSION_PRESETS[config.preset] };
  const chunk = allocateOneHotChunk(spec, config.batch, config.batch * config.iterations);
  new SyntheticCriteo(spec, { seed: config.seed }).fill(chunk, "train", 0);
  const options = { spec, localBatch: config.batch / comm.size, seed: config.seed, compression };
  const replica = config.engine === "gpu"
    ? await GpuReplica.create(comm, { ...options, gpuIndex: config.gpuIndex })
    : await DataParallelReplica.create(comm, {
      ...options,
      quantization: null,
      kernels: config.cpuKernels,
    });
  try {
    if (config.engine !== "gpu") checkSameKernels(comm, replica.engine.info.details);
    comm.barrier();
    const t0 = performance.now();
    const r = await replica.trainChunk(chunk, config.learningRate);
    comm.barrier();
    const wallMs = performance.now() - t0;
    const mine: RankReport = {
      loss: Array.from(r.result.loss),
      bytes: r.bytes,
      bytesSent: r.bytesSent,
      communicationMs: r.result.phases.communication.reduce((a, b) => a + b, 0),
      checksum: await replica.checksum(),
    };
    const all = gatherJson(comm, mine);
    if (comm.rank !== 0) return undefined;
    const iterations = r.result.iterations;
    // The mean of the ranks' losses, as DataParallelTrainer takes it.
    const loss = meanWorkerLoss(all.map((a) => a.loss), iterations);
    const bytes = meanBytesPerIteration(all.map((a) => a.bytes), iterations);
    const checksums = all.map((a) => a.checksum);
    return {
      tool: "mpi_train",
      ranks: comm.size,
      config,
      spec,
      compression,
      environment: describeEnvironment(replica.engine.info),
      losses: Array.from(loss),
      checksum: checksums[0],
      replicaChecksums: checksums,
      replicasAgree: checksums.every((c) => c === checksums[0]),
      bytesPerIteration: bytes,
      bytesSent: all.map((a) => a.bytesSent),
      communicationMs: all.map((a) => +a.communicationMs.toFixed(3)),
      medianPhaseMs: Object.fromEntries(
        PHASES.map((p) => {
          const ms = r.result.phases[p];
          return [p, ms.length ? +upperMedian(ms).toFixed(3) : 0];
        }),
      ),
      wallMs: +wallMs.toFixed(3),
      samplesPerS: +((iterations * config.batch) / (wallMs / 1000)).toFixed(1),
      ...(includeParams ? { params: await replica.engine.readParams() } : {}),
    };
  } finally {
    await replica.dispose();
  }
}

/**
 * Throws on every rank (before any training collective) unless every rank's engine runs the same
 * matrix kernels (`details.kernels`: the path, and for BLAS the library and its kernel set): with
 * `auto` a rank without the library takes the WebAssembly path, and OpenBLAS picks its kernels per
 * CPU family; either way that rank's sums, and so its replica, would drift from the others.
 */
function checkSameKernels(comm: MpiCommunicator, details: Record<string, unknown>): void {
  const all = gatherJson(comm, String(details.kernels));
  if (all.some((k) => k !== all[0])) {
    throw new Error(
      `Expected every rank to run the same matrix kernels but found ${
        all.map((k, r) => `rank ${r}: ${k}`).join("; ")
      } (--cpu-kernels wasm runs the same kernels on every machine)`,
    );
  }
}
