/**
 * `deno task profile:gpu`: where one training step's GPU time goes, kernel by kernel. For each
 * batch size and method, trains a few warm-up steps, then `--reps` steps with every dispatch in
 * a timestamped pass of its own (`engine/gpu/kernel_profile.ts`), and prints each kernel's median
 * GPU µs by phase, its share of the step, and the kernels that cost most. Per-kernel passes add
 * their own start and end to each figure: the sum exceeds the step's time in shared passes
 * (`bench:gpu`), so read shares and orders of magnitude, not totals.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import type { Engine } from "../engine/engine.ts";
import { createGpuEngine, type KernelTime, profileGpuStep } from "../engine/gpu/mod.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { summarize } from "../record/stats.ts";
import { writeFileAtomic } from "../record/files.ts";
import { defineCli, FLAGS, intFlag, parseCli, runMain } from "./args.ts";
import { batchSizesFlag, GPU_METHODS, methodsFlag, suiteSpecArgs } from "./gpu_methods.ts";

const CLI = defineCli({
  usage: "deno task profile:gpu [SUITE] [options]",
  description: `Times every kernel of one training step of the WebGPU engine on synthetic data, one
index per bag (each dispatch in a timestamped pass of its own): per batch size and method, the
median GPU µs of each kernel by phase and its share of the step. SUITE: kaggle (default) or
terabyte.`,
  options: {
    scale: { ...FLAGS.scale, default: "1: full tables" },
    "batch-size": { ...FLAGS["batch-size"], arg: "LIST", help: "batch sizes", default: "128" },
    methods: {
      type: "string",
      arg: "LIST",
      help: `comma-separated methods: ${Object.keys(GPU_METHODS).join(", ")}`,
      default: "fp32",
    },
    reps: { type: "string", arg: "N", help: "profiled steps (medians over them)", default: "10" },
    "warm-up-rounds": {
      type: "string",
      arg: "N",
      help: "rounds of the FMA-peak kernel run untimed before each profiled step (~0.5 s on an " +
        "H200 at 60000: a GPU idle since the readback runs at its idle clock until it has been " +
        "busy for a while), 0 on a software adapter",
      default: "60000",
    },
    top: { type: "string", arg: "N", help: "kernels listed by total cost", default: "12" },
    out: FLAGS.out,
  },
});

/** One kernel's place in a step (phase, name, occurrence) and its median time. */
interface ProfiledKernel {
  phase: string;
  kernel: string;
  occurrence: number;
  grid: [number, number, number];
  medianUs: number;
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const { suite, scale, spec } = suiteSpecArgs(positionals, values.scale);
  const batches = batchSizesFlag(values["batch-size"], "128");
  const methods = methodsFlag(values.methods, "fp32");
  const reps = intFlag("reps", values.reps) ?? 10;
  const top = intFlag("top", values.top) ?? 12;
  const warmUpRounds = intFlag("warm-up-rounds", values["warm-up-rounds"], 0) ?? 60000;
  const data = new SyntheticCriteo(spec, { seed: 1 });
  const results: { batch: number; method: string; kernels: ProfiledKernel[] }[] = [];
  for (const method of methods) {
    const engine: Engine = await createGpuEngine({
      spec,
      maxBatch: Math.max(...batches),
      seed: 1,
      quantization: GPU_METHODS[method].quant,
    });
    try {
      console.log(`GPU: ${engine.info.device}; ${suite} (scale ${scale}), method ${method}`);
      for (const batch of batches) {
        const warm = allocateOneHotChunk(spec, batch, batch * 8, true);
        data.fill(warm, "train", 0);
        await engine.trainChunk(warm, { learningRate: 0.01 });
        const steps: KernelTime[][] = [];
        const one = allocateOneHotChunk(spec, batch, batch, true);
        for (let r = 0; r < reps; r++) {
          data.fill(one, "train", (r + 8) * batch);
          const software = engine.info.details?.softwareAdapter === true;
          const rounds = software ? 0 : warmUpRounds;
          const times = await profileGpuStep(engine, one, { learningRate: 0.01 }, rounds);
          if (!times) {
            console.log("the adapter has no timestamp queries: nothing to profile");
            return 1;
          }
          steps.push(times);
        }
        const kernels = medians(steps);
        results.push({ batch, method, kernels });
        print(batch, method, kernels, top);
      }
    } finally {
      await engine.dispose();
    }
  }
  if (values.out) {
    await writeFileAtomic(
      values.out,
      JSON.stringify(
        { tool: "profile:gpu", deno: Deno.version.deno, suite, scale, results },
        null,
        2,
      ),
    );
  }
  return 0;
}

/** Median µs of each (phase, kernel, occurrence) over the profiled steps. */
function medians(steps: KernelTime[][]): ProfiledKernel[] {
  const byKey = new Map<string, { k: ProfiledKernel; us: number[] }>();
  for (const step of steps) {
    const seen = new Map<string, number>();
    for (const t of step) {
      const name = `${t.phase}\n${t.kernel}`;
      const occurrence = seen.get(name) ?? 0;
      seen.set(name, occurrence + 1);
      const key = `${name}\n${occurrence}`;
      let entry = byKey.get(key);
      if (!entry) {
        entry = {
          k: { phase: t.phase, kernel: t.kernel, occurrence, grid: t.grid, medianUs: 0 },
          us: [],
        };
        byKey.set(key, entry);
      }
      entry.us.push(t.ms * 1e3);
    }
  }
  return [...byKey.values()].map(({ k, us }) => ({ ...k, medianUs: summarize(us).median }));
}

function print(batch: number, method: string, kernels: ProfiledKernel[], top: number): void {
  const total = kernels.reduce((a, k) => a + k.medianUs, 0);
  console.log(`\nbatch ${batch}, ${method}: ${kernels.length} dispatches, ${total.toFixed(1)} µs`);
  console.log("phase     kernel                              grid                  µs   share");
  for (const k of kernels) {
    console.log(
      `${k.phase.padEnd(9)} ${k.kernel.slice(0, 35).padEnd(35)} ${k.grid.join("x").padEnd(17)} ${
        k.medianUs.toFixed(1).padStart(7)
      } ${(100 * k.medianUs / total).toFixed(1).padStart(6)}%`,
    );
  }
  const byPhase = new Map<string, number>();
  const byKernel = new Map<string, number>();
  for (const k of kernels) {
    byPhase.set(k.phase, (byPhase.get(k.phase) ?? 0) + k.medianUs);
    byKernel.set(k.kernel, (byKernel.get(k.kernel) ?? 0) + k.medianUs);
  }
  console.log(
    "by phase: " +
      [...byPhase].map(([p, us]) => `${p} ${us.toFixed(1)} µs`).join(", "),
  );
  console.log(`costliest kernels (all occurrences):`);
  for (const [name, us] of [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(
      `  ${name.padEnd(40)} ${us.toFixed(1).padStart(8)} µs ${
        (100 * us / total).toFixed(1).padStart(5)
      }%`,
    );
  }
}

if (import.meta.main) await runMain("profile:gpu", main);
