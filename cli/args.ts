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
import {
  BLAS_LIBRARY_ENV,
  CPU_KERNEL_CHOICES,
  type CpuKernelChoice,
  DEFAULT_BLAS_LIBRARIES,
} from "../engine/cpu/blas_library.ts";

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
  "data-workers": {
    type: "string",
    arg: "N",
    help: "Workers that fill the training chunks while the engine trains (0: the main thread); " +
      "the data is the same bit for bit",
  },
  seed: { type: "string", arg: "N", help: "seed of the data and initialisation" },
  lr: { type: "string", arg: "X", help: "SGD learning rate" },
  engine: { type: "string", arg: "cpu|gpu", help: "engine to train on", default: "cpu" },
  "gpu-index": {
    type: "string",
    arg: "N",
    help: "with --engine gpu: the GPU this process opens, by its index in the Vulkan device " +
      "list (needs Mesa's device-select layer for N > 0)",
    default: "the Open MPI local rank, else the default adapter",
  },
  compression: { type: "string", arg: "PRESET", help: "gradient compression preset" },
  out: { type: "string", arg: "FILE", help: "also write the figures as JSON" },
  "cpu-kernels": {
    type: "string",
    arg: "wasm|blas|auto",
    help: "CPU engine's matrix products: WebAssembly SIMD, native BLAS GEMM through FFI, or " +
      "BLAS when its library opens",
  },
  "blas-lib": {
    type: "string",
    arg: "FILE",
    help:
      `BLAS library (oneDNN or a CBLAS) for --cpu-kernels blas|auto (default $${BLAS_LIBRARY_ENV}, else the first of ${
        DEFAULT_BLAS_LIBRARIES.join(", ")
      } that opens)`,
  },
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

/**
 * `--cpu-kernels` (default auto) and `--blas-lib`, for the tools that read them with
 * `cpuKernelsFlag(values, "auto")`.
 */
export const CPU_KERNEL_FLAGS = {
  "cpu-kernels": { ...FLAGS["cpu-kernels"], default: "auto" },
  "blas-lib": FLAGS["blas-lib"],
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
 * Parses `args` by the tool's spec with `node:util`'s `parseArgs`, strictly and with one-line
 * errors ({@link UsageError}): an unknown flag names the nearest known one (`did you mean
 * --iterations?`), a flag that takes a value takes the next argument even when it is a negative
 * number (`--lr -1`; the range check then rejects it), a missing value, a value given to a switch
 * and a flag given twice with different values are named. Returns undefined on `-h` / `--help`,
 * after printing the help unless `printHelp` is false (MPI tools print it on rank 0 only).
 */
export function parseCli<const O extends Record<string, FlagSpec>>(
  spec: CliSpec<O>,
  args: string[] = Deno.args,
  printHelp = true,
): { values: FlagValues<O>; positionals: string[] } | undefined {
  const flags = new Map<string, FlagSpec>([
    ...Object.entries(spec.options),
    ["help", HELP_FLAG],
  ]);
  const shorts = new Map<string, string>();
  for (const [name, f] of flags) if (f.short) shorts.set(f.short, name);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: withNegativeValuesInline(args, flags, shorts),
      options: Object.fromEntries(
        [...flags].map(([name, f]) => [name, {
          type: f.type,
          ...(f.short ? { short: f.short } : {}),
          ...(f.multiple ? { multiple: true } : {}),
        }]),
      ),
      strict: true,
      allowPositionals: spec.positionals ?? true,
      tokens: true,
    });
  } catch (e) {
    throw usageErrorOf(e, args, flags, shorts);
  }
  // parseArgs keeps the last of a repeated flag: a second, different value is a mistake.
  const seen = new Map<string, string | undefined>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== "option" || flags.get(token.name)?.multiple) continue;
    if (seen.has(token.name) && seen.get(token.name) !== token.value) {
      throw new UsageError(
        `${token.rawName} given twice ('${
          seen.get(token.name)
        }' and '${token.value}'); give it once`,
      );
    }
    seen.set(token.name, token.value);
  }
  if (parsed.values.help) {
    if (printHelp) console.log(helpText(spec));
    return undefined;
  }
  const { help: _, ...values } = parsed.values;
  return { values: values as FlagValues<O>, positionals: parsed.positionals };
}

/** A negative number (`-5`, `-0.1`, `-1e-3`): a value, never a flag. */
const NEGATIVE_NUMBER = /^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/**
 * `args` with a negative number after a flag that takes a value joined to it (`--lr=-1`,
 * `-n-1`): `parseArgs` would otherwise call it ambiguous, in three lines.
 */
