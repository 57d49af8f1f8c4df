/**
 * `deno task bench:infer [MODEL]`: inference samples/s of `infer`'s engine (the CPU engine
 * scoring from packed tables) against a lean PyTorch FP32 inference of the same architecture
 * (`cli/pytorch_infer.py`: `torch.inference_mode`, same table rows, same thread count), in one
 * run, in alternating rounds so that background load hits both alike. Without MODEL it scores a
 * Kaggle model with tables capped at 100k rows and INT4 tables and MLPs, made in memory. It
 * prints the CPU model and its vector extensions, our kernels, PyTorch's version and BLAS, the
 * median samples/s of each and their ratio ours / PyTorch (above 1: ours is faster).
 *
 * @module
 */
import {
  cpuModel,
  cpuPredictPhases,
  cpuVectorExtensions,
  createCpuEngine,
  type PredictPhaseMs,
} from "../engine/cpu/mod.ts";
import type { Engine } from "../engine/engine.ts";
import {
  type ModelFileQuantization,
  readModelFile,
  readModelFilePacked,
  writeModelFile,
} from "../engine/model_file.ts";
import { initParams, type Params } from "../engine/params.ts";
import { kaggleSpec, type ModelSpec, terabyteSpec } from "../engine/spec.ts";
import { median } from "../record/stats.ts";
import { readFileShared, writeFileAtomic } from "../record/files.ts";
import {
  choiceFlag,
  CPU_KERNEL_FLAGS,
  cpuKernelsFlag,
  defineCli,
  FLAGS,
  intFlag,
  intList,
  parseCli,
  runMain,
  UsageError,
} from "./args.ts";
import {
  cappedTables,
  findTorchPython,
  pushSample,
  pytorchBuild,
  runPeerScript,
  uniformOneHotChunk,
} from "./cpu_peer.ts";

const CLI = defineCli({
  usage: "deno task bench:infer [MODEL] [options]",
  description:
    `Times inference (samples/s) of our CPU engine scoring from packed tables and of a lean PyTorch
FP32 inference of the same architecture (cli/pytorch_infer.py) on the same machine, in
alternating rounds, and prints both and their ratio. MODEL is a model file of the Kaggle or
Terabyte architecture; without it, a Kaggle model with --bits tables and MLPs and tables capped
at --max-rows rows is made in memory.`,
  options: {
    "batch-size": {
      ...FLAGS["batch-size"],
      arg: "LIST",
      help: "batch sizes, comma-separated",
      default: "128,16384",
    },
    threads: {
      ...FLAGS.threads,
      arg: "LIST",
      help: "thread counts to compare, comma-separated",
      default: "1,2",
    },
    samples: { type: "string", arg: "N", help: "samples scored per round", default: "65536" },
    rounds: { type: "string", arg: "N", help: "alternating rounds per engine", default: "3" },
    "max-rows": {
      type: "string",
      arg: "N",
      help: "without MODEL: cap every table at N rows (0 = the full tables)",
      default: "100000",
    },
    bits: { type: "string", arg: "N", help: "without MODEL: 2, 4 or 8", default: "4" },
    tables: {
      type: "string",
      arg: "LIST",
      help: "our tables, comma-separated: packed (dequantized as gathered), fp32 (expanded)",
      default: "packed",
    },
    python: {
      type: "string",
      arg: "PATH",
      help: "python3 with torch",
      default: "the first of python3, /usr/bin/python3 that imports torch",
    },
    "no-pytorch": { type: "boolean", help: "time only our engine" },
    phases: {
      type: "boolean",
      help: "also time a round of ours by phase (gather, bottom MLP, interaction, top MLP, " +
        "output layer, barrier waits, other) and print where the time goes",
    },
    ...CPU_KERNEL_FLAGS,
    out: FLAGS.out,
  },
});

