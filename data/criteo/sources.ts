/**
 * Finds the raw files of a Criteo dataset: Kaggle's `train.txt` (a file, or a folder holding
 * `train.txt` or `train.txt.gz`) and Terabyte's `day_0 … day_23` (a folder of `day_N` or
 * `day_N.gz`, or a single day's file), and tells whether a file changed since a cache was built.
 *
 * @module
 */
import { MANIFEST_FILE } from "./cache.ts";
import { CriteoInputError } from "./format.ts";
import { crc32OfRanges } from "./reader.ts";

/** Number of Terabyte days. */
export const TERABYTE_DAYS = 24;

/** Size, time and absolute path of a source file: what tells a cache it is still current. */
export interface SourceIdentity {
  /** Absolute path. */
  path: string;
  /** File name. */
  file: string;
  /** Size in bytes. */
  bytes: number;
  /** Modification time in ms since the epoch, when known. */
  modifiedMs: number | null;
  /**
   * CRC-32 (8 hex digits) of sampled bytes of the file as stored: its first and last MiB and
   * {@linkcode FINGERPRINT_WINDOWS} windows of 64 KiB evenly spaced between (the whole file when
   * it is smaller than all of them).
   */
  fingerprint: string;
}

/** Bytes at each end of a file that its fingerprint covers. */
export const FINGERPRINT_END_BYTES = 1 << 20;
/** Windows of 64 KiB between the ends that a fingerprint covers. */
export const FINGERPRINT_WINDOWS = 32;
const WINDOW_BYTES = 1 << 16;

/** The fingerprint of a file of `size` bytes (see {@linkcode SourceIdentity.fingerprint}). */
export function fingerprintFile(path: string, size: number): Promise<string> {
  const ranges: [number, number][] = [];
  const sampled = 2 * FINGERPRINT_END_BYTES + FINGERPRINT_WINDOWS * WINDOW_BYTES;
  if (size <= sampled) {
    ranges.push([0, size]);
  } else {
    ranges.push([0, FINGERPRINT_END_BYTES]);
    const middle = size - 2 * FINGERPRINT_END_BYTES;
    const step = Math.floor(middle / FINGERPRINT_WINDOWS);
    for (let w = 0; w < FINGERPRINT_WINDOWS; w++) {
      ranges.push([FINGERPRINT_END_BYTES + w * step, WINDOW_BYTES]);
    }
    ranges.push([size - FINGERPRINT_END_BYTES, FINGERPRINT_END_BYTES]);
  }
  return crc32OfRanges(path, ranges);
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** The first of `names` that is a file in `dir`, or undefined. */
async function findFile(dir: string, names: string[]): Promise<string | undefined> {
  for (const name of names) {
    const info = await statOrNull(`${dir}/${name}`);
    if (info?.isFile) return `${dir}/${name}`;
  }
  return undefined;
}

/**
 * The source files of a dataset, in order. `days` (Terabyte) takes `day_0 … day_{days-1}`, each
 * required; without it, every consecutive day from `day_0` that exists.
 */
export async function findSources(
  dataset: "kaggle" | "terabyte",
  input: string,
  days?: number | null,
): Promise<string[]> {
  const info = await statOrNull(input);
  if (info === null) {
    throw new CriteoInputError(
      `Expected ${expectedInput(dataset)} at ${input} but found nothing there`,
    );
  }
  if (info.isFile) {
    if (dataset === "terabyte" && days != null && days !== 1) {
      throw new RangeError(`Expected a folder of ${days} days but found the file ${input}`);
    }
    return [input];
  }
  await checkNotIncompleteCache(input);
  if (dataset === "kaggle") {
    if (days != null) {
      throw new RangeError(
        `Expected no day limit for Kaggle (7 parts of one file) but found ${days}`,
      );
    }
    const file = await findFile(input, ["train.txt", "train.txt.gz"]);
    if (!file) {
      throw new CriteoInputError(
        `Expected train.txt or train.txt.gz in the folder ${input} (or pass the file itself) but found neither`,
      );
    }
    return [file];
  }
  if (days != null && !(Number.isInteger(days) && days >= 1 && days <= TERABYTE_DAYS)) {
    throw new RangeError(`Expected a day count in [1, ${TERABYTE_DAYS}] but found ${days}`);
  }
  const files: string[] = [];
  for (let d = 0; d < (days ?? TERABYTE_DAYS); d++) {
    const file = await findFile(input, [`day_${d}`, `day_${d}.gz`]);
    if (!file) {
      if (days == null && d > 0) break;
      throw new Deno.errors.NotFound(
        `Expected day_${d} or day_${d}.gz in ${input} but found neither`,
      );
    }
    files.push(file);
  }
  return files;
}

/** What `--data` / `preprocess` expect as input for a dataset, in words. */
export function expectedInput(dataset: "kaggle" | "terabyte"): string {
  return dataset === "kaggle"
    ? "Kaggle's train.txt[.gz] (TSV, or the competition's train.csv), or a folder holding it, or a cache folder"
    : "a folder of Terabyte's day_0 … day_23[.gz] (or one day's file), or a cache folder";
}

/** File a build writes first and removes last: what its input was, to rebuild. */
export const BUILD_FILE = "build.json";

/**
 * Throws a {@linkcode CriteoInputError} when `dir` is a cache folder whose build did not finish
 * (chunks or a checkpoint, no manifest): naming it and how to rebuild it.
 */
export async function checkNotIncompleteCache(dir: string): Promise<void> {
  const has = (name: string) => statOrNull(`${dir}/${name}`);
  if (await has(MANIFEST_FILE)) return;
  const build = await has(BUILD_FILE);
  if (!build && !(await has("progress.json")) && !(await has("chunks"))?.isDirectory) return;
  let how = "deno task preprocess DATASET RAW_INPUT --out " + dir;
  try {
    const info = JSON.parse(await Deno.readTextFile(`${dir}/${BUILD_FILE}`));
    how = `deno task preprocess ${info.dataset} ${info.input} --out ${dir}`;
  } catch {
    // No record of the input: the generic command.
  }
  throw new CriteoInputError(
    `The cache at ${dir} is incomplete (no manifest.json: its build was interrupted); rebuild it with ${how} (it resumes after its last finished file), or pass --data the raw files`,
  );
}

/** The identity of a source file. */
export async function identifySource(path: string): Promise<SourceIdentity> {
  const absolute = await Deno.realPath(path);
  const info = await Deno.stat(absolute);
  return {
    path: absolute,
    file: absolute.slice(absolute.lastIndexOf("/") + 1),
    bytes: info.size,
    modifiedMs: info.mtime?.getTime() ?? null,
    fingerprint: await fingerprintFile(absolute, info.size),
  };
}

/**
 * Whether two identities name the same unchanged file: path, size, modification time and
 * fingerprint (sampled CRC-32) all equal.
 */
export function sameSource(a: SourceIdentity, b: SourceIdentity): boolean {
  return a.path === b.path && a.bytes === b.bytes && a.modifiedMs === b.modifiedMs &&
    a.fingerprint === b.fingerprint;
}

/**
 * The absolute path of `--data`'s input, or a one-line {@linkcode CriteoInputError} naming the
 * path and what was expected there.
 */
export async function resolveInput(
  dataset: "kaggle" | "terabyte",
  path: string,
): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "nothing there"
      : e instanceof Deno.errors.PermissionDenied
      ? "no permission to read it"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new CriteoInputError(`Expected ${expectedInput(dataset)} at ${path} but found ${why}`);
  }
}
