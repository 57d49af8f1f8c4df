/**
 * The flags the GPU data-parallel benchmarks share (`bench_gpu_compress.ts`, `bench_gpu_dp.ts`):
 * per-rank batch sizes and the compression presets the GPU builds, as lists.
 *
 * @module
 */
import { FLAGS, intList, UsageError } from "./args.ts";

/** The compression presets a GPU worker builds (dense gradients are the accounting baseline). */
export const GPU_PRESETS = ["sparse", "sparse-emb8", "sparse-int8", "sparse-int8-ec"] as const;

/** A preset of {@linkcode GPU_PRESETS}. */
export type GpuPreset = typeof GPU_PRESETS[number];

/** How a GPU worker reads its results back (`GpuGradientExchange`'s `readback`). */
export const READBACKS = ["auto", "map", "canvas-scales", "canvas", "split"] as const;

/** `--batch-size LIST`, `--compression LIST` and `--readback MODE`. */
export const GPU_DP_FLAGS = {
  "batch-size": {
    ...FLAGS["batch-size"],
    arg: "LIST",
    help: "per-rank batch sizes, comma-separated",
    default: "128,2048,16384",
  },
  compression: {
    ...FLAGS.compression,
    arg: "LIST",
    help: `presets, comma-separated, of ${GPU_PRESETS.join(", ")}`,
    default: "sparse,sparse-int8",
  },
  readback: {
    type: "string",
    arg: "MODE",
    help: "how results come back: map (mapAsync: Deno sleeps 10 ms after each), canvas-scales " +
      "(the scales through an OffscreenCanvas: no sleep), canvas (the messages too), split (the " +
      "MLP message mapped on its own, the embedding message through the canvas during the " +
      "map's sleep), auto (the scales and messages up to 2 MiB through the canvas, else split " +
      "where the embedding message is at most 2 MiB, else mapped)",
    default: "auto",
  },
} as const;

/** The per-rank batch sizes and presets of `--batch-size LIST` and `--compression LIST`. */
export function gpuDpLists(
  values: { "batch-size"?: string; compression?: string },
): { batches: number[]; presets: GpuPreset[] } {
  return {
    batches: intList("batch-size", values["batch-size"] ?? GPU_DP_FLAGS["batch-size"].default),
    presets: presetList(values.compression ?? GPU_DP_FLAGS.compression.default),
  };
}

/** The presets of a `--compression LIST` value. */
function presetList(value: string): GpuPreset[] {
  return value.split(",").map((s) => {
    const name = s.trim() as GpuPreset;
    if (!GPU_PRESETS.includes(name)) {
      throw new UsageError(
        `--compression expects some of ${GPU_PRESETS.join(", ")} but found '${s}'`,
      );
    }
    return name;
  });
}
