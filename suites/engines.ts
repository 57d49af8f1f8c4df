/**
 * The one place that turns a run's configuration into the engine it trains on: the table of
 * engine kinds (CPU, WebGPU, data-parallel replicas), what a run records as its device when its
 * engine could not be built, and what trains its chunks (the engine itself, or simulated
 * data-parallel workers over it). Nothing else in the suites branches on the engine's name.
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";
import { cpuModel, createCpuEngine } from "../engine/cpu/mod.ts";
import type { Engine, EngineInfo, TrainChunkResult, TrainOptions } from "../engine/engine.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { COMPRESSION_PRESETS } from "../comm/compression.ts";
import { DataParallelEngine } from "../comm/dp_engine.ts";
import { rankGpuIndex } from "../comm/gpu_ranks.ts";
import { GpuRanksEngine } from "../comm/gpu_ranks_engine.ts";
import { SimulatedGpuDataParallel } from "../comm/gpu_replica.ts";
import { SimulatedDataParallel } from "../comm/simulated.ts";
import type { RunConfig } from "../record/schema.ts";

/**
 * The kinds of engine a run trains on: its `engine`, or real data-parallel replicas (CPU
 * engines, or GPU ranks).
 */
export type EngineKind = RunConfig["engine"] | "data-parallel" | "gpu-ranks";

/** Where an engine runs, beyond its configuration. */
export interface EnginePlacement {
  /**
   * GPU index of each GPU rank (`rankGpuIndex`: a shorter list repeats its last; default: the
   * default adapter).
   */
  rankGpus?: readonly number[];
}

/** How one kind of engine is built. */
interface EngineBuilder {
  /** Builds the engine of `config` for `spec`. */
  create(config: RunConfig, spec: ModelSpec, placement: EnginePlacement): Promise<Engine>;
  /** The engine a run records when it never got one (over its memory budget, no device). */
  planned(config: RunConfig): EngineInfo;
}

/** A CPU run that was not built: the threads it asked for (0: every core). */
function plannedCpu(config: RunConfig): EngineInfo {
  return {
    name: "cpu",
    device: cpuModel(),
    threads: config.threads || navigator.hardwareConcurrency,
    details: {},
  };
}

/** A GPU run that was not built: the adapter is only known once the engine is built. */
function plannedGpu(config: RunConfig): EngineInfo {
  return {
    name: "gpu",
    device: "WebGPU",
    threads: config.threads || navigator.hardwareConcurrency,
    details: {},
  };
}

/** Every engine kind, by name: the only switch between them. */
const ENGINE_BUILDERS: Record<EngineKind, EngineBuilder> = {
  cpu: {
    create: (config, spec) =>
      createCpuEngine({
        spec,
        maxBatch: Math.max(config.batchSize, config.testBatchSize),
        seed: config.seed,
        // Simulated data parallelism exchanges gradients between steps on one thread.
        threads: config.dataParallel ? 1 : config.threads === 0 ? undefined : config.threads,
        quantization: config.quantization,
        kernels: config.cpuKernels,
      }),
    planned: plannedCpu,
  },
  gpu: {
    create: (config, spec) =>
      createGpuEngine({
        spec,
        maxBatch: Math.max(config.batchSize, config.testBatchSize),
        seed: config.seed,
        quantization: config.quantization,
      }),
    planned: plannedGpu,
  },
  "data-parallel": {
    create: (config, spec) => {
      const dp = config.dataParallel!;
      return DataParallelEngine.create({
        spec,
        workers: dp.workers,
        maxBatch: config.batchSize,
        predictBatch: config.testBatchSize,
        seed: config.seed,
        quantization: config.quantization,
        compression: COMPRESSION_PRESETS[dp.compression],
        kernels: config.cpuKernels,
      });
    },
    planned: plannedCpu,
  },
  "gpu-ranks": {
    create: (config, spec, placement) => {
      const dp = config.dataParallel!;
      return GpuRanksEngine.create({
        ranks: dp.workers,
        spec,
        batchSize: config.batchSize,
        predictBatch: config.testBatchSize,
        seed: config.seed,
        quantization: config.quantization,
        compression: COMPRESSION_PRESETS[dp.compression],
        gpuIndex: rankGpuIndex(placement.rankGpus),
      });
    },
    planned: plannedGpu,
  },
};

/**
 * The kind of engine `config` trains on: real replicas (CPU) and GPU ranks are engines of
 * their own, while simulated data parallelism trains on one CPU or GPU engine (see
 * {@linkcode chunkTrainerOf}).
 */
export function engineKindOf(config: RunConfig): EngineKind {
  if (config.dataParallel?.mode !== "workers") return config.engine;
  return config.engine === "gpu" ? "gpu-ranks" : "data-parallel";
}

/** Builds the engine a run trains on; rejects when it cannot (no GPU, unsupported method). */
export function createRunEngine(
  config: RunConfig,
  spec: ModelSpec,
  placement: EnginePlacement = {},
): Promise<Engine> {
  return ENGINE_BUILDERS[engineKindOf(config)].create(config, spec, placement);
}

/** The engine a run records as its device when it never got one. */
export function plannedEngineInfo(config: RunConfig): EngineInfo {
  return ENGINE_BUILDERS[engineKindOf(config)].planned(config);
}

/** What trains a run's chunks: its engine, or simulated data-parallel workers over it. */
export interface ChunkTrainer {
  /** Trains on every full batch of `chunk`, as {@linkcode Engine.trainChunk} does. */
  trainChunk(chunk: BatchChunk, options: TrainOptions): Promise<TrainChunkResult>;
  /**
   * Whether the caller may start the next chunk before the previous one settles: the engine's
   * own capability when it trains the chunks itself.
   */
  readonly overlapsChunks: boolean;
}

/**
 * What trains the chunks of `config` on `engine`. Simulated data parallelism wraps the engine:
 * its workers' micro-batches run one after another through the engine's hooks, and it does not
 * declare that chunks may overlap, so the wrapper never does.
 */
export function chunkTrainerOf(config: RunConfig, engine: Engine): ChunkTrainer {
  const dp = config.dataParallel;
  if (dp?.mode === "simulated") {
    const compression = COMPRESSION_PRESETS[dp.compression];
    const simulated = engine.info.name === "gpu"
      ? new SimulatedGpuDataParallel(engine, dp.workers, compression)
      : new SimulatedDataParallel(engine, dp.workers, compression);
    return {
      trainChunk: (chunk, options) => simulated.trainChunk(chunk, options),
      overlapsChunks: false,
    };
  }
  return {
    trainChunk: (chunk, options) => engine.trainChunk(chunk, options),
    overlapsChunks: engine.capabilities.overlapsChunks,
  };
}
