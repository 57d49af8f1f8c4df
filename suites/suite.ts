/**
 * Suites: named, declarative lists of training runs that `deno task bench` executes.
 *
 * @module
 */
import { z } from "zod";
import { type RunConfig, RunConfigSchema } from "../reports/schema.ts";

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

/** Overrides a user may apply to every run of a suite from the command line. */
export type RunOverrides = Partial<
  Pick<
    RunConfig,
    | "engine"
    | "threads"
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
