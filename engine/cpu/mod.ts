/**
 * The CPU engine.
 *
 * @module
 */
export { type CpuEngineOptions, cpuModel, createCpuEngine } from "./cpu_engine.ts";
export { NonFiniteLossError } from "./program.ts";
