/**
 * The Terabyte suite: the paper's Criteo Terabyte DLRM (d = 64, bottom 13-512-256-64, top
 * 415-512-512-256-1, the 26 tables of max-ind-range 10M, 12.58 GB in FP32), batch 2048, SGD at
 * 0.1, DQRM's scale period 1000.
 *
 * Default scale: tables scaled by 0.1 (1.26 GB; each run allocates and initialises its own, so
 * the ten runs of Table 3 finish within 10 minutes on 2 cores), 100 iterations (204,800
 * synthetic samples) per epoch, 300 s per run. `--scale 1` trains the paper's full 12.58 GB
 * tables (about 13 GB of memory; HAWQ's second copy then does not fit in 24 GB and is recorded
 * as could-not-finish, as in the paper). The paper's scale (`paperScale`): the full tables and
 * 5 epochs of about 3.96 billion sub-sampled training samples.
 *
 * @module
 */
import { defineSuite } from "../suite.ts";

/** Training samples per epoch of the paper's Criteo Terabyte data (days 0–22, sub-sampled). */
export const TERABYTE_PAPER_TRAIN_SAMPLES = 3_958_000_000;

/** The Terabyte suite. */
export const terabyteSuite = defineSuite({
  name: "terabyte",
  description: "DLRM on Criteo Terabyte's architecture (synthetic Criteo-shaped data by default)",
  at: (paper) => ({
    base: {
      arch: "terabyte",
      tableScale: paper ? 1 : 0.1,
      engine: "cpu",
      threads: 0,
      // Bit-for-bit reproducible on every machine (BLAS results depend on its CPU kernels).
      cpuKernels: "wasm",
      batchSize: 2048,
      // The paper's scripts score the test set in batches of 16384 (reference-study.md).
      testBatchSize: paper ? 16_384 : 2048,
      learningRate: 0.1,
      epochs: paper ? 5 : 1,
      trainSamples: paper ? TERABYTE_PAPER_TRAIN_SAMPLES : 100 * 2048,
      testSamples: paper ? 10_000_000 : 32_768,
      evalEvery: paper ? 10_240 : 50,
      chunkIterations: 20,
      warmupIterations: 5,
      seed: 1,
      data: { kind: "synthetic", clickRate: 0.25 },
      budget: { seconds: paper ? 30 * 86_400 : 300, memoryBytes: 0 },
    },
    experiments: {
      period: 1000,
      periods: [1, 200, 500, 1000],
      table8Epochs: 2,
      table9Epochs: paper ? 20 : 3,
      workerCounts: [2, 4, 8],
      table4Iterations: paper ? 1_000 : 100,
      table6: paper ? undefined : { trainSamples: 100 * 2048, evalEvery: 50 },
    },
  }),
});
