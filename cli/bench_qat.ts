/**
 * `deno task bench:qat`: the cost of quantization-aware training on the CPU engine, measured in
 * one run on this machine. Per method (FP32, DQRM INT4 with period 200, DQRM with a new scale
 * every step from kept block maxima and from whole-table reads, HAWQ with whole-table copies):
 * ms per iteration by phase, the ratio to FP32, and the engine's memory. Then the bandwidth of
 * finding the scales by reading every table against a plain copy's.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { cpuModel, createCpuEngine } from "../engine/cpu/mod.ts";
import { type Phase, PHASES } from "../engine/phases.ts";
import { summarize } from "../record/stats.ts";
import type { QuantConfig } from "../engine/quant.ts";
import { kaggleSpec, parameterCounts } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { dqrm, hawq } from "../suites/experiments.ts";
import {
  CPU_KERNEL_FLAGS,
  cpuKernelsFlag,
  defineCli,
  FLAGS,
  intFlag,
  numberFlag,
  parseCli,
  runMain,
} from "./args.ts";

const CLI = defineCli({
  usage: "deno task bench:qat [options]",
  description:
    `Kaggle architecture, batch 128, one index per bag, synthetic data. Prints per-phase ms/it of
FP32, DQRM INT4 (P=200), DQRM INT4 (P=1: table scales from block maxima, re-reading the blocks the
step updated; and with a read of every table each step) and HAWQ INT4, their ratio to FP32 and
engine memory, then the bandwidth of that whole-table read against a plain copy's.`,
  options: {
    scale: { ...FLAGS.scale, default: "1: the full 2.16 GB of tables" },
    iterations: {
      ...FLAGS.iterations,
      help: "timed iterations per method",
      default: "400; HAWQ runs a tenth",
    },
    threads: { ...FLAGS.threads, default: "every core" },
    rounds: {
      type: "string",
      arg: "N",
      help: "rounds over the methods (each a fresh engine per method); medians over all rounds' " +
        "iterations, so drifting background load hits every method alike",
      default: "1",
    },
    ...CPU_KERNEL_FLAGS,
  },
  positionals: false,
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values } = parsed;
  const spec = kaggleSpec(numberFlag("scale", values.scale, 0, 1) ?? 1);
  const iters = intFlag("iterations", values.iterations) ?? 400;
  const threads = intFlag("threads", values.threads);
  const rounds = intFlag("rounds", values.rounds, 1) ?? 1;
  const kernels = cpuKernelsFlag(values, "auto");
  const batch = 128;
  const data = new SyntheticCriteo(spec, { seed: 1 });
  // Min-max table scales come from block maxima, re-reading only the blocks updated since the
  // last scale; "full reads" reads every table at each scale, the pass whose bandwidth is
  // compared with a copy's below.
  const methods: [string, QuantConfig | null, number, boolean][] = [
    ["fp32", null, iters, true],
    ["dqrm-int4 (P=200)", dqrm(4, 4, 200), iters, true],
    ["dqrm-int4 (P=1)", dqrm(4, 4, 1), iters, true],
    ["dqrm-int4 (P=1, full)", dqrm(4, 4, 1), Math.max(10, Math.floor(iters / 10)), false],
    ["hawq-int4", hawq(4, 4), Math.max(10, Math.floor(iters / 10)), true],
  ];
  const tableBytes = parameterCounts(spec).embedding * 4;
  console.log(
    `CPU: ${cpuModel()}; Kaggle tables ${(tableBytes / 1e9).toFixed(3)} GB, batch ${batch}`,
  );
  console.log(
    "method               total ms/it  ×FP32   scale  forward backward  update  engine GB",
  );
  // Per method, each timed iteration's phases over every round, and the engine's memory.
  const samples = methods.map(() => ({
    phases: Object.fromEntries(PHASES.map((p) => [p, [] as number[]])) as Record<Phase, number[]>,
    bytes: 0,
  }));
  for (let round = 0; round < rounds; round++) {
    for (const [m, [, quantization, n, incrementalTableMaxima]] of methods.entries()) {
      const warm = Math.min(50, n);
      const chunk = allocateOneHotChunk(spec, batch, batch * (n + warm), true);
      data.fill(chunk, "train", 0);
      const engine = await createCpuEngine({
        spec,
        maxBatch: batch,
        seed: 1,
        threads,
        quantization,
        kernels,
        incrementalTableMaxima,
      });
      try {
        const r = await engine.trainChunk(chunk, { learningRate: 0.1 });
        for (const p of PHASES) samples[m].phases[p].push(...r.phases[p].subarray(warm));
        samples[m].bytes = engine.memoryBytes();
      } finally {
        await engine.dispose();
      }
    }
  }
  let fp32Total = 0;
  let scaleGBs = 0;
  for (const [m, [name, , , incrementalTableMaxima]] of methods.entries()) {
    const { phases, bytes } = samples[m];
    const med = (p: Phase) => summarize(phases[p]).median;
    const total = summarize(
      phases.scale.map((_, i) => PHASES.reduce((s, p) => s + phases[p][i], 0)),
    ).median;
    if (name === "fp32") fp32Total = total;
    if (!incrementalTableMaxima) scaleGBs = tableBytes / 1e6 / med("scale");
    console.log(
      `${name.padEnd(20)} ${total.toFixed(3).padStart(11)}  ${
        (total / fp32Total).toFixed(2).padStart(5)
      }  ${med("scale").toFixed(3).padStart(6)}  ${med("forward").toFixed(3).padStart(7)} ${
        med("backward").toFixed(3).padStart(8)
      }  ${med("update").toFixed(3).padStart(6)}  ${(bytes / 1e9).toFixed(3).padStart(9)}`,
    );
  }
  // A plain copy on one thread (memcpy) and on every thread, over 512 MB.
  const n = 128 * 2 ** 20;
  const src = new Float32Array(n).fill(1), dst = new Float32Array(n);
  dst.set(src);
  const copies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    dst.set(src);
    copies.push(performance.now() - t0);
  }
  const copyMs = summarize(copies).median;
  const copyRead = (n * 4) / 1e6 / copyMs;
  console.log(
    `\nscale finding reading all tables (all threads, every step at P=1, full reads): ${
      scaleGBs.toFixed(1)
    } GB/s read`,
  );
  console.log(
    `plain copy (one thread, 512 MB): ${copyRead.toFixed(1)} GB/s read + ${
      copyRead.toFixed(1)
    } GB/s written = ${(2 * copyRead).toFixed(1)} GB/s moved`,
  );
  console.log(
    `scale finding / copy: ${(scaleGBs / copyRead).toFixed(2)} of the copy's read rate, ${
      (scaleGBs / (2 * copyRead)).toFixed(2)
    } of the bytes it moves`,
  );
  return 0;
}

if (import.meta.main) await runMain("bench:qat", main);
