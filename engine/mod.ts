/**
 * What both engines share: the model spec, parameters, batches, metrics, phases and the engine
 * interface.
 *
 * @module
 */
export * from "./spec.ts";
export * from "./params.ts";
export * from "./batch.ts";
export * from "./engine.ts";
export * from "./metrics.ts";
export * from "./phases.ts";
export * from "./rng.ts";
export * from "./golden.ts";
export * from "./environment.ts";
