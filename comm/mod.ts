/**
 * Data-parallel training: the communicators (shared memory, MPI), gradient compression, simulated
 * and real multi-worker training, and communication accounting.
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
export * from "./replica.ts";
export * from "./mpi/communicator.ts";
