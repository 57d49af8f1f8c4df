/**
 * Golden checks: replays a fixture of PyTorch autograd results step by step on an engine and
 * measures the largest error of every tensor (see `tests/fixtures/FORMAT.md`).
 *
 * @module
 */
import { z } from "zod";
import type { BatchChunk } from "./batch.ts";
import type { Engine } from "./engine.ts";
import { type Params, paramsFromJson } from "./params.ts";
import type { QuantConfig } from "./quant.ts";
import type { ModelSpec } from "./spec.ts";

/** Tolerance of the golden checks: `|got - want| <= atol + rtol * |want|`. */
export const GOLDEN_TOLERANCE = { atol: 1e-5, rtol: 1e-3 } as const;

/** A parsed fixture. */
export interface GoldenFixture {
  name: string;
  arch: ModelSpec & { interaction: string; selfInteraction: boolean };
  quantization: {
    embeddingBits: 2 | 4 | 8 | 16 | null;
    mlpBits: 2 | 4 | 8 | 16 | null;
    mlpGranularity: "channel" | "matrix";
    biasQuantized: boolean;
    scaleUpdatePeriod: number;
    [key: string]: unknown;
  };
  learningRate: number;
  initialParams: Params;
  steps: {
    batch: BatchChunk;
    expected: {
      probabilities: number[];
      loss: number;
      gradients: Params;
      paramsAfterStep: Params;
      embeddingScales?: number[];
    };
  }[];
}

type JsonParams = Parameters<typeof paramsFromJson>[0];

const nums = z.array(z.number());
const ints = z.array(z.number().int().nonnegative());
const ParamsJsonSchema = z.object({
  embeddings: z.array(nums),
  bottom: z.array(z.object({ weight: nums, bias: nums })),
  top: z.array(z.object({ weight: nums, bias: nums })),
});
const bits = z.union([z.literal(2), z.literal(4), z.literal(8), z.literal(16), z.null()]);

/** The fixture's shape (`tests/fixtures/FORMAT.md`), checked before any of it is used. */
const FixtureJsonSchema = z.looseObject({
  arch: z.looseObject({
    denseFeatures: z.number().int().positive(),
    tableRows: z.array(z.number().int().positive()).min(1),
    embeddingDim: z.number().int().positive(),
    bottomMlp: ints.min(2),
    topMlp: ints.min(2),
  }),
  quantization: z.looseObject({ embeddingBits: bits, mlpBits: bits }),
  learningRate: z.number(),
  initialParams: ParamsJsonSchema,
  steps: z.array(z.looseObject({
    batch: z.object({
      dense: z.array(nums),
      indices: z.array(ints),
      offsets: z.array(ints),
      labels: nums,
    }),
    expected: z.looseObject({
      probabilities: nums,
      loss: z.number(),
      gradients: ParamsJsonSchema,
      paramsAfterStep: ParamsJsonSchema,
    }),
  })).min(1),
});

/**
 * Parses fixture JSON, converting each step's batch into a {@linkcode BatchChunk}. Throws a
 * one-line `TypeError` naming what is wrong (not JSON, a missing or mistyped field by its path,
 * a batch whose tables do not match the architecture).
 */