function withNegativeValuesInline(
  args: readonly string[],
  flags: ReadonlyMap<string, FlagSpec>,
  shorts: ReadonlyMap<string, string>,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const name = arg.startsWith("--") ? arg.slice(2) : /^-\w$/.test(arg) ? shorts.get(arg[1]) : "";
    const next = args[i + 1];
    if (
      name && flags.get(name)?.type === "string" && next !== undefined &&
      NEGATIVE_NUMBER.test(next)
    ) {
      out.push(arg.startsWith("--") ? `${arg}=${next}` : `${arg}${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** `parseArgs`'s error (several lines, Node's wording) as one line of ours. */
function usageErrorOf(
  error: unknown,
  args: readonly string[],
  flags: ReadonlyMap<string, FlagSpec>,
  shorts: ReadonlyMap<string, string>,
): Error {
  if (!(error instanceof TypeError)) return error as Error;
  const code = (error as TypeError & { code?: string }).code;
  const quoted = /'([^']*)'/.exec(error.message)?.[1] ?? "";
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const long = quoted.startsWith("--");
    const near = long ? nearestFlag(quoted.slice(2), [...flags.keys()]) : undefined;
    return new UsageError(`Unknown option '${quoted}'${near ? `; did you mean --${near}?` : ""}`);
  }
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
    return new UsageError(`expected no arguments besides flags but found '${quoted}'`);
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    // The quoted part is "-s, --name <value>", "--name <value>" or "--name".
    const name = /--([\w-]+)/.exec(quoted)?.[1] ?? shorts.get(quoted.slice(1, 2)) ?? quoted;
    const f = flags.get(name);
    const shown = `--${name}`;
    if (f?.type === "boolean") {
      const given = args.find((a) => a.startsWith(`${shown}=`))?.slice(shown.length + 1);
      return new UsageError(`${shown} takes no value but found '${given ?? ""}'`);
    }
    const at = args.findIndex((a) =>
      a === shown || (f?.short !== undefined && a === `-${f.short}`)
    );
    const next = at >= 0 ? args[at + 1] : undefined;
    return new UsageError(
      `${shown} expects a value${f?.arg ? ` ${f.arg}` : ""} but found ${
        next === undefined ? "none" : `the flag '${next}'`
      }`,
    );
  }
  return new UsageError(error.message.split("\n")[0]);
}

/**
 * The known flag nearest to an unknown one: one that starts with it, else the closest by edit
 * distance (adjacent swaps count one) within a third of its length, at least 2. Undefined when
 * none is near.
 *
 * @example
 * ```ts
 * import { nearestFlag } from "./args.ts";
 * console.assert(nearestFlag("iteration", ["iterations", "seed"]) === "iterations");
 * console.assert(nearestFlag("bogus", ["iterations", "seed"]) === undefined);
 * ```
 */
export function nearestFlag(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  if (lower.length >= 3) {
    const prefixed = known.filter((k) => k.startsWith(lower));
    if (prefixed.length === 1) return prefixed[0];
  }
  let best: string | undefined, bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(lower, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.max(2, Math.floor(lower.length / 3)) ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => {
    const row = new Array<number>(b.length + 1).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
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

/**
 * The CPU engine's kernels from `--cpu-kernels` (`fallback` when absent). `--blas-lib FILE` sets
 * `DQRM_BLAS_LIB` for this process, so that every CPU engine it creates (Workers, replicas,
 * suites) opens that file.
 */
export function cpuKernelsFlag(
  values: { "cpu-kernels"?: string; "blas-lib"?: string },
  fallback: CpuKernelChoice,
): CpuKernelChoice {
  if (values["blas-lib"] !== undefined) Deno.env.set(BLAS_LIBRARY_ENV, values["blas-lib"]);
  return choiceFlag("cpu-kernels", values["cpu-kernels"], CPU_KERNEL_CHOICES) ?? fallback;
}

/** Parses an integer flag value (undefined stays undefined). */
export function intFlag(name: string, value: string, min?: number): number;
export function intFlag(name: string, value: string | undefined, min?: number): number | undefined;
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

/** The integers of a comma-separated `--flag` value (each at least `min`). */
export function intList(flag: string, value: string, min = 1): number[] {
  return value.split(",").map((s) => intFlag(flag, s.trim(), min));
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
