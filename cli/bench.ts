/**
 * `deno task bench SUITE [options]`: trains and evaluates a suite's runs, writes one JSON result
 * per run (atomically, as each finishes) and an HTML summary into an output folder. Run it
 * again with the same `--out` to resume: finished runs with the same config are kept; results
 * trained with another config stop it with one line (`--fresh` deletes them first).
 *
 * @module
 */
import { writeFileAtomic, writeResult } from "../record/mod.ts";
import { defaultDataWorkers } from "../data/fill_pool.ts";
import { writeReport } from "../reports/report.ts";
import {
  findAdapter,
  GpuIndexError,
  gpuIndexSetting,
  softwareAdapterName,
  softwareAdapterWarning,
} from "../engine/gpu/mod.ts";
import {
  type Experiment,
  EXPERIMENTS,
  type RunProgress,
  runTraining,
  SuiteProgress,
  SUITES,
  withOverrides,
} from "../suites/mod.ts";
import {
  choiceFlag,
  cpuKernelsFlag,
  defineCli,
  FLAGS,
  intFlag,
  intList,
  numberFlag,
  parseCli,
  runMain,
  suiteArg,
  UsageError,
} from "./args.ts";
import {
  type CacheManifest,
  criteoRunOverrides,
  describeBadLineReport,
  inputLinesOf,
  modelIndexingSaver,
  type PreprocessProgress,
  readManifest,
} from "../data/criteo/mod.ts";
import type { InputLines } from "../record/schema_extra.ts";
import { givenPreprocessFlags, PREPROCESS_FLAGS, preprocessChoices } from "./criteo_flags.ts";
import { COMPRESSION_PRESET_NAMES } from "../record/presets.ts";
import { withDataParallel } from "../suites/suite.ts";
import { conflictMessage, deleteResults, planResume } from "./resume.ts";
import { runSummaryLine, warmupWarning } from "./run_lines.ts";

