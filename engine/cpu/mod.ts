/**
 * The CPU engine.
 *
 * @module
 */
export {
  type CpuDataParallelHooks,
  cpuDataParallelHooks,
  type CpuEngineOptions,
  type CpuGradientAccess,
  cpuPredictPhases,
  createCpuEngine,
  type PredictPhaseMs,
} from "./cpu_engine.ts";
export { cpuModel, cpuVectorExtensions, peakRssBytes } from "../environment.ts";
export {
  BLAS_LIBRARY_ENV,
  blasAvailable,
  CPU_KERNEL_CHOICES,
  type CpuKernelChoice,
  DEFAULT_BLAS_LIBRARIES,
} from "./blas_library.ts";
export { NonFiniteLossError } from "../engine.ts";
