/**
 * `deno task infer MODEL [options]`: loads a deployable model file (`bench --save-models`
 * writes them), verifies its checksum, scores synthetic Criteo-shaped test data with the CPU
 * engine and reports accuracy, AUC, log loss and samples/s.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { cpuModel, createCpuEngine } from "../engine/cpu/mod.ts";
import { clickMetrics } from "../engine/metrics.ts";
import { readModelFile } from "../engine/model_file.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { defineCli, FLAGS, intFlag, parseCli, runMain, UsageError } from "./args.ts";

const CLI = defineCli({
  usage: "deno task infer MODEL [options]",
  description:
    `Scores synthetic test data (the test stream of the seed the model was trained with, by default
seed 1) with a model file and prints accuracy, ROC AUC, log loss and samples/s.`,
  options: {
    samples: { type: "string", arg: "N", help: "test samples", default: "262144" },
    "batch-size": { ...FLAGS["batch-size"], help: "batch size", default: "16384" },
    seed: { ...FLAGS.seed, help: "seed of the synthetic data", default: "1" },
    threads: { ...FLAGS.threads, default: "every core" },
  },
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError("expected one MODEL file");
  const path = positionals[0];
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read model file ${path}: ${(e as Error).message}`);
  }
  let model: ReturnType<typeof readModelFile>;
  try {
    model = readModelFile(bytes);
  } catch (e) {
    throw new Error(`model file ${path}: ${(e as Error).message}`);
  }
  const { header, params, warnings } = model;
  for (const w of warnings) console.error(`infer: warning: ${path}: ${w}`);
  const spec = header.spec;
  const samples = intFlag("samples", values.samples) ?? 262_144;
  const batch = intFlag("batch-size", values["batch-size"]) ?? 16_384;
  const seed = intFlag("seed", values.seed, 0) ?? 1;
  const q = header.quantization;
  console.log(
    `${path}: ${(bytes.length / 1e6).toFixed(2)} MB, embeddings ${
      q.embeddingBits ? `INT${q.embeddingBits}` : "FP32"
    }, MLP ${q.mlpBits ? `INT${q.mlpBits} (${q.mlpGranularity})` : "FP32"}, checksum ok${
      warnings.length ? " (payload only)" : ""
    }`,
  );
  const test = allocateOneHotChunk(spec, batch, samples, true);
  new SyntheticCriteo(spec, { seed }).fill(test, "test", 0);
  const engine = await createCpuEngine({
    spec,
    params,
    maxBatch: Math.min(batch, samples),
    threads: intFlag("threads", values.threads),
  });
  try {
    await engine.predict({ ...test, samples: Math.min(samples, batch) }); // warm-up
    const t0 = performance.now();
    const p = await engine.predict(test);
    const seconds = (performance.now() - t0) / 1000;
    const m = clickMetrics(test.labels, p);
    console.log(
      `${samples} samples: accuracy ${m.accuracy.toFixed(4)}, AUC ${m.auc.toFixed(4)}, log loss ${
        m.logLoss.toFixed(4)
      }; ${(samples / seconds).toFixed(0)} samples/s on ${cpuModel()}`,
    );
  } finally {
    await engine.dispose();
  }
  return 0;
}

if (import.meta.main) await runMain("infer", main);
