/**
 * Result records: the JSON that every run writes, validated by zod. JSON results are the source
 * of truth of every table and chart; `RESULT_SCHEMA_VERSION` changes when their shape does.
 *
 * @module
 */
import { z } from "zod";
import { pactActive, type QuantConfig, QuantConfigSchema } from "../engine/quant.ts";
import { ModelSpecSchema } from "../engine/spec.ts";
import { CPU_KERNEL_CHOICES } from "../engine/cpu/blas_library.ts";
import { CriteoRunDataSchema } from "../data/criteo/run_data.ts";
import { COMPRESSION_PRESET_NAMES, COMPRESSION_PRESETS } from "./presets.ts";
import { ResultExtrasShape } from "./schema_extra.ts";
import { migrateRunJson, ProvenanceSchema } from "./provenance.ts";

/**
 * Version of the result format: 2 added `provenance` (commit, dirty flag, machine); version 1
 * results are migrated on reading (`record/provenance.ts`).
 */
export const RESULT_SCHEMA_VERSION = 2;

/** Robust summary of a timing sample, in milliseconds. */
export const SummarySchema = z.object({
  n: z.number().int().nonnegative(),
  median: z.number(),
  mad: z.number(),
  mean: z.number(),
  p10: z.number(),
  p90: z.number(),
});

/** Where a run ran: recorded with every result. */
export const EnvironmentSchema = z.object({
  deno: z.string(),
  v8: z.string(),
  typescript: z.string(),
  os: z.string(),
  arch: z.string(),
  cpu: z.string(),
  cores: z.number().int().positive(),
  memoryBytes: z.number().nonnegative(),
  engine: z.object({
    name: z.string(),
    device: z.string(),
    threads: z.number().int().positive(),
    details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  }),
});

/** One evaluation of the test set. */
export const CurvePointSchema = z.object({
  iteration: z.number().int().nonnegative(),
  epoch: z.number().nonnegative(),
  accuracy: z.number(),
  auc: z.number(),
  logLoss: z.number(),
  /** Mean training loss since the previous point (null when no step was taken since). */
  trainLoss: z.number().nullable(),
});

/** Configuration of one training run. */
export const RunConfigSchema = z.object({
  /** Unique name within its suite; also the result file's name. */
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "lower-case letters, digits, '.', '_' or '-'"),
  /** How the model is quantized: the method's row in the paper's tables. */
  method: z.enum(["fp32", "ptq", "dqrm", "hawq", "lsq", "pact"]),
  /** Experiments (paper tables) this run belongs to, e.g. `["table2", "table3"]`. */
  experiments: z.array(z.string()),
  /** Quantization-aware training, or null to train in FP32. */
  quantization: QuantConfigSchema.nullable(),
  /** QAT starts at this epoch: 0 from scratch, 1 after one FP32 epoch (the paper's Table 8). */
  qatFromEpoch: z.number().int().nonnegative(),
  /** Post-training quantization before the final evaluation (vanilla PTQ), or null. */
  postTraining: z.object({
    embeddingBits: QuantConfigSchema.shape.embeddingBits,
    mlpBits: QuantConfigSchema.shape.mlpBits,
    quantizeBias: z.boolean(),
  }).nullable(),
  /**
   * Data-parallel training: the global batch split over `workers`, their gradients exchanged
   * under a compression preset (`record/presets.ts`). `mode`: `simulated` on one
   * single-threaded engine (the paper's Algorithm 1, the default), `workers` as real replicas
   * (one single-threaded CPU engine per Worker, or with engine gpu one GPU engine per Worker:
   * GPU ranks), or `accounting`: the bytes each worker would
   * send, counted on the run's batches, nothing trained (Table 4). Absent: one worker.
   */
  dataParallel: z.object({
    workers: z.number().int().min(2),
    compression: z.enum(COMPRESSION_PRESET_NAMES),
    mode: z.enum(["simulated", "workers", "accounting"]).default("simulated"),
  }).optional(),
  /** A run projected past these is stopped and recorded as "could-not-finish". */
  budget: z.object({
    /** Training seconds. */
    seconds: z.number().positive(),
    /** Bytes of memory the run may use (0: the machine's total less 2 GB). */
    memoryBytes: z.number().nonnegative(),
  }),
  arch: z.enum(["kaggle", "terabyte"]),
  /** Factor applied to every table's rows (1 = the paper's tables). */
  tableScale: z.number().positive().max(1),
  engine: z.enum(["cpu", "gpu"]),
  /** CPU threads (main thread included); 0 = every core. */
  threads: z.number().int().nonnegative(),
  /**
   * The CPU engine's matrix kernels as asked for: `wasm`, `blas` (native GEMM through FFI) or
   * `auto` (BLAS when its library opens); the kernels that ran are in the environment's engine
   * details (`cpuKernels`). Results from before the BLAS path ran `wasm`.
   */
  cpuKernels: z.enum(CPU_KERNEL_CHOICES).default("wasm"),
  batchSize: z.number().int().positive(),
  testBatchSize: z.number().int().positive(),
  learningRate: z.number().positive(),
  epochs: z.number().int().positive(),
  /** Training samples per epoch (synthetic data); rounded down to whole batches. */
  trainSamples: z.number().int().positive(),
  testSamples: z.number().int().positive(),
  /** Evaluate every this many iterations (0 = only at the end of each epoch). */
  evalEvery: z.number().int().nonnegative(),
  /** Iterations per engine call. */
  chunkIterations: z.number().int().positive(),
  /** Iterations excluded from timing summaries (warm-up). */
  warmupIterations: z.number().int().nonnegative(),
  seed: z.number().int().nonnegative(),
  /** Synthetic Criteo-shaped data, or a preprocessed Criteo cache (`bench --data`). */
  data: z.discriminatedUnion("kind", [
    z.object({ kind: z.literal("synthetic"), clickRate: z.number().gt(0).lt(1) }),
    CriteoRunDataSchema,
  ]),
}).superRefine((c, ctx) => {
  const dp = c.dataParallel;
  if (!dp) return;
  const issue = (path: string, message: string) =>
    ctx.addIssue({ code: "custom", path: ["dataParallel", path], message });
  if (c.batchSize % dp.workers !== 0) {
    issue(
      "workers",
      `Expected the batch size ${c.batchSize} to be a multiple of the ${dp.workers} data-parallel workers`,
    );
  }
  // On the GPU, workers are simulated on one engine or are GPU ranks (one engine per Worker).
  if (dp.mode !== "accounting" && c.engine === "gpu") {
    if (!COMPRESSION_PRESETS[dp.compression].sparseEmbeddings) {
      issue(
        "compression",
        `Expected sparse embedding gradients for data parallelism on the GPU but found ` +
          `${dp.compression} (dense gradients are the accounting baseline only)`,
      );
    }
  }
  if (dp.mode !== "accounting") {
    for (const message of dataParallelTrainingIssues(c)) issue("mode", message);
  }
});

