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
  cpuModel,
  createCpuEngine,
} from "./cpu_engine.ts";
export { NonFiniteLossError } from "../engine.ts";
