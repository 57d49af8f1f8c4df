/**
 * The command-line tools' shared vocabulary: one name per concept (`--batch-size`,
 * `--iterations`, `--scale`, the suite as the first positional), one `--help` layout (usage
 * line, description, options table with defaults), one-line usage errors and typed flag values.
 *
 * Each tool declares its flags with {@link defineCli} and parses them with {@link parseCli}:
 *
 * @example Declaring and parsing a tool's flags
 * ```ts
 * import { defineCli, FLAGS, helpText, intFlag, parseCli } from "./args.ts";
 *
 * const cli = defineCli({
 *   usage: "deno task demo [SUITE] [options]",
 *   description: "Trains a demo.",
 *   options: {
 *     "batch-size": { ...FLAGS["batch-size"], default: "128" },
 *     iterations: FLAGS.iterations,
 *     quiet: { type: "boolean", help: "no progress lines" },
 *   },
 * });
 * const parsed = parseCli(cli, ["kaggle", "--batch-size", "64"]);
 * if (parsed === undefined) throw new Error("--help was asked for");
 * const batchSize = intFlag("batch-size", parsed.values["batch-size"]) ?? 128;
 * console.assert(batchSize === 64 && parsed.positionals[0] === "kaggle");
 * console.assert(helpText(cli).includes("--batch-size N"));
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

/** A usage error: printed as one line, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One flag: its value type, placeholder, help text and the default shown in `--help`. */
export interface FlagSpec {
  /** `string` flags take a value; `boolean` flags do not. */
  readonly type: "string" | "boolean";
  /** The value's placeholder in the help table (`N`, `X`, `FILE`); string flags only. */
  readonly arg?: string;
  /** What the flag does (wrapped to the help table's width). */
  readonly help: string;
  /** The default as shown in `--help`, appended as `(default …)`. */
  readonly default?: string;
  /** One-letter alias. */
  readonly short?: string;
  /** The flag may repeat; its value is then a list. */
  readonly multiple?: boolean;
}

/** The shared flags: one name, placeholder and meaning per concept in every tool. */
export const FLAGS = {
  "batch-size": { type: "string", arg: "N", help: "training batch size" },
  iterations: { type: "string", arg: "N", help: "training iterations" },
  scale: {
    type: "string",
    arg: "X",
    help: "scale every embedding table's rows by X, in (0, 1]",
  },
  threads: { type: "string", arg: "N", help: "CPU threads, the main thread included" },
  workers: { type: "string", arg: "N", help: "data-parallel workers" },
  seed: { type: "string", arg: "N", help: "seed of the data and initialisation" },
  lr: { type: "string", arg: "X", help: "SGD learning rate" },
  engine: { type: "string", arg: "cpu|gpu", help: "engine to train on", default: "cpu" },
  compression: { type: "string", arg: "PRESET", help: "gradient compression preset" },
  out: { type: "string", arg: "FILE", help: "also write the figures as JSON" },
  quiet: { type: "boolean", help: "no progress lines" },
  // Preprocessing real Criteo data (preprocess, bench --data): cli/criteo_flags.ts reads them.
  index: {
    type: "string",
    arg: "hash|frequency",
    help: "hash: value mod max-ind-range, numbered by first appearance (DLRM); frequency: " +
      "values seen fewer than --threshold times share row 0",
    default: "hash",
  },
  "max-ind-range": {
    type: "string",
    arg: "N",
    help: "DLRM's --max-ind-range: categorical values modulo N, 0 for none",
    default: "Kaggle 0, Terabyte 10000000",
  },
  threshold: { type: "string", arg: "N", help: "frequency mode's threshold", default: "15" },
  subsample: {
    type: "string",
    arg: "X",
    help: "fraction of negative lines dropped, in [0, 1)",
    default: "Kaggle 0, Terabyte 0.875",
  },
  rows: { type: "string", arg: "N", help: "read at most N lines of each raw file" },
  days: {
    type: "string",
    arg: "N",
    help: "Terabyte: use day_0 … day_{N-1}; the last is halved into test/validation (one day: " +
      "cut into 7 parts as Kaggle's file, part 6 halved)",
  },
  strict: {
    type: "boolean",
    help: "stop at the first bad line with file:line: what",
    default: "skip, count",
  },
  "test-data": {
    type: "string",
    arg: "FILE",
    help: "a separate test set: a raw Criteo file read with the training data's modulo and " +
      "dictionaries (a value they lack gets row 0), not sub-sampled; the whole training data " +
      "then trains",
  },
} as const satisfies Record<string, FlagSpec>;

/** A tool's command line: its usage line, description and flags (`--help` is added). */
export interface CliSpec<O extends Record<string, FlagSpec> = Record<string, FlagSpec>> {
  /** The usage line without `Usage: `, e.g. `deno task bench SUITE [options]`. */
  readonly usage: string;
  /** Paragraphs printed under the usage line, as written. */
  readonly description: string;
  /** The flags, by long name. */
  readonly options: O;
  /** Whether positional arguments are accepted (default true). */
  readonly positionals?: boolean;
}

