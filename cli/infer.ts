/**
 * `deno task infer MODEL [--data FILE [--out preds.csv]] [options]`: loads a deployable model
 * file (`bench --save-models` writes them), verifies its checksum, and scores either synthetic
 * Criteo-shaped test data or, with `--data`, a real Criteo file read with the model's own
 * indexing (the modulo and dictionaries of its training data, from its `.indexing` sidecar),
 * reporting accuracy, AUC, log loss, samples/s and peak memory. Integer tables stay packed as
 * the file stores them (`--tables packed`, the default): each batch dequantizes only the rows it
 * names (`engine/cpu/packed_tables.ts`), with the predictions of the tables expanded to FP32
 * (`--tables fp32`) bit for bit.
 *
 * @module
 */
import { stringify } from "csv-stringify/sync";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { cpuModel, createCpuEngine, peakRssBytes } from "../engine/cpu/mod.ts";
import type { Engine } from "../engine/engine.ts";
import { clickMetrics } from "../engine/metrics.ts";
import {
  type LoadedModel,
  type LoadedPackedModel,
  type ModelFileHeader,
  readModelFile,
  readModelFilePackedIfInteger,
} from "../engine/model_file.ts";
import type { Params } from "../engine/params.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import {
  chunkFileName,
  chunkLayout,
  CriteoData,
  defaultCacheDir,
  describeUnseen,
  loadModelIndexing,
  type MappedCache,
  prepareMappedCache,
  type PreprocessProgress,
  resolveInput,
} from "../data/criteo/mod.ts";
import { readFileShared } from "../record/files.ts";
import {
  choiceFlag,
  CPU_KERNEL_FLAGS,
  cpuKernelsFlag,
  defineCli,
  FLAGS,
  intFlag,
  parseCli,
  runMain,
  UsageError,
} from "./args.ts";