/**
 * Why a run of `engine` with `quantization` cannot train data-parallel, one message each, or
 * none when it can: learned quantization parameters have no gradient exchange (LSQ's steps on
 * either engine, PACT's learned clips on the GPU). The rule {@linkcode RunConfigSchema} enforces
 * for data-parallel training, and that `withDataParallel` (`suites/suite.ts`) skips runs by.
 */
export function dataParallelTrainingIssues(
  c: { engine: "cpu" | "gpu"; quantization: QuantConfig | null },
): string[] {
  const issues: string[] = [];
  if (c.engine === "gpu" && pactActive(c.quantization)) {
    issues.push("Expected QAT without learned clips (not PACT) for data parallelism on the GPU");
  }
  if (c.quantization?.quantizer === "lsq") {
    issues.push("Expected a quantizer other than lsq for data-parallel training");
  }
  return issues;
}

/** Configuration of one run. */
export type RunConfig = z.infer<typeof RunConfigSchema>;

/** The record of one finished (or failed) run. */
export const RunResultSchema = z.object({
  ...ResultExtrasShape,
  schemaVersion: z.literal(RESULT_SCHEMA_VERSION),
  suite: z.string(),
  /** Commit, dirty flag and machine fingerprint the run was measured with. */
  provenance: ProvenanceSchema,
  config: RunConfigSchema,
  spec: ModelSpecSchema,
  status: z.enum(["ok", "failed", "could-not-finish"]),
  /** Why a run failed or could not finish. */
  error: z.string().optional(),
  /**
   * A run stopped when its time budget was spent ("could-not-finish"): it trained `iterations`
   * of its `of`, then was evaluated, so its metrics are those of a partly trained model.
   */
  partial: z.object({
    iterations: z.number().int().nonnegative(),
    of: z.number().int().positive(),
  }).optional(),
  startedAt: z.string(),
  finishedAt: z.string(),
  environment: EnvironmentSchema,
  iterations: z.number().int().nonnegative(),
  timing: z.object({
    /** Per-phase ms per iteration, warm-up excluded. */
    phases: z.record(z.string(), SummarySchema),
    /** Sum of the phases, per iteration. */
    total: SummarySchema,
    /** Wall-clock ms per iteration over the whole training, data generation included. */
    wallMsPerIteration: z.number(),
    /**
     * Wall-clock samples per second over the whole training (batch × 1000 /
     * `wallMsPerIteration`), data generation included; `total` is the phase-summed time.
     */
    samplesPerSecond: z.number(),
  }),
  memory: z.object({
    /** Peak resident set size of the process. */
    peakRssBytes: z.number().nonnegative(),
    /** Bytes the engine holds (parameters, gradients, activations). */
    engineBytes: z.number().nonnegative(),
    /** FP32 parameter bytes (embeddings + MLP). */
    parameterBytes: z.number().nonnegative(),
    /** Size of the deployable model file (`engine/model_file.ts`) of this run's bits. */
    modelFileBytes: z.number().nonnegative(),
  }),
  curve: z.array(CurvePointSchema),
  final: z.object({ accuracy: z.number(), auc: z.number(), logLoss: z.number() }).optional(),
  /** Best test accuracy and AUC seen (DLRM reports the best periodic test). */
  best: z.object({ accuracy: z.number(), auc: z.number() }).optional(),
  /** The synthetic teacher's own metrics on the test set: the ceiling. */
  ceiling: z.object({ accuracy: z.number(), auc: z.number(), logLoss: z.number() }).optional(),
});

/** The record of one run. */
export type RunResult = z.infer<typeof RunResultSchema>;

/**
 * Validates a result (migrating an older version first), throwing a `TypeError` naming every
 * wrong field and the file.
 */
export function parseRunResult(json: unknown, where = "result"): RunResult {
  const parsed = RunResultSchema.safeParse(migrateRunJson(json));
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new TypeError(`Invalid run result in ${where}: ${what.join("; ")}`);
  }
  return parsed.data;
}