/** The parsed value of one flag. */
export type FlagValue<F extends FlagSpec> = F["type"] extends "boolean" ? boolean | undefined
  : F["multiple"] extends true ? string[] | undefined
  : string | undefined;

/** The parsed values of a tool's flags. */
export type FlagValues<O extends Record<string, FlagSpec>> = { [K in keyof O]: FlagValue<O[K]> };

/** Declares a tool's command line (keeps the flag names' literal types). */
export function defineCli<const O extends Record<string, FlagSpec>>(spec: CliSpec<O>): CliSpec<O> {
  return spec;
}

const HELP_FLAG: FlagSpec = { type: "boolean", short: "h", help: "this help" };
const WIDTH = 100;

/** The `--help` text of a tool: usage line, description, options table with defaults. */
export function helpText(spec: CliSpec): string {
  const rows = [...Object.entries(spec.options), ["help", HELP_FLAG] as const].map(
    ([name, f]) => {
      const flag = `${f.short ? `-${f.short}, ` : ""}--${name}${f.arg ? ` ${f.arg}` : ""}`;
      const text = f.default === undefined ? f.help : `${f.help} (default ${f.default})`;
      return [flag, text] as const;
    },
  );
  const col = Math.max(...rows.map(([flag]) => flag.length)) + 4;
  const lines = [`Usage: ${spec.usage}`, "", spec.description.trim(), "", "Options:"];
  for (const [flag, text] of rows) {
    const wrapped = wrap(text, WIDTH - col);
    lines.push(`  ${flag.padEnd(col - 2)}${wrapped[0]}`);
    for (const more of wrapped.slice(1)) lines.push(" ".repeat(col) + more);
  }
  return lines.join("\n") + "\n";
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/**
 * Parses `args` by the tool's spec (strictly: an unknown flag or a missing value is a
 * {@link UsageError}). Returns undefined on `-h` / `--help`, after printing the help unless
 * `printHelp` is false (MPI tools print it on rank 0 only).
 */
export function parseCli<const O extends Record<string, FlagSpec>>(
  spec: CliSpec<O>,
  args: string[] = Deno.args,
  printHelp = true,
): { values: FlagValues<O>; positionals: string[] } | undefined {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const [name, f] of [...Object.entries(spec.options), ["help", HELP_FLAG] as const]) {
    options[name] = {
      type: f.type,
      ...(f.short ? { short: f.short } : {}),
      ...(f.multiple ? { multiple: true } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: spec.positionals ?? true,
    });
  } catch (e) {
    if (e instanceof TypeError) throw new UsageError(e.message.split("\n")[0]);
    throw e;
  }
  if (parsed.values.help) {
    if (printHelp) console.log(helpText(spec));
    return undefined;
  }
  return { values: parsed.values as FlagValues<O>, positionals: parsed.positionals };
}

/**
 * The suite named by the first positional argument (the same way in every tool:
 * `deno task bench kaggle`, `deno task bench:cpu terabyte`). With a `fallback`, no positional
 * means the fallback; otherwise exactly one is required. Extra positionals are an error.
 */
export function suiteArg<T extends string>(
  positionals: readonly string[],
  suites: readonly T[],
  fallback?: T,
): T {
  if (positionals.length === 0 && fallback !== undefined) return fallback;
  if (positionals.length !== 1) {
    throw new UsageError(
      `expected ${fallback === undefined ? "one" : "at most one"} suite name (${
        suites.join(", ")
      }) but found ${positionals.length ? positionals.map((p) => `'${p}'`).join(" ") : "none"}`,
    );
  }
  const name = positionals[0];
  if (!suites.includes(name as T)) {
    throw new UsageError(`unknown suite '${name}'; expected one of ${suites.join(", ")}`);
  }
  return name as T;
}
/** Parses an integer flag value (undefined stays undefined). */
export function intFlag(
  name: string,
  value: string | undefined,
  min = 1,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${name} expects an integer >= ${min} but found '${value}'`);
  }
  return n;
}

/** Parses a number flag value in `(min, max]`. */
export function numberFlag(
  name: string,
  value: string | undefined,
  min: number,
  max = Infinity,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= min || n > max) {
    const range = max === Infinity ? `> ${min}` : `in (${min}, ${max}]`;
    throw new UsageError(`--${name} expects a number ${range} but found '${value}'`);
  }
  return n;
}

/** Parses a choice flag value. */
export function choiceFlag<T extends string>(
  name: string,
  value: string | undefined,
  choices: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!choices.includes(value as T)) {
    throw new UsageError(`--${name} expects one of ${choices.join(", ")} but found '${value}'`);
  }
  return value as T;
}

/**
 * Runs a command-line main function: usage errors and expected failures print one line naming
 * the tool and the cause (no stack trace) and exit non-zero.
 */
export async function runMain(tool: string, main: () => Promise<number>): Promise<void> {
  try {
    Deno.exit(await main());
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const usage = e instanceof UsageError ||
      (e instanceof TypeError && /option|argument/i.test(message));
    console.error(`${tool}: ${message}${usage ? ` (see --help)` : ""}`);
    if (Deno.env.get("DQRM_DEBUG")) console.error(e);
    Deno.exit(usage ? 2 : 1);
  }
}
