/**
 * `deno task bench:gpu-dp [options]`: data parallelism on GPU ranks (the paper's Table 4 on
 * GPUs): N ranks, each a Worker with its own GPU engine (`comm/gpu_ranks.ts`), gradients
 * compressed on the GPU and exchanged through shared memory every iteration, against ONE GPU
 * engine training the same global batch in the same run (the baseline of the ratio). Kaggle
 * model, synthetic Criteo data; per per-rank batch and compression preset: ms per iteration,
 * where a rank's time goes (GPU wait: forward, backward, compression and readbacks; the
 * collectives, and of them the wait for the other ranks at barriers; the host's global gradient
 * and its upload), and the bytes each worker sends per iteration beside the paper's (Table 4:
 * 2.161 GB uncompressed, 2.010 MB sparse, 0.509 MB sparse + INT8 per iteration at batch 128; 61
 * and 110 ms/it on 4 × A5000).
 *
 * @module
 */
import { writeFileAtomic } from "../record/files.ts";
import { type Compression, COMPRESSION_PRESETS } from "../comm/compression.ts";
import { GpuRanks, rankGpuIndex } from "../comm/gpu_ranks.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { kaggleSpec } from "../engine/spec.ts";
import {
  choiceFlag,
  defineCli,
  FLAGS,
  intFlag,
  intList,
  numberFlag,
  parseCli,
  runMain,
} from "./args.ts";
import { GPU_DP_FLAGS, gpuDpLists, READBACKS } from "./gpu_dp_flags.ts";

const CLI = defineCli({
  usage: "deno task bench:gpu-dp [options]",
  description:
    `Times N GPU ranks (Workers, one GPU engine each, gradients compressed on the GPU and exchanged
every iteration) against one GPU engine at the same global batch, on the Kaggle model and
synthetic data; prints ms per iteration, the rank's time by part and the bytes per worker.`,
  options: {
    ranks: { type: "string", arg: "N", help: "GPU ranks", default: "2" },
    ...GPU_DP_FLAGS,
    iterations: { ...FLAGS.iterations, help: "timed iterations per case", default: "20" },
    scale: { ...FLAGS.scale, help: "table scale of the Kaggle model, in (0, 1]", default: "1" },
    gpus: {
      type: "string",
      arg: "LIST",
      help: "GPU index of each rank, comma-separated (a shorter list repeats its last)",
      default: "every rank on the default adapter",
    },
    out: { ...FLAGS.out, help: "write the results as JSON" },
  },
  positionals: false,
});

/** One measured case. */
interface Row {
  ranks: number;
  batch: number;
  compression: string;
  /** One GPU engine at the global batch: ms per iteration. */
  oneEngineMs: number;
  /** N ranks: ms per iteration (rank 0's wall time). */
  ranksMs: number;
  /** Samples per second of the ranks over those of one engine. */
  speedup: number;
  /** Rank 0's ms per iteration by part. */
  gpuWaitMs: number;
  exchangeMs: number;
  /** Of `exchangeMs`, waiting for the other ranks at the communicator's barriers. */
  waitMs: number;
  applyMs: number;
  /** Bytes a worker sends per iteration. */
  bytesPerWorker: number;
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI, Deno.args);
  if (!parsed) return 0;
  const { values } = parsed;
  const ranks = intFlag("ranks", values.ranks, 1) ?? 2;
  const { batches, presets } = gpuDpLists(values);
  const iterations = intFlag("iterations", values.iterations) ?? 20;
  const scale = numberFlag("scale", values.scale, 0, 1) ?? 1;
  const gpuIndex = rankGpuIndex(
    values.gpus === undefined ? null : intList("gpus", values.gpus, 0),
  );
  const readback = choiceFlag("readback", values.readback, READBACKS) ?? "auto";
  const spec = kaggleSpec(scale);
  const data = new SyntheticCriteo(spec, { seed: 1 });
  const rows: Row[] = [];
  const learningRate = 0.01;
  console.log(
    "ranks  batch/rank  compression     1 engine ms  ranks ms  ×samples/s  gpu wait  exchange" +
      " (of it waiting)  apply  bytes/worker",
  );
  let devices: string[] = [];
  for (const batch of batches) {
    const global = batch * ranks;
    const warm = allocateOneHotChunk(spec, global, global * 2);
    data.fill(warm, "train", 0);
    const timed = allocateOneHotChunk(spec, global, global * iterations);
    data.fill(timed, "train", global * 2);
    const one = await createGpuEngine({ spec, maxBatch: global, seed: 1, gpuIndex: gpuIndex?.(0) });
    let base;
    try {
      await one.trainChunk(warm, { learningRate });
      base = await one.trainChunk(timed, { learningRate });
    } finally {
      // Disposed before the ranks start, so that they do not share the GPU with it.
      await one.dispose();
    }
    const oneEngineMs = base.wallMs / base.iterations;
    for (const name of presets) {
      const compression = COMPRESSION_PRESETS[name] as Compression;
      const group = await GpuRanks.create({
        ranks,
        spec,
        batchSize: global,
        seed: 1,
        compression,
        gpuIndex,
        readback,
      });
      try {
        devices = group.devices;
        await group.trainChunk(warm, learningRate);
        const [r] = await group.trainChunk(timed, learningRate);
        const per = (ms: number) => ms / r.iterations;
        const row: Row = {
          ranks,
          batch,
          compression: name,
          oneEngineMs,
          ranksMs: per(r.wallMs),
          speedup: oneEngineMs / per(r.wallMs),
          gpuWaitMs: per(r.timing.gpu),
          exchangeMs: per(r.timing.exchange),
          waitMs: per(r.timing.wait),
          applyMs: per(r.timing.apply),
          bytesPerWorker: r.bytesPerIteration.total,
        };
        rows.push(row);
        const f = (x: number, w: number) => x.toFixed(2).padStart(w);
        console.log(
          `${String(ranks).padStart(5)}  ${String(batch).padStart(10)}  ${name.padEnd(14)} ${
            f(oneEngineMs, 12)
          } ${f(row.ranksMs, 9)} ${f(row.speedup, 11)} ${f(row.gpuWaitMs, 9)} ${
            f(row.exchangeMs, 9)
          } ${f(row.waitMs, 16)} ${f(row.applyMs, 6)}  ${
            String(Math.round(row.bytesPerWorker)).padStart(12)
          }`,
        );
      } finally {
        await group.dispose();
      }
    }
  }
  console.log(`devices: ${devices.join("; ")}; readback ${readback}`);
  if (values.out) {
    const json = { devices, scale, iterations, learningRate, readback, rows };
    await writeFileAtomic(values.out, JSON.stringify(json, null, 2) + "\n");
    console.log(`wrote ${values.out}`);
  }
  return 0;
}

if (import.meta.main) runMain("bench_gpu_dp", main);
