/**
 * The paper's published figures (DQRM: Deep Quantized Recommendation Models, Tables 2, 3, 4,
 * 5, 6 and 9), laid out as the paper lays them out, with the run features each row
 * corresponds to. Accuracies are fractions (0.78923 = 78.923%), sizes and bytes decimal (1 GB
 * = 1e9 bytes), times in ms per iteration.
 *
 * A value the paper gives only as text ("Cannot converge", "> 1000 ms") keeps the text, and
 * its number when it has one.
 *
 * @module
 */
import type { RunFeatures } from "./features.ts";

/** A figure the report can show for a run and the paper can publish. */
export type MetricKey =
  | "modelBytes"
  | "trainLoss"
  | "msPerIteration"
  | "accuracy"
  | "auc"
  | "commBytes";

/** A published value: a number, or text with an optional number (a bound like "> 1000"). */
export type PaperValue = number | { text: string; value?: number };

/** What a run must have to stand beside a paper row. */
export type RowMatch = Partial<Omit<RunFeatures, "method" | "experiments">> & {
  /** Any of these methods (lower case). */
  method?: readonly string[];
  /** At least this many epochs trained (Table 9). */
  minEpochs?: number;
};

/** One row of a paper table. */
export interface PaperRow {
  /** The row's label as the paper writes it. */
  label: string;
  /** The setting column's value (Table 3's bit width), when the table has one. */
  setting?: string;
  /** Runs with these features stand beside the row. */
  match: RowMatch;
  /** Among matching runs, keep those that also have these, when any do. */
  prefer?: RowMatch;
  /** Published values. */
  values: Partial<Record<MetricKey, PaperValue>>;
  /** The row the table's others are compared with. */
  baseline?: boolean;
  /** Take our figures at the end of this epoch, or at the best test point ("peak"). */
  at?: number | "peak";
  /** Where a value comes from when not the table itself. */
  note?: string;
}

/** One paper table. */
export interface PaperTable {
  /** `2`, `3a`, … */
  id: string;
  title: string;
  /** The paper's caption. */
  caption: string;
  /** Where and how the paper measured it. */
  platform: string;
  /** Header of the first column (the rows' labels), as the paper writes it. */
  labelHeader: string;
  /** Header of a second setting column (Table 3's bit width), when there is one. */
  settingLabel?: string;
  columns: readonly MetricKey[];
  rows: readonly PaperRow[];
  /** Caveats about the published numbers. */
  note?: string;
}

/** Display names and units of the metrics. */
export const METRICS: Record<
  MetricKey,
  { label: string; better: "higher" | "lower"; unit: string }
> = {
  modelBytes: { label: "Model size", better: "lower", unit: "GB" },
  trainLoss: { label: "Training loss", better: "lower", unit: "" },
  msPerIteration: { label: "Training time/it", better: "lower", unit: "ms" },
  accuracy: { label: "Test accuracy", better: "higher", unit: "%" },
  auc: { label: "Test ROC AUC", better: "higher", unit: "" },
  commBytes: { label: "Communication per iter", better: "lower", unit: "MB" },
};

const GB = 1e9, MB = 1e6;
const t = (text: string, value?: number): PaperValue =>
  value === undefined ? { text } : { text, value };

const QAT = ["dqrm", "qat"] as const;
/** Single-worker runs training with QAT from the first step. */
const ONE = { workers: 1, qatFromEpoch: 0 } as const;

/** Table 2: embedding-table quantization on Kaggle (MLP in FP32), 5 epochs, one A5000 GPU. */
export const TABLE_2: PaperTable = {
  id: "2",
  title: "Table 2: DLRM embedding tables quantization (Kaggle)",
  caption: "DLRM Embedding Tables Quantization, accuracies evaluated on the Kaggle Dataset",
  platform: "one NVIDIA A5000 GPU, Criteo Kaggle, 5 epochs, per-table scales",
  labelHeader: "Weight bitwidth",
  columns: ["accuracy", "auc"],
  rows: [
    {
      label: "FP32",
      baseline: true,
      match: { ...ONE, arch: "kaggle", embeddingBits: 32, mlpBits: 32 },
      values: { accuracy: 0.78923, auc: 0.8047 },
    },
    {
      label: "INT16",
      match: { ...ONE, arch: "kaggle", method: QAT, embeddingBits: 16, mlpBits: 32 },
      values: { accuracy: 0.78928, auc: 0.8046 },
    },
    {
      label: "INT8",
      match: { ...ONE, arch: "kaggle", method: QAT, embeddingBits: 8, mlpBits: 32 },
      values: { accuracy: 0.78985, auc: 0.8054 },
    },
    {
      label: "INT4",
      match: { ...ONE, arch: "kaggle", method: QAT, embeddingBits: 4, mlpBits: 32 },
      values: { accuracy: 0.79092, auc: 0.8073 },
    },
  ],
};