/** Our engine for one thread count and table kind. */
interface Ours {
  threads: number;
  tables: "packed" | "fp32";
  engine: Engine;
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw new UsageError("expected at most one MODEL file");
  const batches = intList("batch-size", values["batch-size"] ?? "128,16384");
  const threadList = intList("threads", values.threads ?? "1,2");
  const samples = intFlag("samples", values.samples, 1) ?? 65_536;
  const rounds = intFlag("rounds", values.rounds, 1) ?? 3;
  const tableKinds = (values.tables ?? "packed").split(",").map((k) =>
    choiceFlag("tables", k.trim(), ["packed", "fp32"] as const)!
  );
  const kernels = cpuKernelsFlag(values, "auto");
  const file = positionals.length === 1
    ? await readFileShared(positionals[0])
    : inMemoryModel(values["max-rows"], values.bits);
  const packed = readModelFilePacked(file);
  if (!packed.embeddings) throw new UsageError("expected a model file with integer tables");
  const spec = packed.header.spec;
  const arch = paperArch(spec);
  const python = values["no-pytorch"] ? undefined : await findTorchPython(values.python);
  if (!values["no-pytorch"] && !python) {
    console.error("bench:infer: no python3 with torch found; timing only our engine");
  }
  if (python && !arch) {
    console.error(
      "bench:infer: MODEL is neither the Kaggle nor the Terabyte architecture; " +
        "timing only our engine",
    );
  }
  const pytorch = python && arch ? await pytorchBuild(python) : undefined;
  const expanded: Params | undefined = tableKinds.includes("fp32")
    ? readModelFile(file).params
    : undefined;
  const maxBatch = Math.min(Math.max(...batches), samples);
  const ours: Ours[] = [];
  for (const threads of threadList) {
    for (const tables of tableKinds) {
      const engine = await createCpuEngine({
        spec,
        params: tables === "packed" ? { embeddings: [], ...packed.mlps } : expanded,
        packedTables: tables === "packed" ? packed.embeddings : undefined,
        maxBatch,
        threads,
        kernels,
      });
      ours.push({ threads, tables, engine });
    }
  }
  const chunks = new Map(batches.map((b) => [b, uniformOneHotChunk(spec, b, samples)]));
  const device = cpuModel();
  const vectorExtensions = cpuVectorExtensions();
  const oursKernels = `${ours[0].engine.info.details.kernels}`;
  const bits = packed.embeddings.bits;
  console.error(`CPU: ${device}; vector extensions: ${vectorExtensions}`);
  console.error(`ours: ${oursKernels}; INT${bits} tables`);
  if (pytorch) console.error(`PyTorch: ${pytorch.summary}`);
  const phaseRows: PhaseRow[] = [];
  const oursRates = new Map<string, number[]>();
  const torchRates = new Map<string, number[]>();
  try {
    for (const e of ours) {
      // Warm-up: a batch of each size compiles and touches everything once.
      for (const [b, chunk] of chunks) {
        await e.engine.predict({ ...chunk, samples: Math.min(b, samples) });
      }
    }
    for (let round = 0; round < rounds; round++) {
      for (const threads of threadList) {
        for (const [b, chunk] of chunks) {
          const line: string[] = [];
          for (const e of ours.filter((e) => e.threads === threads)) {
            const t0 = performance.now();
            await e.engine.predict(chunk);
            const rate = samples / ((performance.now() - t0) / 1000);
            pushSample(oursRates, `${e.tables}/${threads}/${b}`, rate);
            line.push(`ours ${e.tables} ${rate.toFixed(0)}`);
          }
          if (pytorch) {
            const rate = await runPytorch(python!, arch!, spec, b, samples, threads);
            pushSample(torchRates, `${threads}/${b}`, rate);
            line.push(`PyTorch ${rate.toFixed(0)}`);
          }
          console.error(
            `round ${round + 1}/${rounds}, ${threads} thread(s), batch ${b}: ${
              line.join(", ")
            } samples/s`,
          );
        }
      }
    }
    if (values.phases) {
      for (const e of ours) {
        for (const [b, chunk] of chunks) {
          const { phases } = await cpuPredictPhases(e.engine, chunk);
          phaseRows.push({ threads: e.threads, batch: b, tables: e.tables, phases });
        }
      }
    }
  } finally {
    for (const e of ours) await e.engine.dispose();
  }

