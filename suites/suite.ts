/**
 * Suites: named, declarative lists of training runs that `deno task bench` executes.
 *
 * @module
 */
import { z } from "zod";
import { dataParallelTrainingIssues, type RunConfig, RunConfigSchema } from "../record/schema.ts";
import {
  type BaseRun,
  type Experiment,
  type ExperimentSettings,
  paperRuns,
} from "./experiments.ts";

/** Zod schema of a suite. */
export const SuiteSchema = z.object({
  name: z.string(),
  description: z.string(),
  runs: z.array(RunConfigSchema).min(1),
}).superRefine((suite, ctx) => {
  const seen = new Set<string>();
  suite.runs.forEach((run, i) => {
    if (seen.has(run.name)) {
      ctx.addIssue({
        code: "custom",
        path: ["runs", i, "name"],
        message: `Expected unique run names but found "${run.name}" twice`,
      });
    }
    seen.add(run.name);
  });
});

/** A suite of runs. */
export type Suite = z.infer<typeof SuiteSchema>;

/** Options every built-in suite takes. */
export interface SuiteOptions {
  /** Experiments (paper tables) to run (default: Table 3). */
  experiments?: readonly Experiment[];
  /** The paper's scale instead of the small default. */
  paperScale?: boolean;
}

/** What a built-in suite is made of; only the numbers differ between datasets. */
export interface SuiteSettings {
  name: string;
  description: string;
  /**
   * What every run shares and the experiments' dataset settings, at the small default scale
   * (`paperScale` false) or the paper's.
   */
  at(paperScale: boolean): { base: BaseRun; experiments: ExperimentSettings };
}

/** The experiments a suite runs when none are asked for. */
const DEFAULT_EXPERIMENTS: readonly Experiment[] = ["table3"];

/** A built-in suite from its settings: its runs are those of the chosen experiments. */
export function defineSuite(settings: SuiteSettings): (options?: SuiteOptions) => Suite {
  return (options = {}) => {
    const { base, experiments } = settings.at(options.paperScale ?? false);
    return {
      name: settings.name,
      description: settings.description,
      runs: paperRuns(base, experiments, options.experiments ?? DEFAULT_EXPERIMENTS),
    };
  };
}

/** Overrides a user may apply to every run of a suite from the command line. */
export type RunOverrides = Partial<
  Pick<
    RunConfig,
    | "engine"
    | "threads"
    | "cpuKernels"
    | "batchSize"
    | "testBatchSize"
    | "learningRate"
    | "epochs"
    | "trainSamples"
    | "testSamples"
    | "evalEvery"
    | "seed"
    | "tableScale"
    | "data"
  >
>;

/** Applies overrides to every run and validates the result, naming any wrong value. */
export function withOverrides(suite: Suite, overrides: RunOverrides): Suite {
  const defined = Object.fromEntries(
    Object.entries(overrides).filter(([, v]) => v !== undefined),
  );
  const next = { ...suite, runs: suite.runs.map((r) => ({ ...r, ...defined })) };
  const parsed = SuiteSchema.safeParse(next);
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.slice(2).join(".")}: ${i.message}`);
    throw new RangeError(`Invalid suite settings: ${[...new Set(what)].join("; ")}`);
  }
  return parsed.data;
}

/** Data-parallel settings applied from the command line (`bench --workers N`). */
export interface DataParallelOverrides {
  /** Single-engine runs become data-parallel on this many workers. */
  workers?: number;
  /** Their gradient compression (default `sparse`). */
  compression?: NonNullable<RunConfig["dataParallel"]>["compression"];
  /**
   * How every training data-parallel run trains (accounting runs are left alone); default:
   * `workers` for the runs `workers` converts, each run's own for the others.
   */
  mode?: "workers" | "simulated";
}

/**
 * Applies data-parallel overrides: with `workers`, every run without data parallelism gets
 * `workers` workers, except LSQ runs (their learned steps have no gradient exchange) and PACT
 * runs on the GPU (nor have its learned clips), which stay single-engine and are named in
 * `skipped`; with `mode`, every training data-parallel run trains that way. Validates the
 * result as {@linkcode withOverrides} does (batch size a multiple of the workers; on the GPU,
 * sparse embedding gradients).
 */
export function withDataParallel(
  suite: Suite,
  o: DataParallelOverrides,
): { suite: Suite; skipped: string[] } {
  const skipped: string[] = [];
  if (o.workers === undefined && o.mode === undefined) return { suite, skipped };
  const runs = suite.runs.map((r): RunConfig => {
    // The schema's rule: learned quantization parameters have no gradient exchange.
    const learned = dataParallelTrainingIssues(r).length > 0;
    if (!r.dataParallel && o.workers !== undefined && learned) {
      skipped.push(r.name);
      return r;
    }
    if (!r.dataParallel && o.workers !== undefined) {
      return {
        ...r,
        dataParallel: {
          workers: o.workers,
          compression: o.compression ?? "sparse",
          mode: o.mode ?? "workers",
        },
      };
    }
    if (r.dataParallel && r.dataParallel.mode !== "accounting" && o.mode) {
      return { ...r, dataParallel: { ...r.dataParallel, mode: o.mode } };
    }
    return r;
  });
  return { suite: withOverrides({ ...suite, runs }, {}), skipped };
}
