/**
 * The features of a run that the paper's tables are keyed by (method, bit widths, scale
 * period, workers, gradient compression, epochs), read from its config by name. Methods and
 * their config fields are still being added, so each feature is looked up under the names in
 * {@linkcode FEATURE_ALIASES} (dot paths into the config, first found wins): a new spelling
 * needs one line here and nothing else.
 *
 * @module
 */
import type { ReportRun } from "./load.ts";
import { compressionPreset } from "../record/presets.ts";
import { archSpec } from "../engine/spec.ts";
import { KAGGLE_PAPER_TRAIN_SAMPLES } from "../suites/kaggle/mod.ts";
import { TERABYTE_PAPER_TRAIN_SAMPLES } from "../suites/terabyte/mod.ts";

/** Training samples per epoch of the paper's data sets, as the suites train at the paper's scale. */
export const PAPER_TRAIN_SAMPLES: Record<string, number> = {
  kaggle: KAGGLE_PAPER_TRAIN_SAMPLES,
  terabyte: TERABYTE_PAPER_TRAIN_SAMPLES,
};

/** Where each feature may be found in a run's config (dot paths; first found wins). */
export const FEATURE_ALIASES = {
  embeddingBits: [
    "quantization.embeddingBits",
    "postTraining.embeddingBits",
    "embeddingBits",
    "quant.embeddingBits",
    "quant.embedding.bits",
    "quantization.embedding.bits",
    "embedding.bits",
    "bits.embedding",
    "weightBits",
    "bits",
  ],
  mlpBits: [
    "quantization.mlpBits",
    "postTraining.mlpBits",
    "mlpBits",
    "quant.mlpBits",
    "quant.mlp.bits",
    "quantization.mlp.bits",
    "mlp.bits",
    "bits.mlp",
  ],
  /** A boolean: true keeps the MLP in FP32 (the paper's "MLP in FP32" rows). */
  mlpFp32: ["mlpFp32", "mlpInFp32", "keepMlpFp32", "quant.mlpFp32", "quantization.mlpFp32"],
  scalePeriod: [
    "quantization.scalePeriod",
    "scalePeriod",
    "period",
    "scaleUpdatePeriod",
    "updatePeriod",
    "quant.period",
    "quant.scalePeriod",
    "quantization.period",
  ],
  workers: [
    "workers",
    "nodes",
    "worldSize",
    "parallel.workers",
    "dp.workers",
    "dataParallel.workers",
  ],
  sparseEmbeddingGradients: [
    "sparseEmbeddingGradients",
    "sparseGradients",
    "sparseEmbeddingGrad",
    "compression.sparse",
    "comm.sparse",
    "gradients.sparse",
  ],
  embeddingGradBits: [
    "embeddingGradBits",
    "embGradBits",
    "compression.embeddingBits",
    "comm.embeddingBits",
    "gradients.embeddingBits",
    "gradBits",
    "gradientBits",
    "compression.bits",
  ],
  mlpGradBits: [
    "mlpGradBits",
    "compression.mlpBits",
    "comm.mlpBits",
    "gradients.mlpBits",
    "gradBits",
    "gradientBits",
    "compression.bits",
  ],
  errorCompensation: [
    "errorCompensation",
    "mlpErrorCompensation",
    "compression.errorCompensation",
    "comm.errorCompensation",
    "gradients.errorCompensation",
  ],
} as const;

/** The features of a run, normalised. */
export interface RunFeatures {
  arch: string;
  /** Lower-case method name. */
  method: string;
  /** Embedding weight bits (32 for FP32). */
  embeddingBits: number;
  /** MLP weight bits (32 for FP32). */
  mlpBits: number;
  /** Scale-finding period in iterations (1 = every iteration); undefined when not quantized. */
  scalePeriod?: number;
  /** Data-parallel workers (1 = single worker). */
  workers: number;
  sparseEmbeddingGradients: boolean;
  /** Gradient bits on the wire (32 = uncompressed). */
  embeddingGradBits: number;
  mlpGradBits: number;
  errorCompensation: boolean;
  epochs: number;
  /** Fraction of the paper's table rows (1 = full tables). */
  tableScale: number;
  /** `synthetic` or the real data set's name. */
  data: string;
  /** Epoch at which QAT starts (0: from scratch). */
  qatFromEpoch: number;
  /** Paper tables the run was declared for (`config.experiments`, e.g. `["table3"]`). */
  experiments: string[];
  /** The device class it trained on (`config.engine`): `cpu`, `gpu` or `unknown`. */
  deviceClass: string;
  /**
   * How its data is a subset of the paper's (tables scaled down, or real data with fewer rows
   * or training samples than the paper's), or undefined for the full data.
   */
  subset?: string;
}

/** Rows of the paper's full tables of `arch`, summed; undefined for another architecture. */
export function paperTableRows(arch: unknown): number | undefined {
  return arch === "kaggle" || arch === "terabyte"
    ? archSpec(arch, 1).tableRows.reduce((s, n) => s + n, 0)
    : undefined;
}

