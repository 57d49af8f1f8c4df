/**
 * dqrm-bench: train, quantize and benchmark DLRM recommendation models.
 *
 * The public API, folder by folder: the engine interface, model specs, batches, metrics and
 * model files (`engine/`); the CPU engine (`createCpuEngine`) and the WebGPU engine
 * (`createGpuEngine`); synthetic data and the Criteo pipeline (`data/`, `data/criteo/`); the run
 * contract: config and result schemas, result files, statistics (`record/`); data parallelism:
 * communicators, gradient compression, replicas, byte accounting (`comm/`); the suites and the
 * runner (`suites/`); the HTML report and regression checks (`reports/`).
 *
 * @example Train the Kaggle DLRM on the CPU engine for a few batches of synthetic data
 * ```ts
 * import { allocateOneHotChunk, createCpuEngine, kaggleSpec, SyntheticCriteo } from "./mod.ts";
 *
 * const spec = kaggleSpec(0.001);
 * const engine = await createCpuEngine({ spec, maxBatch: 128, seed: 1 });
 * const chunk = allocateOneHotChunk(spec, 128, 128 * 10, true);
 * new SyntheticCriteo(spec, { seed: 1 }).fill(chunk, "train", 0);
 * const result = await engine.trainChunk(chunk, { learningRate: 0.1 });
 * console.log(result.loss);
 * await engine.dispose();
 * ```
 *
 * @module
 */
export * from "./engine/mod.ts";
export * from "./engine/cpu/mod.ts";
export * from "./engine/gpu/mod.ts";
export * from "./data/mod.ts";
export * from "./data/criteo/mod.ts";
export * from "./record/mod.ts";
export * from "./comm/mod.ts";
export * from "./suites/mod.ts";
export * from "./reports/mod.ts";
