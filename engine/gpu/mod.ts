/**
 * The WebGPU engine.
 *
 * @module
 */
export { createGpuEngine, type GpuEngineOptions } from "./gpu_engine.ts";
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
