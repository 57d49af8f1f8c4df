/**
 * Result files: written atomically (a temporary file renamed into place), so an interrupted
 * suite never leaves a half-written result, and read back for resuming and reporting; and
 * {@linkcode readFileShared}, which reads a file (a model file) into shared memory.
 *
 * @module
 */
import { writeFileAtomic } from "../data/files.ts";
import { parseRunResult, type RunResult } from "./schema.ts";

export { writeFileAtomic };

/** Path of a run's result file in an output folder. */
export function resultPath(dir: string, runName: string): string {
  return `${dir}/${runName}.json`;
}

/** Writes a run's result file atomically. */
export async function writeResult(dir: string, result: RunResult): Promise<string> {
  const path = resultPath(dir, result.config.name);
  await writeFileAtomic(path, JSON.stringify(result, null, 1) + "\n");
  return path;
}

/** Reads and validates a result file; `undefined` when it does not exist. */
export async function readResult(path: string): Promise<RunResult | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(
      `Expected JSON in ${path} but could not parse it: ${(e as Error).message}`,
    );
  }
  return parseRunResult(json, path);
}

/** Reads every result file of a folder (files that are not results are skipped). */
export async function readResults(dir: string): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".json") || entry.name === "suite.json") continue;
    const r = await readResult(`${dir}/${entry.name}`);
    if (r) results.push(r);
  }
  return results.sort((a, b) => a.config.name.localeCompare(b.config.name));
}

/**
 * Reads a file into a `SharedArrayBuffer`, so that packed tables viewed in it are shared with
 * the engine's Workers rather than copied to each.
 */
export async function readFileShared(path: string): Promise<Uint8Array> {
  const file = await Deno.open(path);
  try {
    const { size } = await file.stat();
    const bytes = new Uint8Array(new SharedArrayBuffer(size));
    for (let got = 0; got < size;) {
      const r = await file.read(bytes.subarray(got));
      if (r === null) throw new RangeError(`Expected ${size} bytes in ${path} but found ${got}`);
      got += r;
    }
    return bytes;
  } finally {
    file.close();
  }
}
