/**
 * The Kaggle suite: the paper's Criteo Kaggle DLRM (d = 16, bottom 13-512-256-64-16, top
 * 367-512-256-1, the full 26 Kaggle tables, 2.16 GB in FP32), batch 128, SGD at 0.1.
 *
 * The default trains one epoch of 2,560,000 synthetic samples (20,000 iterations) with the full
 * tables and finishes in about 4 minutes on 2 cores; the paper's scale is 5 epochs of the real
 * data's 39.3M training samples (`--epochs 5 --train-samples 39291958`).
 *
 * @module
 */
import type { Suite } from "../suite.ts";

/** The default Kaggle suite. */
export function kaggleSuite(): Suite {
  return {
    name: "kaggle",
    description: "DLRM on Criteo Kaggle's architecture (synthetic Criteo-shaped data by default)",
    runs: [{
      name: "fp32",
      method: "fp32",
      arch: "kaggle",
      tableScale: 1,
      engine: "cpu",
      threads: 0,
      batchSize: 128,
      testBatchSize: 4096,
      learningRate: 0.1,
      epochs: 1,
      trainSamples: 20_000 * 128,
      testSamples: 131_072,
      evalEvery: 5_000,
      chunkIterations: 250,
      warmupIterations: 50,
      seed: 1,
      data: { kind: "synthetic", clickRate: 0.25 },
    }],
  };
}
