/**
 * The WebGPU engine.
 *
 * @module
 */
export { createGpuEngine, type GpuEngineOptions, profileGpuStep } from "./gpu_engine.ts";
export type { KernelTime } from "./kernel_profile.ts";
export {
  findAdapter,
  NoGpuAdapterError,
  softwareAdapterName,
  softwareAdapterWarning,
} from "./device.ts";
export { planTables, type TablePlan, type TableSegment } from "./table_plan.ts";
