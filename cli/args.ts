/**
 * Small helpers for the command-line tools: one-line usage errors and typed flag values.
 *
 * @module
 */

/** A usage error: printed as one line, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
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
