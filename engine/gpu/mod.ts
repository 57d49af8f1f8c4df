/**
 * The WebGPU engine.
 *
 * @module
 */
export {
  createGpuEngine,
  gpuDataParallelHooks,
  type GpuEngineOptions,
  profileGpuStep,
} from "./gpu_engine.ts";
export type { KernelTime } from "./kernel_profile.ts";
export type {
  GpuDataParallelHooks,
  GpuExchange,
  GpuReplicaBuffers,
  GpuTableStep,
} from "./dp_train.ts";
export {
  findAdapter,
  NoGpuAdapterError,
  softwareAdapterName,
  softwareAdapterWarning,
} from "./device.ts";
export {
  GpuIndexError,
  gpuIndexSetting,
  gpuSelection,
  LOCAL_RANK_ENV,
  selectGpu,
} from "./adapter_select.ts";
export { planTables, type TablePlan, type TableSegment } from "./table_plan.ts";