const T3_COLUMNS = ["modelBytes", "trainLoss", "msPerIteration", "accuracy", "auc"] as const;

function t3Rows(arch: "kaggle" | "terabyte", period: number): PaperRow[] {
  const m = (method: string, mlpBits: number): RowMatch => ({
    ...ONE,
    arch,
    method: [method],
    embeddingBits: 4,
    mlpBits,
  });
  const dqrm = (mlpBits: number): RowMatch => ({ ...m("dqrm", mlpBits) });
  return arch === "kaggle"
    ? [
      {
        label: "Baseline",
        setting: "FP32",
        baseline: true,
        match: { ...ONE, arch, embeddingBits: 32, mlpBits: 32 },
        values: {
          modelBytes: 2.161 * GB,
          trainLoss: 0.304,
          msPerIteration: 7,
          accuracy: 0.78923,
          auc: 0.8047,
        },
      },
      {
        label: "Vanilla PTQ",
        setting: "INT4",
        match: m("ptq", 4),
        values: { modelBytes: 0.27 * GB, accuracy: 0.76571, auc: 0.7675 },
      },
      {
        label: "PACT",
        setting: "INT4",
        match: m("pact", 4),
        values: { modelBytes: 0.27 * GB, trainLoss: t("Cannot converge") },
      },
      {
        label: "PACT (MLP in FP32)",
        setting: "INT4",
        match: m("pact", 32),
        values: {
          modelBytes: 0.271 * GB,
          trainLoss: 0.303,
          msPerIteration: 69,
          accuracy: 0.78858,
          auc: 0.804,
        },
      },
      {
        label: "LSQ",
        setting: "INT4",
        match: m("lsq", 4),
        values: {
          modelBytes: 0.27 * GB,
          trainLoss: 0.35,
          msPerIteration: 25,
          accuracy: 0.78972,
          auc: 0.8051,
        },
      },
      {
        label: "LSQ (MLP in FP32)",
        setting: "INT4",
        match: m("lsq", 32),
        values: {
          modelBytes: 0.271 * GB,
          trainLoss: 0.352,
          msPerIteration: 21,
          accuracy: 0.78987,
          auc: 0.8059,
        },
      },
      {
        label: "HAWQ",
        setting: "INT4",
        match: m("hawq", 4),
        values: {
          modelBytes: 0.27 * GB,
          trainLoss: 0.437,
          msPerIteration: 31,
          accuracy: 0.7904,
          auc: 0.8064,
        },
      },
      {
        label: "HAWQ (MLP in FP32)",
        setting: "INT4",
        match: m("hawq", 32),
        values: {
          modelBytes: 0.271 * GB,
          trainLoss: 0.436,
          msPerIteration: 27,
          accuracy: 0.7907,
          auc: 0.8075,
        },
      },
      {
        label: "DQRM (Ours)",
        setting: "INT4",
        match: dqrm(4),
        prefer: { scalePeriod: period },
        values: {
          modelBytes: 0.27 * GB,
          trainLoss: 0.437,
          msPerIteration: 22,
          accuracy: 0.79071,
          auc: 0.8073,
        },
      },
      {
        label: "DQRM (MLP in FP32)",
        setting: "INT4",
        match: dqrm(32),
        prefer: { scalePeriod: period },
        values: {
          modelBytes: 0.271 * GB,
          trainLoss: 0.436,
          msPerIteration: 20,
          accuracy: 0.79092,
          auc: 0.8073,
        },
      },
    ]
    : [
      {
        label: "Baseline",
        setting: "FP32",
        baseline: true,
        match: { ...ONE, arch, embeddingBits: 32, mlpBits: 32 },
        values: {
          modelBytes: 12.575 * GB,
          trainLoss: 0.347071,
          msPerIteration: 19,
          accuracy: 0.81165,
          auc: 0.8004,
        },
      },
      {
        label: "Vanilla PTQ",
        setting: "INT4",
        match: m("ptq", 4),
        values: { modelBytes: 1.572 * GB, accuracy: 0.78681, auc: 0.7283 },
      },
      {
        label: "PACT",
        setting: "INT4",
        match: m("pact", 4),
        values: {
          modelBytes: 1.572 * GB,
          trainLoss: t("Cannot finish"),
          msPerIteration: t("> 1000 ms/it", 1000),
        },
      },
      {
        label: "HAWQ",
        setting: "INT4",
        match: m("hawq", 4),
        values: {
          modelBytes: 1.572 * GB,
          trainLoss: t("Cannot finish"),
          msPerIteration: t("> 1000 ms/it", 1000),
        },
      },
      {
        label: "LSQ",
        setting: "INT4",
        match: m("lsq", 4),
        values: {
          modelBytes: 1.572 * GB,
          trainLoss: 0.35,
          msPerIteration: 42,
          accuracy: 0.81134,
          auc: 0.7996,
        },
      },
      {
        label: "LSQ (MLP in FP32)",
        setting: "INT4",
        match: m("lsq", 32),
        values: {
          modelBytes: 1.572 * GB,
          trainLoss: 0.356,
          msPerIteration: 42,
          accuracy: 0.81127,
          auc: 0.7998,
        },
      },
      {
        label: "DQRM (Ours)",
        setting: "INT4",
        match: dqrm(4),
        prefer: { scalePeriod: period },
        values: {
          modelBytes: 1.572 * GB,
          trainLoss: 0.409774,
          msPerIteration: 29,
          accuracy: 0.8121,
          auc: 0.8015,
        },
      },
      {
        label: "DQRM (MLP in FP32)",
        setting: "INT4",
        match: dqrm(32),
        prefer: { scalePeriod: period },
        values: {
          modelBytes: 1.572 * GB,
          trainLoss: 0.412,
          msPerIteration: 29,
          accuracy: 0.812,
          auc: 0.801,
        },
      },
    ];
}

