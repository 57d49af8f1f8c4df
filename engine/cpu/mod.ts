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
  createCpuEngine,
} from "./cpu_engine.ts";
export { cpuModel } from "../environment.ts";
export { NonFiniteLossError } from "../engine.ts";