const CLI = defineCli({
  usage: "deno task bench SUITE [options]",
  description: `Trains and evaluates the runs of SUITE (${
    Object.keys(SUITES).join(", ")
  }) on synthetic
Criteo-shaped data (or real Criteo data with --data), writes one JSON result per run as it
finishes and report.html into an output folder.`,
  options: {
    experiment: {
      type: "string",
      arg: "LIST",
      help: `paper tables to run, comma-separated: ${EXPERIMENTS.join(", ")} or all`,
      default: "table3: FP32, PTQ, LSQ, PACT, HAWQ and DQRM at INT4, each also with an FP32 MLP",
    },
    "paper-scale": {
      type: "boolean",
      help: "the paper's scale (5 epochs of the real data's size) instead of the small default",
    },
    budget: {
      type: "string",
      arg: "SECONDS",
      help: "training time budget per run; a run projected past it stops and is recorded as " +
        "could-not-finish",
      default: "300, as the paper's Table 3 does",
    },
    "save-models": {
      type: "boolean",
      help: "also write each run's deployable model file (RUN.model) to the folder; with --data " +
        "also RUN.model.indexing and the data's dictionaries (dictionaries/ID/), which infer " +
        "--data needs to map raw values to the model's rows",
    },
    engine: FLAGS.engine,
    "gpu-index": FLAGS["gpu-index"],
    threads: { ...FLAGS.threads, default: "every core" },
    "cpu-kernels": {
      ...FLAGS["cpu-kernels"],
      default: "wasm: bit for bit the same results on every machine",
    },
    "blas-lib": FLAGS["blas-lib"],
    "data-workers": { ...FLAGS["data-workers"], default: "the cores but one, at most 15" },
    workers: {
      ...FLAGS.workers,
      help: "train every single-engine run data-parallel on N >= 2 workers: real replicas, one " +
        "single-threaded CPU engine per Worker, exchanging gradients through shared memory " +
        "every iteration (the global batch is split among them; replicas are checked identical " +
        "at the end); with --engine gpu, GPU ranks (one GPU engine per Worker). Runs that " +
        "declare their own workers (tables 4 and 6) keep them",
    },
    compression: {
      ...FLAGS.compression,
      help: `gradient compression of --workers runs: ${COMPRESSION_PRESET_NAMES.join(", ")}`,
      default: "sparse: lossless sparse embedding gradients, FP32",
    },
    "dp-mode": {
      type: "string",
      arg: "M",
      help: "how data-parallel runs train: workers (real replicas) or simulated (the paper's " +
        "Algorithm 1 on one engine; same model bit for bit)",
      default: "workers for --workers, each run's own for tables 6 (simulated)",
    },
    "rank-gpus": {
      type: "string",
      arg: "LIST",
      help: "with --engine gpu, the GPU index of each GPU rank of --dp-mode workers runs, " +
        "comma-separated (a shorter list repeats its last)",
      default: "every rank on the bench's GPU",
    },
    iterations: {
      ...FLAGS.iterations,
      help: "training iterations per epoch",
      default: "the suite's",
    },
    epochs: { type: "string", arg: "N", help: "epochs", default: "the suite's, 1" },
    "batch-size": { ...FLAGS["batch-size"], default: "Kaggle 128, Terabyte 2048" },
    "test-samples": { type: "string", arg: "N", help: "test-set size" },
    "eval-every": {
      type: "string",
      arg: "N",
      help: "evaluate on the test set every N iterations (0: only at epoch ends)",
    },
    lr: { ...FLAGS.lr, default: "0.1" },
    seed: { ...FLAGS.seed, help: "the seed of every random stream", default: "1" },
    scale: {
      ...FLAGS.scale,
      default: "Kaggle 1, the paper's full 2.16 GB; Terabyte 0.1 of its 12.58 GB",
    },
    data: {
      type: "string",
      arg: "PATH",
      help: "train and test on real Criteo data: Kaggle's train.txt[.gz] or the competition's " +
        "train.csv (or its folder), " +
        "Terabyte's folder of day_N[.gz], or a cache folder built by deno task preprocess; raw " +
        "files are preprocessed once into a cache (DLRM's splits; the whole training split per " +
        "epoch and the whole test half unless --iterations / --test-samples ask for fewer); " +
        "the preprocessing options below apply with it",
    },
    ...PREPROCESS_FLAGS,
    run: {
      type: "string",
      arg: "NAME",
      multiple: true,
      help: "run only this run of the suite (repeatable)",
    },
    out: {
      ...FLAGS.out,
      arg: "DIR",
      help: "output folder; an existing folder resumes: runs already finished with the same " +
        "config are skipped, and results trained with another config stop the command " +
        "(see --fresh)",
      default: "results/SUITE-TIMESTAMP",
    },
    fresh: {
      type: "boolean",
      help: "with an existing --out: delete its run results (RUN.json, RUN.model) first and " +
        "run everything again, even where they were trained with another config",
    },
    quiet: FLAGS.quiet,
  },
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const suiteName = suiteArg(positionals, Object.keys(SUITES));
  const make = SUITES[suiteName];
  const experiments = values.experiment === undefined
    ? undefined
    : parseExperiments(values.experiment);
  let suite = make({ experiments, paperScale: values["paper-scale"] });
  const budget = numberFlag("budget", values.budget, 0);
  if (budget !== undefined) {
    suite = {
      ...suite,
      runs: suite.runs.map((r) => ({ ...r, budget: { ...r.budget, seconds: budget } })),
    };
  }
  const iterations = intFlag("iterations", values.iterations);
  const batchSize = intFlag("batch-size", values["batch-size"]);
  const effectiveBatch = batchSize ?? suite.runs[0].batchSize;
  suite = withOverrides(suite, {
    engine: choiceFlag("engine", values.engine, ["cpu", "gpu"] as const),
    threads: intFlag("threads", values.threads),
    cpuKernels: values["cpu-kernels"] === undefined && values["blas-lib"] === undefined
      ? undefined
      : cpuKernelsFlag(values, "wasm"),
    epochs: intFlag("epochs", values.epochs),
    batchSize,
    trainSamples: iterations === undefined ? undefined : iterations * effectiveBatch,
    testSamples: intFlag("test-samples", values["test-samples"]),
    evalEvery: intFlag("eval-every", values["eval-every"], 0),
    learningRate: numberFlag("lr", values.lr, 0),
    seed: intFlag("seed", values.seed, 0),
    tableScale: numberFlag("scale", values.scale, 0, 1),
  });
  const workers = intFlag("workers", values.workers, 2);
  const dataWorkers = intFlag("data-workers", values["data-workers"], 0) ?? defaultDataWorkers();
  const compression = choiceFlag("compression", values.compression, COMPRESSION_PRESET_NAMES);
  const dpMode = choiceFlag("dp-mode", values["dp-mode"], ["workers", "simulated"] as const);
  if (compression !== undefined && workers === undefined) {
    throw new UsageError("--compression applies only with --workers N");
  }
  let inputLines: InputLines | undefined;
  if (values.data !== undefined) {
    if (values.scale !== undefined) {
      throw new UsageError(
        "--scale applies to synthetic data; with --data the tables have the data's sizes",
      );
    }
    if (suiteName !== "kaggle" && suiteName !== "terabyte") {
      throw new UsageError(`--data expects the suite kaggle or terabyte but found '${suiteName}'`);
    }
    const overrides = await criteoRunOverrides(suiteName, values.data, {
      ...preprocessChoices(values),
      testData: values["test-data"],
      dictionaries: values["save-models"],
      trainSamples: iterations === undefined ? undefined : iterations * effectiveBatch,
      testSamples: intFlag("test-samples", values["test-samples"]),
      onProgress: values.quiet ? undefined : printPreprocess,
    });
    const { summary, ...runOverrides } = overrides;
    for (const line of summary) console.error(`bench: ${line}`);
    const manifest = await readManifest(overrides.data.cache);
    if (manifest) {
      inputLines = inputLinesOf(manifest);
      printInputLines(inputLines, manifest, overrides.data.cache, values.quiet ?? false);
    }
    suite = withOverrides(suite, runOverrides);
  } else {
    const given = givenPreprocessFlags(values);
    if (given.length) throw new UsageError(`${given.join(", ")} apply only with --data`);
  }
  const unfiltered = suite;
  if (values.run) {
    const unknown = values.run.filter((n) => !suite.runs.some((r) => r.name === n));
    if (unknown.length) {
      throw new UsageError(
        `unknown run ${unknown.map((n) => `'${n}'`).join(", ")}; suite ${suiteName} has ${
          suite.runs.map((r) => r.name).join(", ")
        }`,
      );
    }
    suite = { ...suite, runs: suite.runs.filter((r) => values.run!.includes(r.name)) };
  }
  const parallel = withDataParallel(suite, { workers, compression, mode: dpMode });
  const everyRun = withDataParallel(unfiltered, { workers, compression, mode: dpMode }).suite.runs;
  suite = parallel.suite;
  if (parallel.skipped.length) {
    console.error(
      `bench: ${
        parallel.skipped.join(", ")
      } train on one engine: learned steps (LSQ) and, on the GPU, learned clips (PACT) have ` +
        `no data-parallel gradient exchange`,
    );
  }
  const gpuIndex = intFlag("gpu-index", values["gpu-index"], 0);
  const rankGpus = values["rank-gpus"] === undefined
    ? undefined
    : intList("rank-gpus", values["rank-gpus"], 0);
  if (
    rankGpus && !suite.runs.some((r) => r.engine === "gpu" && r.dataParallel?.mode === "workers")
  ) {
    throw new UsageError("--rank-gpus applies only with --engine gpu and data-parallel workers");
  }
  if (gpuIndex !== undefined && !suite.runs.some((r) => r.engine === "gpu")) {
    throw new UsageError("--gpu-index applies only with --engine gpu");
  }
  if (suite.runs.some((r) => r.engine === "gpu")) {
    const { adapter, reason } = await findAdapter(gpuIndexSetting(gpuIndex)).catch((e) => {
      if (e instanceof GpuIndexError) throw new UsageError(e.message);
      throw e;
    });
    if (!adapter) {
      console.error(`bench: no WebGPU adapter (${reason}); run with --engine cpu`);
      return 1;
    }
    const software = softwareAdapterName(adapter.info);
    if (software) console.error(`bench: ${softwareAdapterWarning(software)}`);
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const out = values.out ?? `results/${suiteName}-${stamp}`;
  const resume = await planResume(out, everyRun);
  if (values.fresh) {
    const n = await deleteResults(out, resume);
    if (n) console.error(`bench: --fresh: deleted ${n} result(s) from ${out}`);
    resume.finished.clear();
  } else if (resume.conflicts.length) throw new UsageError(conflictMessage(out, resume.conflicts));
  const short = warmupWarning(suite.runs, iterations);
  if (short) console.error(`bench: ${short}`);
  await Deno.mkdir(out, { recursive: true });
  await writeFileAtomic(`${out}/suite.json`, JSON.stringify(suite, null, 1) + "\n");

  const suiteProgress = new SuiteProgress(suite.runs);
  const progress = values.quiet ? () => {} : progressPrinter(suiteProgress);
  let failed = 0;
  // Each run on real data saves its model's indexing; the cache's dictionaries are read once.
  const saveModelIndexing = modelIndexingSaver();
  for (const [index, config] of suite.runs.entries()) {
    if (resume.finished.has(config.name)) {
      suiteProgress.skipRun(index);
      console.error(
        `[${suiteProgress.position} ${config.name}] already finished in ${out}; skipped`,
      );
      continue;
    }
    const previous = resume.rerun.get(config.name);
    if (previous && !values.fresh) {
      console.error(`[${config.name}] its result in ${out} is ${previous}; running it again`);
    }
    const unreadable = resume.unreadable.find((u) => u.path === `${config.name}.json`);
    if (unreadable && !values.fresh) {
      console.error(
        `[${config.name}] replacing the unreadable ${unreadable.path}: ${unreadable.reason}`,
      );
    }
    suiteProgress.startRun(index);
    const model = `${out}/${config.name}.model`;
    const result = await runTraining(config, {
      suite: suiteName,
      onProgress: progress,
      saveModelTo: values["save-models"] ? model : undefined,
      dataWorkers,
      rankGpus,
    });
    if (inputLines) result.inputLines = inputLines;
    const path = await writeResult(out, result);
    if (values["save-models"] && config.data.kind === "criteo" && result.status === "ok") {
      console.error(`[${config.name}] wrote ${await saveModelIndexing(model, config.data)}`);
    }
    suiteProgress.endRun(result);
    if (result.status === "failed") failed++;
    console.error(runSummaryLine(result, path, suiteProgress.position));
  }
  const { html, model } = await writeReport(out);
  for (const f of model.skipped) console.error(`bench: report skipped ${f.path}: ${f.reason}`);
  console.log(`Results: ${out}  (report: ${html})`);
  return failed ? 1 : 0;
}

function parseExperiments(list: string): Experiment[] {
  if (list === "all") return [...EXPERIMENTS];
  const names = list.split(",").map((e) => e.trim());
  const unknown = names.filter((e) => !(EXPERIMENTS as readonly string[]).includes(e));
  if (unknown.length || names.length === 0) {
    throw new UsageError(
      `--experiment expects a list of ${EXPERIMENTS.join(", ")} or all but found '${list}'`,
    );
  }
  return names as Experiment[];
}

function printPreprocess(p: PreprocessProgress): void {
  const mb = p.textBytes / 1e6;
  console.error(
    `[preprocess] ${p.stage} · file ${p.source + 1}/${p.sources} · ${mb.toFixed(0)} MB · ${
      p.samples.toLocaleString("en-US")
    } samples · ${(mb / p.seconds).toFixed(1)} MB/s`,
  );
}

/**
 * Prints what the raw input held: lines, samples and bad lines skipped (on stderr; the bad lines
 * even with --quiet, so none is dropped unsaid).
 */
function printInputLines(
  lines: InputLines,
  m: CacheManifest,
  cache: string,
  quiet: boolean,
): void {
  const n = (x: number) => x.toLocaleString("en-US");
  if (quiet && lines.bad === 0) return;
  console.error(
    `[data] ${cache}: ${n(lines.lines)} lines read, ${n(lines.samples)} samples kept, ${
      n(lines.subsampled)
    } sub-sampled, ${n(lines.bad)} bad lines skipped${lines.bad ? ":" : ""}`,
  );
  for (const line of describeBadLineReport(m.badLines)) console.error(`[data]   ${line}`);
}

/** Prints a run's progress (train lines at most every 5 s) with run k of N and the ETAs. */
function progressPrinter(suite: SuiteProgress): (p: RunProgress) => void {
  let lastPrint = 0;
  return (p) => {
    const now = performance.now();
    if (p.stage === "train" && now - lastPrint < 5000 && p.iteration < p.totalIterations) return;
    lastPrint = now;
    console.error(suite.line(p));
  };
}

if (import.meta.main) await runMain("bench", main);