/** Table 3(a): 4-bit quantization on Kaggle; DQRM with a scale period of 200. */
export const TABLE_3A: PaperTable = {
  id: "3a",
  title: "Table 3(a): 4-bit quantization for DLRM on Kaggle",
  caption: "DQRM 4-bit quantization results evaluated on Kaggle (one A5000 GPU, 5 epochs)",
  platform: "one NVIDIA A5000 GPU, Criteo Kaggle, 5 epochs; DQRM scale period 200",
  labelHeader: "Quantization Settings",
  settingLabel: "Model Bit Width",
  columns: T3_COLUMNS,
  rows: t3Rows("kaggle", 200),
  note:
    "The text of the paper merges the two PACT rows; read here as PACT INT4 (cannot converge) and PACT with the MLP in FP32.",
};

/** Table 3(b): 4-bit quantization on Terabyte; DQRM with a scale period of 1000. */
export const TABLE_3B: PaperTable = {
  id: "3b",
  title: "Table 3(b): 4-bit quantization for DLRM on Terabyte",
  caption: "DQRM 4-bit quantization results evaluated on Criteo Terabyte (Xeon 8280 CPU)",
  platform: "Intel Xeon Platinum 8280 CPUs, Criteo Terabyte, 5 epochs; DQRM scale period 1000",
  labelHeader: "Quantization Settings",
  settingLabel: "Model Bit Width",
  columns: T3_COLUMNS,
  rows: t3Rows("terabyte", 1000),
};

function t4Rows(arch: "kaggle" | "terabyte", workers: number): PaperRow[] {
  const base = { arch, workers, embeddingBits: 4 } as const;
  const kaggle = arch === "kaggle";
  return [
    {
      label: "grad uncompressed",
      baseline: true,
      match: { ...base, sparseEmbeddingGradients: false, embeddingGradBits: 32, mlpGradBits: 32 },
      values: kaggle
        ? {
          commBytes: 2.161 * GB,
          msPerIteration: t("> 1000 ms", 1000),
          trainLoss: 0.436,
          accuracy: 0.78897,
          auc: 0.8035,
        }
        : {
          commBytes: 12.575 * GB,
          msPerIteration: t("> 1000 ms", 1000),
          trainLoss: 0.412,
          accuracy: 0.81156,
          auc: 0.7997,
        },
    },
    {
      label: "+ EMB gradient sparse",
      match: { ...base, sparseEmbeddingGradients: true, embeddingGradBits: 32, mlpGradBits: 32 },
      values: kaggle
        ? {
          commBytes: 2.01 * MB,
          msPerIteration: 61,
          trainLoss: 0.436,
          accuracy: 0.78897,
          auc: 0.8035,
        }
        : {
          commBytes: 6.756 * MB,
          msPerIteration: 210,
          trainLoss: 0.412,
          accuracy: 0.81156,
          auc: 0.7997,
        },
    },
    {
      label: "+ INT8 grad quantization",
      match: { ...base, sparseEmbeddingGradients: true, embeddingGradBits: 8, mlpGradBits: 8 },
      prefer: { errorCompensation: true },
      values: kaggle
        ? {
          commBytes: 0.509 * MB,
          msPerIteration: 110,
          trainLoss: 0.442,
          accuracy: 0.7884,
          auc: 0.8023,
        }
        : {
          commBytes: 1.732 * MB,
          msPerIteration: 225,
          trainLoss: 0.414,
          accuracy: 0.81035,
          auc: 0.796,
        },
    },
  ];
}

