/**
 * The Terabyte suite: the paper's Criteo Terabyte DLRM (d = 64, bottom 13-512-256-64, top
 * 415-512-512-256-1, the 26 tables of max-ind-range 10M, 12.58 GB in FP32), batch 2048, SGD at
 * 0.1.
 *
 * The default trains 1,500 iterations (3,072,000 synthetic samples) with the full tables, which
 * needs about 13 GB of memory and finishes in under 10 minutes on 2 cores; use `--scale` to
 * shrink the tables on a smaller machine.
 *
 * @module
 */
import type { Suite } from "../suite.ts";

/** The default Terabyte suite. */
export function terabyteSuite(): Suite {
  return {
    name: "terabyte",
    description: "DLRM on Criteo Terabyte's architecture (synthetic Criteo-shaped data by default)",
    runs: [{
      name: "fp32",
      method: "fp32",
      arch: "terabyte",
      tableScale: 1,
      engine: "cpu",
      threads: 0,
      batchSize: 2048,
      testBatchSize: 2048,
      learningRate: 0.1,
      epochs: 1,
      trainSamples: 1_500 * 2048,
      testSamples: 65_536,
      evalEvery: 500,
      chunkIterations: 20,
      warmupIterations: 5,
      seed: 1,
      data: { kind: "synthetic", clickRate: 0.25 },
    }],
  };
}