const CLI = defineCli({
  usage: "deno task infer MODEL [--data FILE [--out preds.csv]] [options]",
  description:
    `Scores synthetic test data (the test stream of the seed the model was trained with, by default
seed 1) with a model file and prints accuracy, ROC AUC, log loss and samples/s. With --data, scores
every line of a real Criteo file instead, preprocessed with the model's own indexing: the modulo
and dictionaries of the data it was trained on (MODEL.indexing and the dictionaries beside it, which
bench --data --save-models writes); a value its training data never held gets row 0.`,
  options: {
    data: {
      type: "string",
      arg: "FILE",
      help: "a raw Criteo file to score (plain or gzip); metrics when it has labels",
    },
    out: {
      ...FLAGS.out,
      arg: "FILE",
      help: "with --data: write one line per line of FILE, in order: its click probability, " +
        "or nothing for a bad line (skipped)",
    },
    strict: FLAGS.strict,
    samples: { type: "string", arg: "N", help: "synthetic test samples", default: "262144" },
    "batch-size": { ...FLAGS["batch-size"], help: "batch size", default: "16384" },
    seed: { ...FLAGS.seed, help: "seed of the synthetic data", default: "1" },
    threads: { ...FLAGS.threads, default: "every core" },
    tables: {
      type: "string",
      arg: "HOW",
      help: "integer tables: packed (each batch dequantizes the rows it needs) or fp32 " +
        "(expanded whole first; same predictions, 8x the memory at INT4)",
      default: "packed",
    },
    ...CPU_KERNEL_FLAGS,
    quiet: FLAGS.quiet,
  },
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError("expected one MODEL file");
  const path = positionals[0];
  if (values.data === undefined) {
    for (const flag of ["out", "strict"] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} applies only with --data`);
    }
  } else if (values.samples !== undefined || values.seed !== undefined) {
    throw new UsageError("--samples and --seed apply to synthetic data, not with --data");
  }
  const tables = choiceFlag("tables", values.tables, ["packed", "fp32"] as const) ?? "packed";
  let bytes: Uint8Array;
  try {
    bytes = await readFileShared(path);
  } catch (e) {
    throw new Error(`cannot read model file ${path}: ${(e as Error).message}`);
  }
  let model: LoadedPackedModel | LoadedModel;
  try {
    model = tables === "packed" ? readModelFilePackedIfInteger(bytes) : readModelFile(bytes);
  } catch (e) {
    throw new Error(`model file ${path}: ${(e as Error).message}`);
  }
  const { header, warnings } = model;
  const packed = "embeddings" in model ? model.embeddings! : undefined;
  const params: Params = "params" in model ? model.params : { embeddings: [], ...model.mlps };
  for (const w of warnings) console.error(`infer: warning: ${path}: ${w}`);
  const spec = header.spec;
  const batch = intFlag("batch-size", values["batch-size"]) ?? 16_384;
  console.log(
    `${path}: ${(bytes.length / 1e6).toFixed(2)} MB, ${describeModel(header)}${
      warnings.length ? " (payload only)" : ""
    }; tables ${packed ? "kept packed" : "in FP32"}`,
  );
  // With --data, check the indexing before starting an engine.
  const indexing = values.data === undefined
    ? undefined
    : await loadModelIndexing(path, bytes, spec.tableRows);
  const samples = indexing ? 0 : intFlag("samples", values.samples) ?? 262_144;
  const engine = await createCpuEngine({
    spec,
    params,
    packedTables: packed,
    maxBatch: indexing ? batch : Math.min(batch, samples),
    threads: intFlag("threads", values.threads),
    kernels: cpuKernelsFlag(values, "auto"),
  });
  try {
    if (!indexing) {
      await scoreSynthetic(engine, spec, samples, batch, intFlag("seed", values.seed, 0) ?? 1);
      return 0;
    }
    const { options } = indexing.indexing;
    const { dictionaries } = indexing;
    const input = await resolveInput(options.dataset, values.data!);
    const started = performance.now();
    const mapped = await prepareMappedCache({
      input,
      out: `${defaultCacheDir(options.dataset, input)}-mapped-${dictionaries.id}`,
      options,
      dictionaries,
      strict: values.strict,
      onProgress: values.quiet ? undefined : printProgress,
    });
    const preprocessSeconds = (performance.now() - started) / 1000;
    console.log(
      `${values.data}: ${mapped.manifest.lines.toLocaleString("en-US")} lines, ${
        mapped.manifest.samples.toLocaleString("en-US")
      } samples${mapped.reused ? " (cached)" : ""} in ${
        preprocessSeconds.toFixed(1)
      } s, read with the model's indexing (${options.index}, max-ind-range ${options.maxIndRange}); ${
        describeUnseen(mapped)
      }`,
    );
    await scoreMapped(engine, spec, mapped, batch, values.out);
  } finally {
    await engine.dispose();
  }
  return 0;
}

function describeModel(header: ModelFileHeader): string {
  const q = header.quantization;
  return `embeddings ${q.embeddingBits ? `INT${q.embeddingBits}` : "FP32"}, MLP ${
    q.mlpBits ? `INT${q.mlpBits} (${q.mlpGranularity})` : "FP32"
  }, checksum ok`;
}

async function scoreSynthetic(
  engine: Engine,
  spec: ModelSpec,
  samples: number,
  batch: number,
  seed: number,
): Promise<void> {
  const test = allocateOneHotChunk(spec, batch, samples, true);
  new SyntheticCriteo(spec, { seed }).fill(test, "test", 0);
  await engine.predict({ ...test, samples: Math.min(samples, batch) }); // warm-up
  const t0 = performance.now();
  const p = await engine.predict(test);
  const seconds = (performance.now() - t0) / 1000;
  const m = clickMetrics(test.labels, p);
  console.log(
    `${samples} samples: accuracy ${m.accuracy.toFixed(4)}, AUC ${m.auc.toFixed(4)}, log loss ${
      m.logLoss.toFixed(4)
    }; ${rateLine(engine, samples / seconds)}`,
  );
}

/** Samples/s, where (CPU, threads, kernels) and the peak memory of the process. */
function rateLine(engine: Engine, rate: number): string {
  const { threads, details } = engine.info;
  return `${
    rate.toFixed(0)
  } samples/s on ${cpuModel()}, ${threads} thread(s), ${details.cpuKernels} kernels; peak RSS ${
    (peakRssBytes() / 1e6).toFixed(0)
  } MB`;
}

/** Scores every sample of a mapped cache in file order, a batch at a time. */
async function scoreMapped(
  engine: Engine,
  spec: ModelSpec,
  mapped: MappedCache,
  batch: number,
  out: string | undefined,
): Promise<void> {
  const data = await CriteoData.open(mapped.cache, { shuffle: false, use: "test" });
  const n = data.testSamples;
  const probabilities = new Float32Array(n);
  const labels = new Uint8Array(n);
  const chunk = allocateOneHotChunk(spec, batch, batch, true);
  let seconds = 0;
  for (let first = 0; first < n; first += batch) {
    const view = { ...chunk, samples: Math.min(batch, n - first) };
    data.fill(view, "test", first);
    const t0 = performance.now();
    const p = await engine.predict(view);
    seconds += (performance.now() - t0) / 1000;
    probabilities.set(p.subarray(0, view.samples), first);
    labels.set(chunk.labels.subarray(0, view.samples), first);
  }
  data.close();
  const rate = rateLine(engine, n / seconds);
  const m = clickMetrics(labels, probabilities);
  console.log(
    `${n} samples: accuracy ${m.accuracy.toFixed(4)}, AUC ${m.auc.toFixed(4)}, log loss ${
      m.logLoss.toFixed(4)
    }; ${rate}`,
  );
  if (out !== undefined) {
    await writePredictions(out, mapped, probabilities);
    console.log(`wrote ${out}: ${mapped.manifest.lines} lines, one per line of the input`);
  }
}

/**
 * Writes one line per line of the scored file: the probability of its sample (9 significant
 * digits, enough for a float32), or an empty line where the line was bad and skipped.
 */
async function writePredictions(
  out: string,
  mapped: MappedCache,
  probabilities: Float32Array,
): Promise<void> {
  const file = await Deno.open(out, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  try {
    let line = 1, sample = 0;
    const records: (string | number)[][] = [];
    const flush = async () => {
      if (records.length === 0) return;
      const bytes = encoder.encode(stringify(records));
      for (let put = 0; put < bytes.length;) put += await file.write(bytes.subarray(put));
      records.length = 0;
    };
    for (const [c, chunk] of mapped.manifest.chunks.entries()) {
      const lines = await chunkLines(mapped.cache, c, chunk.samples);
      for (const at of lines) {
        while (line < at) records.push([""]), line++;
        records.push([Number(probabilities[sample++].toPrecision(9))]);
        line++;
        if (records.length >= 65536) await flush();
      }
    }
    while (line <= mapped.manifest.lines) records.push([""]), line++;
    await flush();
  } finally {
    file.close();
  }
}

/** The source line numbers of a cache chunk's samples. */
async function chunkLines(cache: string, chunk: number, samples: number): Promise<Uint32Array> {
  const file = await Deno.open(`${cache}/${chunkFileName(chunk)}`);
  try {
    const lines = new Uint32Array(samples);
    const bytes = new Uint8Array(lines.buffer);
    await file.seek(chunkLayout(samples).lines, Deno.SeekMode.Start);
    for (let got = 0; got < bytes.length;) {
      const r = await file.read(bytes.subarray(got));
      if (r === null) throw new RangeError(`Expected the line column of ${chunkFileName(chunk)}`);
      got += r;
    }
    return lines;
  } finally {
    file.close();
  }
}

function printProgress(p: PreprocessProgress): void {
  const mb = p.textBytes / 1e6;
  console.error(
    `[preprocess] ${p.stage} · ${mb.toFixed(0)} MB · ${p.samples.toLocaleString("en-US")} samples`,
  );
}

if (import.meta.main) await runMain("infer", main);