const T4_COLUMNS = ["commBytes", "msPerIteration", "trainLoss", "accuracy", "auc"] as const;

/** Table 4(a): communication compression, Kaggle on four A5000 GPUs. */
export const TABLE_4A: PaperTable = {
  id: "4a",
  title: "Table 4 (Kaggle): communication compression, 4 workers",
  caption:
    "Communications compression for Distributed Data Parallelism training; forward weights in 4-bit",
  platform: "4 NVIDIA A5000 GPUs, Criteo Kaggle",
  labelHeader: "Communication Compression settings",
  columns: T4_COLUMNS,
  rows: t4Rows("kaggle", 4),
};

/** Table 4(b): communication compression, Terabyte on two Xeon CPU nodes. */
export const TABLE_4B: PaperTable = {
  id: "4b",
  title: "Table 4 (Terabyte): communication compression, 2 workers",
  caption:
    "Communications compression for Distributed Data Parallelism training; forward weights in 4-bit",
  platform: "2 processes on Intel Xeon Platinum 8280 CPUs, Criteo Terabyte",
  labelHeader: "Communication Compression settings",
  columns: T4_COLUMNS,
  rows: t4Rows("terabyte", 2),
};

const T5_NOTE =
  "The body of Table 5 is missing from the paper's text; values come from appendix A.1's prose and from Table 3 (period 200 on Kaggle and 1000 on Terabyte are Table 3's DQRM rows).";

const dqrmAll = (arch: string, scalePeriod: number): RowMatch => ({
  ...ONE,
  arch,
  method: ["dqrm"],
  embeddingBits: 4,
  mlpBits: 4,
  scalePeriod,
});

/** Table 5(a): periodic scale update on Kaggle (all weights INT4). */
export const TABLE_5A: PaperTable = {
  id: "5a",
  title: "Table 5 (Kaggle): periodic update of the quantization scale",
  caption: "Evaluation of Periodic Update on Kaggle",
  platform: "one NVIDIA A5000 GPU, Criteo Kaggle, 5 epochs, all weights INT4",
  labelHeader: "Scale period (iterations)",
  columns: ["msPerIteration", "accuracy", "auc"],
  note: T5_NOTE,
  rows: [
    {
      label: "1 (every iteration)",
      baseline: true,
      match: dqrmAll("kaggle", 1),
      values: { msPerIteration: t("> 31 ms", 31) },
      note: "A.1 prose",
    },
    {
      label: "200",
      match: dqrmAll("kaggle", 200),
      values: { msPerIteration: 22, accuracy: 0.79071, auc: 0.8073 },
      note: "Table 3(a)",
    },
    {
      label: "500",
      match: dqrmAll("kaggle", 500),
      values: {
        msPerIteration: t("diminishing gain"),
        accuracy: t("slightly lower"),
      },
      note: "A.1 prose",
    },
  ],
};

/** Table 5(b): periodic scale update on Terabyte (all weights INT4). */
export const TABLE_5B: PaperTable = {
  id: "5b",
  title: "Table 5 (Terabyte): periodic update of the quantization scale",
  caption: "Evaluation of Periodic Update on Terabyte",
  platform: "one Intel Xeon Platinum 8280 CPU, Criteo Terabyte, all weights INT4",
  labelHeader: "Scale period (iterations)",
  columns: ["msPerIteration", "accuracy", "auc"],
  note: T5_NOTE,
  rows: [
    {
      label: "1 (every iteration)",
      baseline: true,
      match: dqrmAll("terabyte", 1),
      values: { msPerIteration: t("> 1200 ms", 1200) },
      note: "A.1 prose",
    },
    {
      label: "200",
      match: dqrmAll("terabyte", 200),
      values: { msPerIteration: 57 },
      note: "A.1 prose",
    },
    {
      label: "500",
      match: dqrmAll("terabyte", 500),
      values: { msPerIteration: 34, accuracy: t("+0.03% vs period 200") },
      note: "A.1 prose",
    },
    {
      label: "1000",
      match: dqrmAll("terabyte", 1000),
      values: { msPerIteration: 29, accuracy: 0.8121, auc: 0.8015 },
      note: "Table 3(b)",
    },
  ],
};

