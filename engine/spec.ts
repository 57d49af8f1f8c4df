/**
 * The DLRM architecture: what both engines build and what every result records.
 *
 * @module
 */
import { z } from "zod";

/** Zod schema of a DLRM architecture, in the field names of the golden fixtures. */
export const ModelSpecSchema = z.object({
  /** Number of dense (continuous) input features; the bottom MLP's input width. */
  denseFeatures: z.number().int().positive(),
  /** Rows of each embedding table, one table per categorical feature. */
  tableRows: z.array(z.number().int().positive()).min(1),
  /** Embedding dimension d; the bottom MLP's output width. */
  embeddingDim: z.number().int().positive(),
  /** Bottom MLP widths, input first (`[13, 512, 256, 64, 16]`); ReLU after every layer. */
  bottomMlp: z.array(z.number().int().positive()).min(2),
  /** Top MLP widths, input first (`[367, 512, 256, 1]`); ReLU between layers, sigmoid last. */
  topMlp: z.array(z.number().int().positive()).min(2),
}).superRefine((spec, ctx) => {
  if (spec.bottomMlp[0] !== spec.denseFeatures) {
    ctx.addIssue({
      code: "custom",
      path: ["bottomMlp", 0],
      message: `Expected the bottom MLP input (${
        spec.bottomMlp[0]
      }) to equal denseFeatures (${spec.denseFeatures})`,
    });
  }
  const last = spec.bottomMlp[spec.bottomMlp.length - 1];
  if (last !== spec.embeddingDim) {
    ctx.addIssue({
      code: "custom",
      path: ["bottomMlp"],
      message:
        `Expected the bottom MLP output (${last}) to equal embeddingDim (${spec.embeddingDim})`,
    });
  }
  const width = interactionWidth(spec);
  if (spec.topMlp[0] !== width) {
    ctx.addIssue({
      code: "custom",
      path: ["topMlp", 0],
      message: `Expected the top MLP input to be d + F(F-1)/2 = ${width} but found ${
        spec.topMlp[0]
      }`,
    });
  }
  if (spec.topMlp[spec.topMlp.length - 1] !== 1) {
    ctx.addIssue({
      code: "custom",
      path: ["topMlp"],
      message: `Expected the top MLP to end in 1 output but found ${spec.topMlp.at(-1)}`,
    });
  }
});

/** A DLRM architecture. */
export type ModelSpec = z.infer<typeof ModelSpecSchema>;

/**
 * Width of the dot interaction's output: `d + F(F-1)/2` with `F = tables + 1` vectors
 * (no self-interaction).
 */
export function interactionWidth(spec: Pick<ModelSpec, "tableRows" | "embeddingDim">): number {
  const f = spec.tableRows.length + 1;
  return spec.embeddingDim + (f * (f - 1)) / 2;
}

/** The 26 Criteo Kaggle table sizes (DLRM preprocessing, no max-ind-range). */
export const KAGGLE_TABLE_ROWS: readonly number[] = [
  1460,
  583,
  10131227,
  2202608,
  305,
  24,
  12517,
  633,
  3,
  93145,
  5683,
  8351593,
  3194,
  27,
  14992,
  5461306,
  10,
  5652,
  2173,
  4,
  7046547,
  18,
  15,
  286181,
  105,
  142572,
];

/** The 26 Criteo Terabyte table sizes with `--max-ind-range=10000000` and sub-sampling 0.875. */
export const TERABYTE_TABLE_ROWS: readonly number[] = [
  9980333,
  36084,
  17217,
  7378,
  20134,
  3,
  7112,
  1442,
  61,
  9758201,
  1333352,
  313829,
  10,
  2208,
  11156,
  122,
  4,
  970,
  14,
  9994222,
  7267859,
  9946608,
  415421,
  12420,
  101,
  36,
];

/**
 * Scales table sizes down by `factor` (rows = max(1, ceil(rows * factor))), for runs that must
 * fit a smaller machine or time budget. `factor = 1` returns the sizes unchanged.
 */
export function scaleTableRows(rows: readonly number[], factor: number): number[] {
  if (!(factor > 0 && factor <= 1)) {
    throw new RangeError(`Expected a table scale in (0, 1] but found ${factor}`);
  }
  return rows.map((n) => Math.max(1, Math.ceil(n * factor)));
}

/** The Kaggle DLRM of the paper: d = 16, bottom 13-512-256-64-16, top 367-512-256-1. */
export function kaggleSpec(tableScale = 1): ModelSpec {
  const tableRows = scaleTableRows(KAGGLE_TABLE_ROWS, tableScale);
  return {
    denseFeatures: 13,
    tableRows,
    embeddingDim: 16,
    bottomMlp: [13, 512, 256, 64, 16],
    topMlp: [367, 512, 256, 1],
  };
}

/** The Terabyte DLRM of the paper: d = 64, bottom 13-512-256-64, top 415-512-512-256-1. */
export function terabyteSpec(tableScale = 1): ModelSpec {
  const tableRows = scaleTableRows(TERABYTE_TABLE_ROWS, tableScale);
  return {
    denseFeatures: 13,
    tableRows,
    embeddingDim: 64,
    bottomMlp: [13, 512, 256, 64],
    topMlp: [415, 512, 512, 256, 1],
  };
}

/** The paper's architectures by name. */
export type Architecture = "kaggle" | "terabyte";

/** The spec of the paper's `arch` with every table's rows scaled by `tableScale`. */
export function archSpec(arch: Architecture, tableScale = 1): ModelSpec {
  return arch === "kaggle" ? kaggleSpec(tableScale) : terabyteSpec(tableScale);
}

/** Parameter counts of a spec: embedding values, MLP weights and biases. */
export function parameterCounts(spec: ModelSpec): { embedding: number; mlp: number } {
  const embedding = spec.tableRows.reduce((s, n) => s + n * spec.embeddingDim, 0);
  let mlp = 0;
  for (const widths of [spec.bottomMlp, spec.topMlp]) {
    for (let l = 1; l < widths.length; l++) mlp += widths[l - 1] * widths[l] + widths[l];
  }
  return { embedding, mlp };
}

/** Validates a spec, throwing a `TypeError` that names every wrong field. */
export function validateSpec(spec: unknown): ModelSpec {
  const parsed = ModelSpecSchema.safeParse(spec);
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join(".") || "spec"}: ${i.message}`);
    throw new TypeError(`Invalid model spec: ${what.join("; ")}`);
  }
  return parsed.data;
}
