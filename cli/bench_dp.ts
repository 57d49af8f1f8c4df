/**
 * `deno task bench:dp [options]`: samples/s of ONE single-threaded CPU engine against N
 * single-threaded data-parallel workers (`DataParallelTrainer`, real replicas in Workers) at the
 * same global batch, on the Kaggle architecture (tables scaled) and synthetic data, under each
 * gradient compression asked. Rounds alternate (one engine, then the workers, per preset) so
 * that load from other processes hits both alike; the medians and their ratio are printed.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { COMPRESSION_PRESETS } from "../comm/compression.ts";
import { COMPRESSION_PRESET_NAMES as PRESETS } from "../record/presets.ts";
import { DataParallelTrainer } from "../comm/data_parallel.ts";
import { upperMedian } from "../record/stats.ts";
import {
  choiceFlag,
  CPU_KERNEL_FLAGS,
  cpuKernelsFlag,
  defineCli,
  FLAGS,
  intFlag,
  numberFlag,
  parseCli,
  runMain,
  UsageError,
} from "./args.ts";

const CLI = defineCli({
  usage: "deno task bench:dp [options]",
  description:
    `Samples/s of one single-threaded engine vs N single-threaded data-parallel workers at the same
global batch (Kaggle MLPs, tables scaled, synthetic data), alternating rounds; prints JSON
lines and the ratio per compression preset. The one engine and every worker run the matrix
kernels --cpu-kernels picks; each line's cpuKernels says which ran.`,
  options: {
    workers: { ...FLAGS.workers, default: "2" },
    "batch-size": {
      ...FLAGS["batch-size"],
      help: "global batch",
      default: "4096: compute dominates the exchange",
    },
    iterations: { ...FLAGS.iterations, help: "iterations per round", default: "8" },
    rounds: {
      type: "string",
      arg: "N",
      help: "alternating rounds",
      default: "5, after one warm-up round",
    },
    scale: { ...FLAGS.scale, default: "0.01" },
    compression: {
      ...FLAGS.compression,
      arg: "LIST",
      help: `compression presets, comma-separated: ${PRESETS.join(", ")}`,
      default: "uncompressed,sparse-int8",
    },
    ...CPU_KERNEL_FLAGS,
  },
  positionals: false,
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values } = parsed;
  const workers = intFlag("workers", values.workers, 2) ?? 2;
  const batch = intFlag("batch-size", values["batch-size"]) ?? 4096;
  const iterations = intFlag("iterations", values.iterations) ?? 8;
  const rounds = intFlag("rounds", values.rounds) ?? 5;
  const scale = numberFlag("scale", values.scale, 0, 1) ?? 0.01;
  const presets = (values.compression ?? "uncompressed,sparse-int8").split(",").map((p) =>
    choiceFlag("compression", p.trim(), PRESETS)!
  );
  const kernels = cpuKernelsFlag(values, "auto");
  if (batch % workers !== 0) {
    throw new UsageError(`--batch-size ${batch} expects a multiple of --workers ${workers}`);
  }
  const spec = kaggleSpec(scale);
  const data = new SyntheticCriteo(spec, { seed: 1 });
  const chunk = allocateOneHotChunk(spec, batch, batch * iterations, true);
  data.fill(chunk, "train", 0);
  const options = { learningRate: 0.01 };
  const one = await createCpuEngine({ spec, maxBatch: batch, seed: 1, threads: 1, kernels });
  try {
    for (const preset of presets) {
      const dp = await DataParallelTrainer.create({
        spec,
        workers,
        maxBatch: batch,
        seed: 1,
        compression: COMPRESSION_PRESETS[preset],
        kernels,
      });
      try {
        // With auto, both open the same library in this process; a mismatch is a bug.
        if (dp.kernels.cpuKernels !== one.info.details.cpuKernels) {
          throw new Error(
            `Expected the workers to run the one engine's ${one.info.details.kernels} kernels ` +
              `but found ${dp.kernels.kernels}`,
          );
        }
        const single: number[] = [], parallel: number[] = [], comm: number[] = [];
        for (let r = 0; r <= rounds; r++) {
          let t = performance.now();
          await one.trainChunk(chunk, options);
          const a = (batch * iterations) / ((performance.now() - t) / 1000);
          t = performance.now();
          const res = await dp.trainChunk(chunk, options);
          const b = (batch * iterations) / ((performance.now() - t) / 1000);
          if (r === 0) continue; // warm-up
          single.push(a);
          parallel.push(b);
          comm.push(...res.phases.communication);
        }
        await dp.checkReplicas();
        const s = upperMedian(single), p = upperMedian(parallel);
        console.log(JSON.stringify({
          preset,
          workers,
          globalBatch: batch,
          iterations,
          rounds,
          scale,
          cpuKernels: dp.kernels.cpuKernels,
          kernels: dp.kernels.kernels,
          oneWorkerSamplesPerS: Math.round(s),
          dataParallelSamplesPerS: Math.round(p),
          ratio: +(p / s).toFixed(3),
          rank0CommunicationMedianMs: +upperMedian(comm).toFixed(2),
          perRound: { one: single.map(Math.round), parallel: parallel.map(Math.round) },
        }));
      } finally {
        dp.dispose();
      }
    }
  } finally {
    await one.dispose();
  }
  return 0;
}

if (import.meta.main) await runMain("bench:dp", main);
