/**
 * `deno task bench:interaction [--batch-size LIST] [--out FILE]`: the WebGPU engine's dot
 * interaction kernels (forward T -> R and backward dR -> dT), each variant of
 * `engine/gpu/interaction_plan.ts` (tiled: the engine's choice; staged; global) timed in one run on
 * this machine's GPU for the Kaggle (27 vectors of 16 floats) and Terabyte (27 of 64) shapes, with
 * their outputs compared word for word with the tiled kernels' (every variant sums in the same
 * order) and each time beside its memory floor (the bytes it must move at the streaming copy's
 * bandwidth, measured in the same run).
 *
 * @module
 */
import { writeFileAtomic } from "../record/files.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { type InteractionMode, planInteraction } from "../engine/gpu/interaction_plan.ts";
import { interactionStages } from "../engine/gpu/kernels/interaction_forward.ts";
import { Rng } from "../engine/rng.ts";
import { fmaWarmUp, measureFmaPeak, settleClock, timePasses, type WarmUp } from "./gemm_sweep.ts";
import { summarize } from "../record/stats.ts";
import { measureStreamCopy } from "./stream_copy.ts";
import { batchSizesFlag } from "./gpu_methods.ts";
import { defineCli, FLAGS, intFlag, parseCli, runMain } from "./args.ts";

const CLI = defineCli({
  usage: "deno task bench:interaction [options]",
  description:
    `Times the WebGPU engine's interaction kernels (forward and backward; tiled, staged and
global) for the Kaggle and Terabyte shapes at each batch size, checks that every variant's output
equals the tiled kernels' word for word, and prints each beside its memory floor. Writes JSON with
--out.`,
  options: {
    "batch-size": { ...FLAGS["batch-size"], arg: "LIST", default: "2048,16384" },
    reps: { type: "string", arg: "N", help: "dispatches per timed pass", default: "20" },
    out: FLAGS.out,
  },
  positionals: false,
});

/** One kernel's timing. */
interface Row {
  model: string;
  vectors: number;
  width: number;
  batch: number;
  direction: "forward" | "backward";
  /** The plan's mode. */
  mode: InteractionMode;
  us: number;
  floorUs: number;
  /** Whether its output equals the tiled kernel's word for word. */
  identical: boolean;
}

const SHAPES = [
  { model: "kaggle", f: 27, d: 16 },
  { model: "terabyte", f: 27, d: 64 },
];

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values } = parsed;
  const batches = batchSizesFlag(values["batch-size"], "2048,16384");
  const reps = intFlag("reps", values.reps, 1) ?? 20;
  const h = await KernelHarness.create();
  const rows: Row[] = [];
  try {
    h.setIterations([{ s0: 0, rows: 1 }]);
    const warmUp: WarmUp | undefined = h.software
      ? undefined
      : fmaWarmUp(h, await measureFmaPeak(h));
    const copyGBs = (await measureStreamCopy()).gbs;
    console.log(`GPU: ${h.description}; streaming copy ${copyGBs.toFixed(0)} GB/s moved`);
    console.log("model     batch  kernel    mode          µs  floor µs  × floor  output");
    const rng = new Rng(7, 1);
    for (const { model, f, d } of SHAPES) {
      for (const batch of batches) {
        const pairs = (f * (f - 1)) / 2, ldt = f * d, ldr = Math.ceil((d + pairs) / 4) * 4;
        h.setIterations([{ s0: 0, rows: batch }]);
        const uniform = h.uniform([f, d, ldt, ldr]);
        // T as ReLU leaves it: zeros (both signs) among the values.
        const t = Float32Array.from(
          { length: batch * ldt },
          (_, i) => i % 7 === 0 ? (i % 2 ? 0 : -0) : rng.next() - 0.5,
        );
        const dr = Float32Array.from({ length: batch * ldr }, () => rng.next() - 0.5);
        const tBuffer = h.storage(t), drBuffer = h.storage(dr);
        const modes: InteractionMode[] = ["tiled", "global"];
        if (interactionStages(f, d)) modes.splice(1, 0, "staged");
        for (const backward of [false, true]) {
          const floats = backward ? batch * ldt : batch * ldr;
          const moved = 4 * batch * (backward ? 2 * ldt + ldr : ldt + ldr);
          let reference: Uint32Array | null = null;
          const variants = modes.map((mode) => {
            const plan = planInteraction(f, d, ldr, mode);
            return backward
              ? { mode, source: plan.backward, x: plan.backwardX, samples: plan.backwardSamples }
              : { mode, source: plan.forward, x: plan.forwardX, samples: plan.forwardSamples };
          });
          for (const { mode, source, x, samples } of variants) {
            const out = h.storage(new Float32Array(floats).fill(123));
            const kernel = backward
              ? h.bind(source, [uniform, tBuffer, drBuffer, out])
              : h.bind(source, [uniform, tBuffer, out]);
            const record = (pass: GPUComputePassEncoder) =>
              h.dispatch(pass, kernel, x, Math.ceil(batch / samples));
            const got = new Uint32Array((await runAndRead(h, record, out, floats)).buffer);
            reference ??= got;
            const identical = got.every((w, i) => w === reference![i]);
            if (warmUp) await settleClock(h, warmUp, 20);
            const times: number[] = [];
            for (let r = 0; r < 3; r++) {
              times.push((await timePasses(h, [{ reps, record }], warmUp))[0]);
            }
            const us = summarize(times).median;
            const floorUs = moved / (copyGBs * 1e3);
            const direction = backward ? "backward" : "forward";
            rows.push({
              model,
              vectors: f,
              width: d,
              batch,
              direction,
              mode,
              us,
              floorUs,
              identical,
            });
            console.log(
              `${model.padEnd(8)} ${String(batch).padStart(6)}  ${direction.padEnd(8)}  ${
                mode.padEnd(7)
              } ${us.toFixed(1).padStart(9)} ${floorUs.toFixed(1).padStart(9)} ${
                (us / floorUs).toFixed(1).padStart(8)
              }  ${identical ? "identical" : "DIFFERS"}`,
            );
            out.destroy();
          }
        }
        tBuffer.destroy();
        drBuffer.destroy();
      }
    }
  } finally {
    h.destroy();
  }
  if (values.out) {
    await writeFileAtomic(values.out, JSON.stringify({ device: h.description, rows }, null, 2));
  }
  return rows.every((r) => r.identical) ? 0 : 1;
}

/** Runs `record` once and reads its output back. */
async function runAndRead(
  h: KernelHarness,
  record: (pass: GPUComputePassEncoder) => void,
  out: GPUBuffer,
  floats: number,
): Promise<Float32Array> {
  const encoder = h.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  h.useIteration(pass, 0);
  record(pass);
  pass.end();
  h.device.queue.submit([encoder.finish()]);
  return await h.read(out, floats);
}

if (import.meta.main) await runMain("bench:interaction", main);
