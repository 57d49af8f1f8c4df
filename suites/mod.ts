/**
 * The benchmark suites and the runner that executes them.
 *
 * @module
 */
import { kaggleSuite } from "./kaggle/mod.ts";
import type { Suite, SuiteOptions } from "./suite.ts";
import { terabyteSuite } from "./terabyte/mod.ts";

export { kaggleSuite } from "./kaggle/mod.ts";
export { terabyteSuite } from "./terabyte/mod.ts";
export * from "./suite.ts";
export * from "./runner.ts";
export * from "./experiments.ts";
export * from "./progress.ts";

/** Every built-in suite by name. */
export const SUITES: Record<string, (options?: SuiteOptions) => Suite> = {
  kaggle: kaggleSuite,
  terabyte: terabyteSuite,
};