/** Why a run's data is a subset of the paper's, or undefined (see {@linkcode RunFeatures}). */
export function subsetOf(run: ReportRun): string | undefined {
  const c = run.config;
  const scale = c.tableScale ?? 1;
  if (scale < 1) return `tables ×${scale}`;
  if (getPath(c, "data.kind") !== "criteo") return undefined;
  const rows = getPath(run.spec, "tableRows");
  const arch = c.arch === "kaggle" || c.arch === "terabyte" ? c.arch : undefined;
  const paperRows = paperTableRows(arch);
  const ours = Array.isArray(rows) ? rows.reduce((s: number, n) => s + Number(n), 0) : undefined;
  const parts: string[] = [];
  if (ours !== undefined && paperRows !== undefined && ours < paperRows) {
    parts.push(
      `${ours.toLocaleString("en-US")} table rows of the paper's ${
        paperRows.toLocaleString("en-US")
      }`,
    );
  }
  const samples = c.trainSamples, paperSamples = arch ? PAPER_TRAIN_SAMPLES[arch] : undefined;
  if (samples !== undefined && paperSamples !== undefined && samples < paperSamples) {
    parts.push(
      `${samples.toLocaleString("en-US")} training samples of the paper's ${
        paperSamples.toLocaleString("en-US")
      }`,
    );
  }
  return parts.length ? `real data: ${parts.join(", ")}` : undefined;
}

/** Reads a dot path of a nested object. */
export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split(".")) {
    if (typeof cur !== "object" || cur === null || !(key in cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** The value at the first path that exists (a `null` value counts: it means "not quantized"). */
function first(obj: unknown, paths: readonly string[]): unknown {
  for (const p of paths) {
    const v = getPath(obj, p);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Bits of a config value: a number, `"int4"`, or `null` (FP32). */
function bitsOf(v: unknown): number | undefined {
  if (v === null) return 32;
  if (typeof v === "number" && v > 0) return v;
  if (typeof v === "string") {
    const m = /^(?:int|fp|uint)?(\d+)$/i.exec(v.trim());
    if (m) return Number(m[1]);
  }
  return undefined;
}

const FLOAT_METHODS = new Set(["fp32", "float", "float32", "baseline", "none"]);

/**
 * Normalised features of a run. Missing fields take the neutral value: FP32 bits for an FP32
 * method, the embedding bits for the MLP of a quantized one (the paper's "whole model" rows)
 * unless `mlpFp32` says otherwise, one worker, no gradient compression.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runFeatures } from "./features.ts";
 * import type { ReportRun } from "./load.ts";
 * const run = { config: { method: "dqrm", arch: "kaggle", quantization: { embeddingBits: 4, mlpBits: null } } };
 * const f = runFeatures(run as unknown as ReportRun);
 * assert.deepEqual([f.embeddingBits, f.mlpBits, f.workers], [4, 32, 1]);
 * ```
 */
export function runFeatures(run: ReportRun): RunFeatures {
  const c = run.config;
  const method = c.method.toLowerCase();
  const float = FLOAT_METHODS.has(method);
  const a = FEATURE_ALIASES;
  const embeddingBits = float ? 32 : bitsOf(first(c, a.embeddingBits)) ?? 32;
  const mlpFp32 = first(c, a.mlpFp32) === true;
  const mlpBits = float || mlpFp32 ? 32 : bitsOf(first(c, a.mlpBits)) ?? embeddingBits;
  const period = first(c, a.scalePeriod);
  const workers = first(c, a.workers) ?? run.communication?.workers;
  // A data-parallel run names its compression by preset (`dataParallel.compression`).
  const preset = compressionPreset(getPath(c, "dataParallel.compression"));
  const sparse = preset ? preset.sparseEmbeddings : first(c, a.sparseEmbeddingGradients);
  const ec = preset ? preset.errorCompensation : first(c, a.errorCompensation);
  const embGrad = preset ? preset.embeddingBits : first(c, a.embeddingGradBits);
  const mlpGrad = preset ? preset.mlpBits : first(c, a.mlpGradBits);
  const data = getPath(c, "data.kind") ?? getPath(c, "data.source") ?? getPath(c, "data");
  const subset = subsetOf(run);
  return {
    arch: c.arch,
    method,
    embeddingBits,
    mlpBits,
    scalePeriod: typeof period === "number" && !float ? period : undefined,
    workers: typeof workers === "number" ? workers : 1,
    sparseEmbeddingGradients: sparse === true,
    embeddingGradBits: bitsOf(embGrad) ?? 32,
    mlpGradBits: bitsOf(mlpGrad) ?? 32,
    errorCompensation: ec === true,
    epochs: c.epochs ?? 1,
    tableScale: c.tableScale ?? 1,
    data: typeof data === "string" ? data : "unknown",
    qatFromEpoch: typeof c.qatFromEpoch === "number" ? c.qatFromEpoch : 0,
    experiments: Array.isArray(c.experiments) ? c.experiments.map(String) : [],
    deviceClass: c.engine === "cpu" || c.engine === "gpu" ? c.engine : "unknown",
    ...(subset ? { subset } : {}),
  };
}
