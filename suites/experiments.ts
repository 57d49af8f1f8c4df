/**
 * The paper's experiments as declarative runs: Table 2 (embedding bits), Table 3 (FP32, PTQ,
 * HAWQ, DQRM at INT4, with and without an FP32 MLP), Table 4 (communication bytes per worker),
 * Table 5 (scale period), Table 6 (gradient compression with data-parallel workers), Table 7
 * (which part is quantized), Table 8 (QAT from scratch vs one FP32 epoch first) and Table 9
 * (epochs).
 * A run that several tables share (the FP32 baseline, INT4 DQRM) appears once, tagged with
 * every table it belongs to.
 *
 * @module
 */
import type { BitWidth, QuantConfig } from "../engine/quant.ts";
import type { RunConfig } from "../record/schema.ts";

/** The experiments a suite can run, named after the paper's tables. */
export const EXPERIMENTS = [
  "table2",
  "table3",
  "table4",
  "table5",
  "table6",
  "table7",
  "table8",
  "table9",
] as const;

/** One experiment. */
export type Experiment = typeof EXPERIMENTS[number];

/** What every run of a suite shares; the experiments fill in method, quantization and name. */
export type BaseRun = Omit<
  RunConfig,
  "name" | "method" | "experiments" | "quantization" | "qatFromEpoch" | "postTraining"
>;

/** Settings of the experiments that differ by dataset. */
export interface ExperimentSettings {
  /** DQRM's scale period (the paper: 200 Kaggle, 1000 Terabyte). */
  period: number;
  /** Periods of Table 5. */
  periods: number[];
  /** Epochs of the Table 8 runs (at least 2) and the Table 9 runs. */
  table8Epochs: number;
  table9Epochs: number;
  /** Data-parallel worker counts of Tables 4 and 6 (the paper's: 4). */
  workerCounts: number[];
  /** Global batches whose bytes each Table 4 run counts. */
  table4Iterations: number;
  /** Training samples and evaluation period of the Table 6 runs (undefined: the suite's). */
  table6?: { trainSamples: number; evalEvery: number };
}

/** The gradient settings of Table 4, in the paper's order. */
export const TABLE4_PRESETS = ["uncompressed", "sparse", "sparse-int8"] as const;

/** The gradient settings of Table 6, in the paper's order. */
export const TABLE6_PRESETS = ["sparse", "sparse-emb8", "sparse-int8", "sparse-int8-ec"] as const;

/** DQRM: gathered rows only, table scales every `period` steps, channel-wise MLP scales. */
export function dqrm(
  embeddingBits: BitWidth | null,
  mlpBits: BitWidth | null,
  period: number,
): QuantConfig {
  return {
    quantizer: "minmax",
    embeddingBits,
    mlpBits,
    mlpGranularity: "channel",
    quantizeBias: false,
    scalePeriod: period,
    gatheredRowsOnly: true,
  };
}

/** HAWQ as the paper ran it: the same quantizer, a new scale and a whole-table copy every step. */
export function hawq(embeddingBits: BitWidth, mlpBits: BitWidth | null): QuantConfig {
  return { ...dqrm(embeddingBits, mlpBits, 1), gatheredRowsOnly: false };
}

/** LSQ: learned step sizes (per table, per MLP row), trained with the weights. */
export function lsq(embeddingBits: BitWidth, mlpBits: BitWidth | null): QuantConfig {
  return { ...dqrm(embeddingBits, mlpBits, 1), quantizer: "lsq" };
}

/**
 * PACT: DoReFa weights over whole tensors every step (as the public DQRM code ran its "PACT"),
 * plus PACT's learned activation clipping when the MLP is quantized.
 */
export function pact(embeddingBits: BitWidth, mlpBits: BitWidth | null): QuantConfig {
  return {
    ...dqrm(embeddingBits, mlpBits, 1),
    quantizer: "dorefa",
    activationClip: mlpBits !== null,
  };
}

