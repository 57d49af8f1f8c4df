/**
 * Finds the raw files of a Criteo dataset: Kaggle's `train.txt` (a file, or a folder holding
 * `train.txt` or `train.txt.gz`) and Terabyte's `day_0 … day_23` (a folder of `day_N` or
 * `day_N.gz`, or a single day's file).
 *
 * @module
 */

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
    throw new Deno.errors.NotFound(`Expected a file or folder at ${input} but found none`);
  }
  if (info.isFile) {
    if (dataset === "terabyte" && days != null && days !== 1) {
      throw new RangeError(`Expected a folder of ${days} days but found the file ${input}`);
    }
    return [input];
  }
  if (dataset === "kaggle") {
    if (days != null) {
      throw new RangeError(
        `Expected no day limit for Kaggle (7 parts of one file) but found ${days}`,
      );
    }
    const file = await findFile(input, ["train.txt", "train.txt.gz"]);
    if (!file) {
      throw new Deno.errors.NotFound(
        `Expected train.txt or train.txt.gz in ${input} but found neither`,
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

/** The identity of a source file. */
export async function identifySource(path: string): Promise<SourceIdentity> {
  const absolute = await Deno.realPath(path);
  const info = await Deno.stat(absolute);
  return {
    path: absolute,
    file: absolute.slice(absolute.lastIndexOf("/") + 1),
    bytes: info.size,
    modifiedMs: info.mtime?.getTime() ?? null,
  };
}

/** Whether two identities name the same unchanged file. */
export function sameSource(a: SourceIdentity, b: SourceIdentity): boolean {
  return a.path === b.path && a.bytes === b.bytes && a.modifiedMs === b.modifiedMs;
}
