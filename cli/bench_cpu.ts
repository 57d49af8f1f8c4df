/**
 * `deno task bench:cpu`: the CPU engine's training time per iteration against PyTorch on the
 * same machine, in the same run. Kaggle architecture, one index per bag, FP32. Our engine and
 * PyTorch (`cli/pytorch_dlrm.py`, when a python3 with torch is found) are measured in
 * alternating rounds so that background load hits both alike; it prints the medians and the
 * ratio ours / PyTorch at each thread count.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { describeEnvironment } from "../engine/environment.ts";
import { median, summarize } from "../record/stats.ts";
import { Rng } from "../engine/rng.ts";
import { kaggleSpec, type ModelSpec, terabyteSpec } from "../engine/spec.ts";
import { writeFileAtomic } from "../record/files.ts";
import { defineCli, FLAGS, intFlag, parseCli, runMain, suiteArg, UsageError } from "./args.ts";

const CLI = defineCli({
  usage: "deno task bench:cpu [SUITE] [options]",
  description:
    `Times one training iteration (forward, backward, SGD update) of the CPU engine and of a lean
PyTorch DLRM on the same machine, in alternating rounds, and prints both and their ratio.
SUITE picks the architecture: kaggle (default) or terabyte.`,
  options: {
    "batch-size": { ...FLAGS["batch-size"], default: "128" },
    iterations: { ...FLAGS.iterations, help: "timed iterations per round", default: "200" },
    rounds: { type: "string", arg: "N", help: "alternating rounds per engine", default: "3" },
    "max-rows": {
      type: "string",
      arg: "N",
      help: "cap every table at N rows (0 = the full tables)",
      default: "100000",
    },
    threads: {
      ...FLAGS.threads,
      arg: "LIST",
      help: "thread counts to compare, comma-separated",
      default: "1,2",
    },
    python: {
      type: "string",
      arg: "PATH",
      help: "python3 with torch",
      default: "the first of python3, /usr/bin/python3 that imports torch",
    },
    "no-pytorch": { type: "boolean", help: "time only our engine" },
    out: FLAGS.out,
  },
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const arch = suiteArg(positionals, ["kaggle", "terabyte"] as const, "kaggle");
  const batch = intFlag("batch-size", values["batch-size"]) ?? 128;
  const iters = intFlag("iterations", values.iterations) ?? 200;
  const rounds = intFlag("rounds", values.rounds) ?? 3;
  const maxRows = intFlag("max-rows", values["max-rows"], 0) ?? 100_000;
  const threadList = (values.threads ?? "1,2").split(",").map((t) => {
    const n = intFlag("threads", t.trim());
    if (n === undefined) throw new UsageError(`--threads expects a list like 1,2`);
    return n;
  });
  const base = arch === "kaggle" ? kaggleSpec() : terabyteSpec();
  const spec: ModelSpec = {
    ...base,
    tableRows: base.tableRows.map((n) => (maxRows > 0 ? Math.min(n, maxRows) : n)),
  };
  const python = values["no-pytorch"] ? undefined : await findTorchPython(values.python);
  if (!values["no-pytorch"] && !python) {
    console.error("bench:cpu: no python3 with torch found; timing only our engine");
  }

  // Random one-hot batches, as the PyTorch script uses: timing does not depend on the values.
  const warmup = Math.max(10, Math.floor(iters / 10));
  const chunk = allocateOneHotChunk(spec, batch, batch * (iters + warmup), true);
  const rng = new Rng(1, 99);
  for (let i = 0; i < chunk.dense.length; i++) chunk.dense[i] = Math.log1p(rng.int(1000));
  for (let i = 0; i < chunk.samples; i++) chunk.labels[i] = rng.next() < 0.25 ? 1 : 0;
  spec.tableRows.forEach((n, t) => {
    for (let s = 0; s < chunk.samples; s++) chunk.indices[t][s] = rng.int(n);
  });

  const ours = new Map<number, number[]>();
  const torch = new Map<number, number[]>();
  let device = "";
  for (const threads of threadList) {
    const engine = await createCpuEngine({ spec, maxBatch: batch, seed: 1, threads });
    device = describeEnvironment(engine.info).cpu;
    try {
      for (let round = 0; round < rounds; round++) {
        const r = await engine.trainChunk(chunk, { learningRate: 0.01 });
        const perIter = Array.from(
          { length: iters },
          (_, i) =>
            r.phases.forward[warmup + i] + r.phases.backward[warmup + i] +
            r.phases.update[warmup + i],
        );
        push(ours, threads, summarize(perIter).median);
        if (python) {
          push(torch, threads, await runPytorch(python, arch, batch, iters, warmup, threads, spec));
        }
        console.error(
          `round ${round + 1}/${rounds}, ${threads} thread(s): ours ${
            last(ours, threads).toFixed(3)
          } ms/it` +
            (python ? `, PyTorch ${last(torch, threads).toFixed(3)} ms/it` : ""),
        );
      }
    } finally {
      await engine.dispose();
    }
  }

  console.log(`\nCPU: ${device}; ${arch}, batch ${batch}, tables capped at ${maxRows || "full"}`);
  console.log("threads  ours ms/it  PyTorch ms/it  ours/PyTorch");
  const rows = threadList.map((t) => {
    const o = median(ours.get(t)!);
    const p = torch.has(t) ? median(torch.get(t)!) : NaN;
    console.log(
      `${String(t).padStart(7)}  ${o.toFixed(3).padStart(10)}  ${
        (Number.isNaN(p) ? "–" : p.toFixed(3)).padStart(13)
      }  ${Number.isNaN(p) ? "–" : (o / p).toFixed(3).padStart(12)}`,
    );
    return { threads: t, oursMsPerIteration: o, pytorchMsPerIteration: p, ratio: o / p };
  });
  if (torch.size > 0) {
    const best = Math.min(...threadList.map((t) => median(ours.get(t)!)));
    const torchBest = Math.min(...[...torch.values()].map(median));
    console.log(
      `best of each: ours ${best.toFixed(3)} ms/it, PyTorch ${torchBest.toFixed(3)} ms/it, ratio ${
        (best / torchBest).toFixed(3)
      }`,
    );
  }
  if (values.out) {
    await writeFileAtomic(
      values.out,
      JSON.stringify({ device, arch, batch, iters, rounds, maxRows, rows }, null, 1) + "\n",
    );
  }
  return 0;
}

function push(m: Map<number, number[]>, k: number, v: number) {
  m.set(k, [...(m.get(k) ?? []), v]);
}
function last(m: Map<number, number[]>, k: number): number {
  return m.get(k)!.at(-1)!;
}

async function findTorchPython(given?: string): Promise<string | undefined> {
  for (const py of given ? [given] : ["python3", "/usr/bin/python3"]) {
    try {
      const out = await new Deno.Command(py, { args: ["-c", "import torch"], stderr: "null" })
        .output();
      if (out.success) return py;
    } catch {
      // not installed
    }
    if (given) throw new UsageError(`--python ${given} cannot import torch`);
  }
  return undefined;
}

async function runPytorch(
  python: string,
  arch: string,
  batch: number,
  iters: number,
  warmup: number,
  threads: number,
  spec: ModelSpec,
): Promise<number> {
  const script = new URL("./pytorch_dlrm.py", import.meta.url).pathname;
  const out = await new Deno.Command(python, {
    args: [
      script,
      arch,
      "--table-rows",
      spec.tableRows.join(","),
      "--batch-size",
      String(batch),
      "--iterations",
      String(iters),
      "--warmup",
      String(warmup),
      "--threads",
      String(threads),
    ],
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`PyTorch benchmark failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]).msPerIter.median;
}

if (import.meta.main) await runMain("bench:cpu", main);