export function parseFixture(text: string): GoldenFixture {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TypeError(`Expected a golden fixture in JSON but found: ${(e as Error).message}`);
  }
  const checked = FixtureJsonSchema.safeParse(json);
  if (!checked.success) {
    const issues = checked.error.issues;
    const what = issues.slice(0, 3).map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`);
    if (issues.length > 3) what.push(`${issues.length - 3} more`);
    throw new TypeError(`Expected a golden fixture but found: ${what.join("; ")}`);
  }
  // deno-lint-ignore no-explicit-any
  const raw = json as any;
  const tables = raw.arch.tableRows.length;
  raw.steps.forEach((step: { batch: { indices: unknown[]; offsets: unknown[] } }, i: number) => {
    for (const key of ["indices", "offsets"] as const) {
      if (step.batch[key].length !== tables) {
        throw new TypeError(
          `Expected steps.${i}.batch.${key} to hold ${tables} tables (arch.tableRows) but found ${
            step.batch[key].length
          }`,
        );
      }
    }
  });
  const steps = raw.steps.map((step: {
    batch: { dense: number[][]; indices: number[][]; offsets: number[][]; labels: number[] };
    expected: Record<string, unknown>;
  }) => {
    const b = step.batch;
    const n = b.labels.length;
    const offsets: Int32Array[] = [];
    for (let t = 0; t < tables; t++) {
      // Fixture offsets start each bag; the last bag runs to the end of the indices.
      offsets.push(Int32Array.from([...b.offsets[t], b.indices[t].length]));
    }
    const chunk: BatchChunk = {
      batchSize: n,
      samples: n,
      dense: Float32Array.from(b.dense.flat()),
      labels: Float32Array.from(b.labels),
      indices: b.indices.map((i) => Int32Array.from(i)),
      offsets,
    };
    const e = step.expected;
    return {
      batch: chunk,
      expected: {
        ...e,
        gradients: paramsFromJson(e.gradients as JsonParams),
        paramsAfterStep: paramsFromJson(e.paramsAfterStep as JsonParams),
      },
    };
  });
  return { ...raw, initialParams: paramsFromJson(raw.initialParams), steps };
}

/** The largest error of one tensor at one step. */
export interface GoldenRow {
  step: number;
  tensor: string;
  /** Largest |got - want|. */
  maxAbsError: number;
  /** Largest excess over the tolerance (<= 0 passes). */
  worstExcess: number;
  pass: boolean;
}

/** Compares `got` with `want` under {@linkcode GOLDEN_TOLERANCE}. */
export function compareTensor(
  step: number,
  tensor: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
): GoldenRow {
  if (got.length !== want.length) {
    return { step, tensor, maxAbsError: Infinity, worstExcess: Infinity, pass: false };
  }
  let maxAbsError = 0;
  let worstExcess = -Infinity;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const excess = Number.isNaN(err)
      ? Infinity
      : err - (GOLDEN_TOLERANCE.atol + GOLDEN_TOLERANCE.rtol * Math.abs(want[i]));
    maxAbsError = Math.max(maxAbsError, Number.isNaN(err) ? Infinity : err);
    worstExcess = Math.max(worstExcess, excess);
  }
  if (want.length === 0) worstExcess = 0;
  return { step, tensor, maxAbsError, worstExcess, pass: worstExcess <= 0 };
}

function compareParams(step: number, prefix: string, got: Params, want: Params): GoldenRow[] {
  const rows: GoldenRow[] = [];
  want.embeddings.forEach((w, t) =>
    rows.push(compareTensor(step, `${prefix}.embeddings[${t}]`, got.embeddings[t], w))
  );
  for (const part of ["bottom", "top"] as const) {
    want[part].forEach((w, l) => {
      rows.push(
        compareTensor(step, `${prefix}.${part}[${l}].weight`, got[part][l].weight, w.weight),
      );
      rows.push(compareTensor(step, `${prefix}.${part}[${l}].bias`, got[part][l].bias, w.bias));
    });
  }
  return rows;
}

/** The engine quantization settings a fixture describes (null for FP32 fixtures). */
export function fixtureQuantization(fixture: GoldenFixture): QuantConfig | null {
  const q = fixture.quantization;
  if (q.embeddingBits === null && q.mlpBits === null) return null;
  return {
    quantizer: "minmax",
    embeddingBits: q.embeddingBits,
    mlpBits: q.mlpBits,
    mlpGranularity: q.mlpGranularity,
    quantizeBias: q.biasQuantized,
    scalePeriod: q.scaleUpdatePeriod,
    gatheredRowsOnly: true,
  };
}

/**
 * Replays every step of `fixture` on the engine that `makeEngine` builds from its spec and
 * initial parameters, and returns the largest error of each tensor at each step.
 */
export async function runGolden(
  fixture: GoldenFixture,
  makeEngine: (
    spec: ModelSpec,
    params: Params,
    maxBatch: number,
    quantization: QuantConfig | null,
  ) => Promise<Engine>,
): Promise<GoldenRow[]> {
  const { interaction: _i, selfInteraction: _s, ...spec } = fixture.arch;
  const maxBatch = Math.max(...fixture.steps.map((s) => s.batch.batchSize));
  const engine = await makeEngine(
    spec,
    fixture.initialParams,
    maxBatch,
    fixtureQuantization(fixture),
  );
  const rows: GoldenRow[] = [];
  try {
    for (const [i, step] of fixture.steps.entries()) {
      const trace = await engine.traceStep(step.batch, { learningRate: fixture.learningRate });
      rows.push(
        compareTensor(i, "probabilities", trace.probabilities, step.expected.probabilities),
      );
      rows.push(compareTensor(i, "loss", [trace.loss], [step.expected.loss]));
      const scales = step.expected.embeddingScales;
      if (scales) {
        rows.push(compareTensor(i, "embeddingScales", await engine.embeddingScales(), scales));
      }
      rows.push(...compareParams(i, "gradients", trace.gradients, step.expected.gradients));
      const after = await engine.readParams();
      rows.push(...compareParams(i, "paramsAfterStep", after, step.expected.paramsAfterStep));
    }
  } finally {
    await engine.dispose();
  }
  return rows;
}
