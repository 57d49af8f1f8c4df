/**
 * Data-parallel training: the communicator, gradient compression, simulated and real
 * multi-worker training, and communication accounting.
 *
 * @module
 */
export * from "./accounting.ts";
export * from "./chunk.ts";
export * from "./communicator.ts";
export * from "./compression.ts";
export * from "./data_parallel.ts";
export * from "./replicas.ts";
export * from "./simulated.ts";
