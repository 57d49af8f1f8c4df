/**
 * `deno task bench:cpu`: the CPU engine's training time per iteration against PyTorch on the
 * same machine, in the same run. Kaggle architecture, one index per bag, FP32. Our engine and
 * PyTorch (`cli/pytorch_dlrm.py`, when a python3 with torch is found) are measured in
 * alternating rounds so that background load hits both alike; it prints the medians and the
 * ratio ours / PyTorch at each thread count. `--cpu-kernels wasm,blas` times both of our kernel
 * paths in the same rounds (ours / ours-wasm). It says what it compares: the CPU model and its
 * vector extensions, our BLAS library and kernel set, PyTorch's version, BLAS and CPU capability.
 *
 * @module
 */
import { cpuModel, cpuVectorExtensions, createCpuEngine } from "../engine/cpu/mod.ts";
import type { Engine } from "../engine/engine.ts";
import { median, summarize } from "../record/stats.ts";
import { archSpec, type ModelSpec } from "../engine/spec.ts";
import { writeFileAtomic } from "../record/files.ts";
import {
  cappedTables,
  findTorchPython,
  pushSample,
  pytorchBuild,
  runPeerScript,
  uniformOneHotChunk,
} from "./cpu_peer.ts";
import {
  cpuKernelsFlag,
  defineCli,
  FLAGS,
  intFlag,
  intList,
  parseCli,
  runMain,
  suiteArg,
} from "./args.ts";

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
    "cpu-kernels": {
      ...FLAGS["cpu-kernels"],
      arg: "LIST",
      help: "our matrix kernels to compare, comma-separated: wasm, blas, auto",
      default: "wasm,auto",
    },
    "blas-lib": FLAGS["blas-lib"],
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
  const threadList = intList("threads", values.threads ?? "1,2");
  const kernelList = (values["cpu-kernels"] ?? "wasm,auto").split(",").map((k) =>
    cpuKernelsFlag({ "cpu-kernels": k.trim(), "blas-lib": values["blas-lib"] }, "auto")
  );
  const spec = cappedTables(archSpec(arch), maxRows);
  const python = values["no-pytorch"] ? undefined : await findTorchPython(values.python);
  if (!values["no-pytorch"] && !python) {
    console.error("bench:cpu: no python3 with torch found; timing only our engine");
  }

  const warmup = Math.max(10, Math.floor(iters / 10));
  const chunk = uniformOneHotChunk(spec, batch, batch * (iters + warmup));

  const pytorch = python ? await pytorchBuild(python) : undefined;
  /** Each engine measured, at each thread count (its kernels as built, not as asked). */
  const measured: { kernels: string; name: string; threads: number }[] = [];
  const ours = new Map<string, number[]>();
  const torch = new Map<number, number[]>();
  const device = cpuModel();
  const vectorExtensions = cpuVectorExtensions();
  console.error(`CPU: ${device}; vector extensions: ${vectorExtensions}`);
  if (pytorch) console.error(`PyTorch: ${pytorch.summary}`);
  for (const threads of threadList) {
    // Only one thread count's engines live at a time: each is disposed after its rounds, so
    // its tables and Workers are gone before the next thread count is timed.
    const engines: { kernels: string; engine: Engine }[] = [];
    try {
      for (const asked of kernelList) {
        const engine = await createCpuEngine({
          spec,
          maxBatch: batch,
          seed: 1,
          threads,
          kernels: asked,
        });
        const kernels = String(engine.info.details.cpuKernels);
        if (engines.some((e) => e.kernels === kernels)) {
          console.error(`bench:cpu: --cpu-kernels ${asked} runs ${kernels}, already measured`);
          await engine.dispose();
          continue;
        }
        engines.push({ kernels, engine });
        const name = String(engine.info.details.kernels);
        // one line per kernel set (the same set at each thread count)
        if (!measured.some((m) => m.name === name)) console.error(`ours (${kernels}): ${name}`);
        measured.push({ kernels, name, threads });
      }
      for (let round = 0; round < rounds; round++) {
        const line: string[] = [];
        for (const e of engines) {
          const r = await e.engine.trainChunk(chunk, { learningRate: 0.01 });
          const perIter = Array.from(
            { length: iters },
            (_, i) =>
              r.phases.forward[warmup + i] + r.phases.backward[warmup + i] +
              r.phases.update[warmup + i],
          );
          pushSample(ours, `${e.kernels}/${threads}`, summarize(perIter).median);
          line.push(`ours ${e.kernels} ${last(ours, `${e.kernels}/${threads}`).toFixed(3)}`);
        }
        if (python) {
          pushSample(
            torch,
            threads,
            await runPytorch(python, arch, batch, iters, warmup, threads, spec),
          );
          line.push(`PyTorch ${last(torch, threads).toFixed(3)}`);
        }
        console.error(
          `round ${round + 1}/${rounds}, ${threads} thread(s): ${line.join(", ")} ms/it`,
        );
      }
    } finally {
      for (const e of engines) await e.engine.dispose();
    }
  }
  const kernelSets = measured.filter((e, i) => measured.findIndex((f) => f.name === e.name) === i);

  console.log(`\nCPU: ${device}; vector extensions: ${vectorExtensions}`);
  console.log(`${arch}, batch ${batch}, tables capped at ${maxRows || "full"}`);
  for (const e of kernelSets) {
    console.log(`ours: ${e.name}`);
  }
  const unmeasured = values["no-pytorch"] ? "--no-pytorch" : "no python3 with torch";
  console.log(`PyTorch: ${pytorch ? pytorch.summary : `not measured (${unmeasured})`}`);
  console.log("threads  kernels  ours ms/it  PyTorch ms/it  ours/PyTorch  ours/ours-wasm");
  const fmt = (v: number, w: number) => (Number.isNaN(v) ? "–" : v.toFixed(3)).padStart(w);
  const rows = measured.map(({ kernels, name, threads: t }) => {
    const o = median(ours.get(`${kernels}/${t}`)!);
    const p = torch.has(t) ? median(torch.get(t)!) : NaN;
    const w = ours.has(`wasm/${t}`) ? median(ours.get(`wasm/${t}`)!) : NaN;
    console.log(
      `${String(t).padStart(7)}  ${kernels.padStart(7)}  ${fmt(o, 10)}  ${fmt(p, 13)}  ${
        fmt(o / p, 12)
      }  ${fmt(o / w, 14)}`,
    );
    return {
      threads: t,
      kernels,
      kernelsDetail: name,
      oursMsPerIteration: o,
      pytorchMsPerIteration: p,
      ratio: o / p,
      ratioToWasm: o / w,
    };
  });
  if (torch.size > 0) {
    const best = Math.min(...rows.map((r) => r.oursMsPerIteration));
    const torchBest = Math.min(...[...torch.values()].map(median));
    console.log(
      `best of each: ours ${best.toFixed(3)} ms/it, PyTorch ${torchBest.toFixed(3)} ms/it, ratio ${
        (best / torchBest).toFixed(3)
      }`,
    );
  }
  if (values.out) {
    const out = {
      device,
      vectorExtensions,
      pytorch: pytorch ?? null,
      arch,
      batch,
      iters,
      rounds,
      maxRows,
      rows,
    };
    await writeFileAtomic(values.out, JSON.stringify(out, null, 1) + "\n");
  }
  return 0;
}

function last<K>(m: Map<K, number[]>, k: K): number {
  return m.get(k)!.at(-1)!;
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
  const args = [arch, "--table-rows", spec.tableRows.join(","), "--batch-size", String(batch)];
  args.push("--iterations", String(iters), "--warmup", String(warmup));
  args.push("--threads", String(threads));
  const r = await runPeerScript(python, "pytorch_dlrm.py", args, "PyTorch benchmark");
  return (r.msPerIter as { median: number }).median;
}

if (import.meta.main) await runMain("bench:cpu", main);