const t6 = (embeddingGradBits: number, mlpGradBits: number, errorCompensation: boolean) => ({
  arch: "kaggle",
  workers: 4,
  sparseEmbeddingGradients: true,
  embeddingGradBits,
  mlpGradBits,
  errorCompensation,
});

/** Table 6: gradient quantization and MLP error compensation (Kaggle, 4 workers). */
export const TABLE_6: PaperTable = {
  id: "6",
  title: "Table 6: MLP gradient quantization and error compensation",
  caption: "Evaluation of MLP Quantization and Error Compensation",
  platform: "4 NVIDIA A5000 GPUs, Criteo Kaggle, specified sparsity on",
  labelHeader: "Settings",
  columns: ["accuracy", "auc"],
  rows: [
    {
      label: "baseline",
      baseline: true,
      match: t6(32, 32, false),
      values: { accuracy: 0.78897, auc: 0.8035 },
    },
    {
      label: "Only Embedding gradient in INT8",
      match: t6(8, 32, false),
      values: { accuracy: 0.78858, auc: 0.8023 },
    },
    {
      label: "Embedding and MLP gradient in INT8",
      match: t6(8, 8, false),
      values: { accuracy: 0.78608, auc: 0.7974 },
    },
    {
      label: "Embedding and MLP gradient in INT8 + MLP EC",
      match: t6(8, 8, true),
      values: { accuracy: 0.7884, auc: 0.8023 },
    },
  ],
};

const t9 = (epochs: number): RowMatch => ({
  ...ONE,
  arch: "kaggle",
  method: ["dqrm"],
  embeddingBits: 4,
  minEpochs: epochs,
});

/** Table 9: DQRM INT4 on Kaggle trained for 20 epochs, test results by epoch. */
export const TABLE_9: PaperTable = {
  id: "9",
  title: "Table 9: test results by number of epochs (DQRM INT4, Kaggle)",
  caption: "Test results by number of epochs",
  platform: "Criteo Kaggle, DQRM INT4, 20 epochs",
  labelHeader: "# Epochs",
  columns: ["accuracy", "auc"],
  note:
    "The epoch of the first row (78.581%, 0.7967) is lost in the paper's text; it is shown without a match.",
  rows: [
    {
      label: "(epoch not given)",
      match: { ...t9(1), minEpochs: Infinity },
      values: { accuracy: 0.78581, auc: 0.7967 },
    },
    { label: "5", at: 5, match: t9(5), values: { accuracy: 0.78949, auc: 0.805 } },
    {
      label: "10",
      at: 10,
      match: t9(10),
      values: { accuracy: 0.79092, auc: 0.8073 },
    },
    {
      label: "Peak (epoch 11)",
      at: "peak",
      match: t9(11),
      values: { accuracy: 0.79092, auc: 0.8076 },
    },
    {
      label: "15",
      at: 15,
      match: t9(15),
      values: { accuracy: 0.78743, auc: 0.8009 },
    },
    {
      label: "20",
      at: 20,
      match: t9(20),
      values: { accuracy: 0.78219, auc: 0.7499 },
    },
  ],
};

/** Every paper table, in the paper's order. */
export const PAPER_TABLES: readonly PaperTable[] = [
  TABLE_2,
  TABLE_3A,
  TABLE_3B,
  TABLE_4A,
  TABLE_4B,
  TABLE_5A,
  TABLE_5B,
  TABLE_6,
  TABLE_9,
];

/** The number of a paper value, when it has one. */
export function paperNumber(v: PaperValue | undefined): number | undefined {
  if (v === undefined) return undefined;
  return typeof v === "number" ? v : v.value;
}

/**
 * The device class the paper measured a table on (`gpu` or `cpu`, read from its platform), or
 * undefined when the platform names neither.
 */
export function paperDeviceClass(table: PaperTable): "gpu" | "cpu" | undefined {
  if (/\bGPUs?\b/.test(table.platform)) return "gpu";
  if (/\bCPUs?\b/.test(table.platform)) return "cpu";
  return undefined;
}
