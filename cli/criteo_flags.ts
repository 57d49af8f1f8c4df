/**
 * The preprocessing flags of real Criteo data, shared by `deno task preprocess` and
 * `deno task bench --data` (declared once in `FLAGS`, read here alike).
 *
 * @module
 */
import type { PreprocessChoices } from "../data/criteo/mod.ts";
import { choiceFlag, FLAGS, type FlagValues, intFlag, UsageError } from "./args.ts";

/** The preprocessing flags, as both CLIs declare them. */
export const PREPROCESS_FLAGS = {
  index: FLAGS.index,
  "max-ind-range": FLAGS["max-ind-range"],
  threshold: FLAGS.threshold,
  subsample: FLAGS.subsample,
  rows: FLAGS.rows,
  days: FLAGS.days,
  strict: FLAGS.strict,
  "test-data": FLAGS["test-data"],
} as const;

/** The preprocessing flags' values. */
export type PreprocessFlagValues = FlagValues<typeof PREPROCESS_FLAGS>;

/** The preprocessing options the flags ask for (undefined where a flag is absent). */
export function preprocessChoices(values: PreprocessFlagValues): PreprocessChoices {
  const subsample = values.subsample === undefined ? undefined : Number(values.subsample);
  if (
    subsample !== undefined &&
    (values.subsample!.trim() === "" || !(subsample >= 0 && subsample < 1))
  ) {
    throw new UsageError(`--subsample expects a number in [0, 1) but found '${values.subsample}'`);
  }
  const index = choiceFlag("index", values.index, ["hash", "frequency"] as const);
  const threshold = intFlag("threshold", values.threshold);
  if (threshold !== undefined && index !== "frequency") {
    throw new UsageError("--threshold applies only with --index frequency");
  }
  return {
    index,
    maxIndRange: intFlag("max-ind-range", values["max-ind-range"], 0),
    threshold,
    subsampleRate: subsample,
    rows: intFlag("rows", values.rows),
    days: intFlag("days", values.days),
    strict: values.strict,
  };
}

/** The preprocessing flags given, as `--name` (to reject them where they do not apply). */
export function givenPreprocessFlags(values: PreprocessFlagValues): string[] {
  return Object.keys(PREPROCESS_FLAGS).filter((k) =>
    values[k as keyof PreprocessFlagValues] !== undefined
  ).map((k) => `--${k}`);
}