  console.log(`\nCPU: ${device}; vector extensions: ${vectorExtensions}`);
  console.log(
    `${arch ?? "model"} (tables ${describeRows(spec)}), INT${bits} tables, ${samples} samples ` +
      `a round, median of ${rounds} rounds`,
  );
  console.log(`ours: ${oursKernels}`);
  console.log(`PyTorch: ${pytorch ? pytorch.summary : "not measured"}`);
  console.log("threads  batch  tables  ours samples/s  PyTorch samples/s  ours/PyTorch");
  const fmt = (v: number, w: number, digits = 0) =>
    (Number.isNaN(v) ? "–" : v.toFixed(digits)).padStart(w);
  const rows = ours.flatMap(({ threads, tables }) =>
    batches.map((batch) => {
      const o = median(oursRates.get(`${tables}/${threads}/${batch}`)!);
      const p = torchRates.has(`${threads}/${batch}`)
        ? median(torchRates.get(`${threads}/${batch}`)!)
        : NaN;
      console.log(
        `${String(threads).padStart(7)}  ${String(batch).padStart(5)}  ${tables.padStart(6)}  ${
          fmt(o, 14)
        }  ${fmt(p, 17)}  ${fmt(o / p, 12, 2)}`,
      );
      return {
        threads,
        batch,
        tables,
        oursSamplesPerSecond: o,
        pytorchSamplesPerSecond: p,
        ratio: o / p,
      };
    })
  );
  if (phaseRows.length > 0) printPhases(phaseRows, samples);
  if (values.out) {
    const out = {
      device,
      vectorExtensions,
      ours: oursKernels,
      pytorch: pytorch ?? null,
      arch,
      tableRows: spec.tableRows,
      bits,
      samples,
      rounds,
      rows,
      ...(phaseRows.length > 0 ? { phases: phaseRows } : {}),
    };
    await writeFileAtomic(values.out, JSON.stringify(out, null, 1) + "\n");
  }
  return 0;
}

/** One engine's and batch size's predict round, timed by phase. */
interface PhaseRow {
  threads: number;
  batch: number;
  tables: string;
  phases: PredictPhaseMs;
}

/** Prints microseconds per 1000 samples of each phase, and its share of the round. */
function printPhases(rows: PhaseRow[], samples: number): void {
  const names = Object.keys(rows[0].phases) as (keyof PredictPhaseMs)[];
  console.log(`\nours by phase (one round; ms per ${samples} samples, and % of the round):`);
  console.log(
    `threads  batch  tables  ${names.map((n) => n.padStart(16)).join("")}`,
  );
  for (const { threads, batch, tables, phases } of rows) {
    const total = names.reduce((a, n) => a + phases[n], 0);
    const cells = names.map((n) =>
      `${phases[n].toFixed(1)} (${(100 * phases[n] / total).toFixed(0)}%)`.padStart(16)
    );
    console.log(
      `${String(threads).padStart(7)}  ${String(batch).padStart(5)}  ${tables.padStart(6)}  ${
        cells.join("")
      }`,
    );
  }
}

/** A Kaggle model file with seeded parameters, `bits` tables and MLPs, tables capped. */
function inMemoryModel(maxRowsFlag: string | undefined, bitsFlag: string | undefined) {
  const maxRows = intFlag("max-rows", maxRowsFlag, 0) ?? 100_000;
  const bits = choiceFlag("bits", bitsFlag, ["2", "4", "8"] as const) ?? "4";
  const spec = cappedTables(kaggleSpec(), maxRows);
  const b = Number(bits) as 2 | 4 | 8;
  const q: ModelFileQuantization = { embeddingBits: b, mlpBits: b, mlpGranularity: "channel" };
  const file = writeModelFile(spec, initParams(spec, 1), q);
  const shared = new Uint8Array(new SharedArrayBuffer(file.length));
  shared.set(file);
  return shared;
}

/** The paper architecture `spec` has (any table rows), or undefined. */
function paperArch(spec: ModelSpec): "kaggle" | "terabyte" | undefined {
  const same = (a: ModelSpec, b: ModelSpec) =>
    a.embeddingDim === b.embeddingDim && a.tableRows.length === b.tableRows.length &&
    a.denseFeatures === b.denseFeatures && a.bottomMlp.join() === b.bottomMlp.join() &&
    a.topMlp.join() === b.topMlp.join();
  if (same(spec, kaggleSpec())) return "kaggle";
  if (same(spec, terabyteSpec())) return "terabyte";
  return undefined;
}

function describeRows(spec: ModelSpec): string {
  const max = Math.max(...spec.tableRows);
  const total = spec.tableRows.reduce((a, b) => a + b, 0);
  return `${total.toLocaleString("en-US")} rows, largest ${max.toLocaleString("en-US")}`;
}

/** One round of cli/pytorch_infer.py (a warm-up batch first): its samples/s. */
async function runPytorch(
  python: string,
  arch: string,
  spec: ModelSpec,
  batch: number,
  samples: number,
  threads: number,
): Promise<number> {
  const args = [arch, "--table-rows", spec.tableRows.join(","), "--batch-size", String(batch)];
  args.push("--samples", String(samples), "--rounds", "1", "--threads", String(threads));
  const r = await runPeerScript(python, "pytorch_infer.py", args, "PyTorch inference");
  return (r.samplesPerSecond as { median: number }).median;
}

if (import.meta.main) await runMain("bench:infer", main);
