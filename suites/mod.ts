/**
 * The benchmark suites and the runner that executes them.
 *
 * @module
 */
import { kaggleSuite } from "./kaggle/mod.ts";
import type { Suite } from "./suite.ts";
import type { Experiment } from "./experiments.ts";
import { terabyteSuite } from "./terabyte/mod.ts";

export { kaggleSuite } from "./kaggle/mod.ts";
export { terabyteSuite } from "./terabyte/mod.ts";
export * from "./suite.ts";
export * from "./runner.ts";
export * from "./experiments.ts";

/** Options every built-in suite takes. */
export interface SuiteOptions {
  /** Experiments (paper tables) to run. */
  experiments?: readonly Experiment[];
  /** The paper's scale instead of the small default. */
  paperScale?: boolean;
}

/** Every built-in suite by name. */
export const SUITES: Record<string, (options?: SuiteOptions) => Suite> = {
  kaggle: kaggleSuite,
  terabyte: terabyteSuite,
};