/** Builds the runs of the chosen experiments. */
export function paperRuns(
  base: BaseRun,
  settings: ExperimentSettings,
  experiments: readonly Experiment[],
): RunConfig[] {
  const runs = new Map<string, RunConfig>();
  const add = (
    experiment: Experiment,
    name: string,
    method: RunConfig["method"],
    quantization: QuantConfig | null,
    extra: Partial<RunConfig> = {},
  ) => {
    if (!experiments.includes(experiment)) return;
    const existing = runs.get(name);
    if (existing) {
      existing.experiments.push(experiment);
      return;
    }
    runs.set(name, {
      ...base,
      name,
      method,
      experiments: [experiment],
      quantization,
      qatFromEpoch: 0,
      postTraining: null,
      ...extra,
    });
  };
  const P = settings.period;
  // Table 2: embedding-only QAT at 16, 8 and 4 bits against FP32.
  add("table2", "fp32", "fp32", null);
  for (const bits of [16, 8, 4] as const) {
    add("table2", `dqrm-emb${bits}`, "dqrm", dqrm(bits, null, P));
  }
  // Table 3: INT4 by every method, with and without an FP32 MLP.
  add("table3", "fp32", "fp32", null);
  add("table3", "ptq-int4", "ptq", null, {
    postTraining: { embeddingBits: 4, mlpBits: 4, quantizeBias: true },
  });
  add("table3", "lsq-int4", "lsq", lsq(4, 4));
  add("table3", "lsq-emb4", "lsq", lsq(4, null));
  add("table3", "pact-int4", "pact", pact(4, 4));
  add("table3", "pact-emb4", "pact", pact(4, null));
  add("table3", "hawq-int4", "hawq", hawq(4, 4));
  add("table3", "hawq-emb4", "hawq", hawq(4, null));
  add("table3", "dqrm-int4", "dqrm", dqrm(4, 4, P));
  add("table3", "dqrm-emb4", "dqrm", dqrm(4, null, P));
  // Table 5: the scale period.
  for (const period of settings.periods) {
    add("table5", period === P ? "dqrm-int4" : `dqrm-int4-p${period}`, "dqrm", dqrm(4, 4, period));
  }
  // Table 4: the bytes each worker sends per iteration, counted on the training batches (no
  // training: the uncompressed row would be a 2 GB all-reduce per step).
  for (const workers of settings.workerCounts) {
    for (const preset of TABLE4_PRESETS) {
      add("table4", `t4-dp${workers}-${preset}`, "dqrm", dqrm(4, 4, P), {
        dataParallel: { workers, compression: preset, mode: "accounting" },
        trainSamples: settings.table4Iterations * base.batchSize,
        evalEvery: 0,
      });
    }
  }
  // Table 6: gradient compression with data-parallel workers (simulated by default), INT4 DQRM
  // training, against the same training on one worker.
  const t6 = settings.table6 ?? {};
  add("table6", "t6-single", "dqrm", dqrm(4, 4, P), t6);
  for (const workers of settings.workerCounts) {
    for (const preset of TABLE6_PRESETS) {
      add("table6", `t6-dp${workers}-${preset}`, "dqrm", dqrm(4, 4, P), {
        dataParallel: { workers, compression: preset, mode: "simulated" },
        ...t6,
      });
    }
  }
  // Table 7: which part is quantized.
  add("table7", "fp32", "fp32", null);
  add("table7", "dqrm-emb4", "dqrm", dqrm(4, null, P));
  add("table7", "dqrm-mlp4", "dqrm", dqrm(null, 4, P));
  add("table7", "dqrm-int4", "dqrm", dqrm(4, 4, P));
  // Table 8: QAT from scratch against one FP32 epoch first.
  const e8 = Math.max(2, settings.table8Epochs);
  add("table8", "t8-dqrm-int4-scratch", "dqrm", dqrm(4, 4, P), { epochs: e8 });
  add("table8", "t8-dqrm-int4-fp32-first", "dqrm", dqrm(4, 4, P), { epochs: e8, qatFromEpoch: 1 });
  // Table 9: several epochs, FP32 against INT4 (does QAT regularise?).
  add("table9", "t9-fp32", "fp32", null, { epochs: settings.table9Epochs });
  add("table9", "t9-dqrm-int4", "dqrm", dqrm(4, 4, P), { epochs: settings.table9Epochs });
  return [...runs.values()];
}
