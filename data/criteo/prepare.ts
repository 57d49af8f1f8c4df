/**
 * What `deno task bench SUITE --data PATH` needs: a cache for PATH, whether PATH is already a
 * cache folder or raw Criteo files (preprocessed with the dataset's DLRM defaults into a cache
 * folder of the user's cache directory, reused while the files and options are unchanged); the
 * run overrides that point every run at it; and, for the runner, the data source of a run.
 *
 * @module
 */
import { createHash } from "node:crypto";
import {
  CACHE_VERSION,
  type CacheManifest,
  CacheOptionsSchema,
  MANIFEST_FILE,
  readManifest,
} from "./cache.ts";
import { preprocessCriteo, type PreprocessProgress } from "./preprocess.ts";
import type { CriteoRunData } from "./run_data.ts";
import { CriteoData } from "./source.ts";
import { resolveInput } from "./sources.ts";

/** Options of {@linkcode prepareCriteo}. */
export interface PrepareCriteoOptions {
  /** At most this many lines of each source file. */
  rows?: number;
  /** Terabyte: the number of days to use. */
  days?: number;
  /** Cache folder for raw input. Default: {@linkcode defaultCacheDir}. */
  cacheDir?: string;
  /** Stop at the first bad line. */
  strict?: boolean;
  onProgress?: (progress: PreprocessProgress) => void;
}

/** A prepared cache. */
export interface PreparedCriteo {
  /** The cache folder, for {@linkcode CriteoData.open}. */
  cache: string;
  manifest: CacheManifest;
  /** Whether nothing had to be built. */
  reused: boolean;
}

/**
 * The default cache folder of raw input at `path` (absolute): under `$DQRM_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/dqrm-bench`, else `~/.cache/dqrm-bench`, one folder per dataset and path.
 */
export function defaultCacheDir(dataset: "kaggle" | "terabyte", path: string): string {
  const root = Deno.env.get("DQRM_CACHE_DIR") ??
    `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "."}/.cache`}/dqrm-bench`;
  const name = path.slice(path.lastIndexOf("/") + 1).replace(/[^A-Za-z0-9._-]/g, "_");
  const key = createHash("sha256").update(path).digest("hex").slice(0, 12);
  return `${root}/criteo/${dataset}-${name}-${key}`;
}

/**
 * A cache for `path`: the folder itself when it holds a complete cache (its options are kept;
 * `rows` and `days` must then be unset), else a cache built from the raw files at `path` with
 * DLRM's defaults for the dataset (reused when current).
 */
export async function prepareCriteo(
  dataset: "kaggle" | "terabyte",
  path: string,
  options: PrepareCriteoOptions = {},
): Promise<PreparedCriteo> {
  const isCache = await Deno.stat(`${path}/${MANIFEST_FILE}`).then((s) => s.isFile, () => false);
  if (isCache) {
    const manifest = await readManifest(path);
    if (!manifest) {
      throw new RangeError(
        `Expected a cache of format version ${CACHE_VERSION} in ${path} but found another; rebuild it`,
      );
    }
    if (manifest.options.dataset !== dataset) {
      throw new RangeError(
        `Expected a ${dataset} cache in ${path} but found a ${manifest.options.dataset} one`,
      );
    }
    if (options.rows !== undefined || options.days !== undefined) {
      throw new RangeError(
        `Expected no row or day limit for the built cache ${path}; rebuild it with deno task preprocess`,
      );
    }
    return { cache: path, manifest, reused: true };
  }
  const absolute = await resolveInput(dataset, path);
  const cache = options.cacheDir ?? defaultCacheDir(dataset, absolute);
  const result = await preprocessCriteo({
    dataset,
    input: absolute,
    out: cache,
    rows: options.rows,
    days: options.days,
    strict: options.strict,
    onProgress: options.onProgress,
  });
  return { cache, manifest: result.manifest, reused: result.reused };
}

/** What `bench --data` overrides in every run of a suite. */
export interface CriteoRunOverrides {
  data: CriteoRunData;
  /** The whole training split, or `iterations × batch` when that is asked (and fits). */
  trainSamples: number;
  /** The whole test split, or fewer when asked. */
  testSamples: number;
}

/**
 * Prepares the cache for `bench SUITE --data PATH` and returns the run overrides: the data
 * record, and the training and test sizes (the whole splits unless fewer are asked for; more
 * than a split holds is a `RangeError`).
 */
export async function criteoRunOverrides(
  dataset: "kaggle" | "terabyte",
  path: string,
  options: PrepareCriteoOptions & { trainSamples?: number; testSamples?: number } = {},
): Promise<CriteoRunOverrides> {
  const prepared = await prepareCriteo(dataset, path, options);
  const { splits } = prepared.manifest;
  const pick = (name: string, asked: number | undefined, available: number) => {
    if (asked !== undefined && asked > available) {
      throw new RangeError(
        `Expected at most the ${available} ${name} samples of ${path} but ${asked} were asked for`,
      );
    }
    if ((asked ?? available) < 1) {
      throw new RangeError(`Expected ${name} samples in ${path} but found none`);
    }
    return asked ?? available;
  };
  return {
    data: {
      kind: "criteo",
      source: path,
      cache: await Deno.realPath(prepared.cache),
      options: prepared.manifest.options,
    },
    trainSamples: pick("training", options.trainSamples, splits.train.samples),
    testSamples: pick("test", options.testSamples, splits.test.samples),
  };
}

/**
 * Opens the cache of a run's data for training, checking that it is still built with the
 * options the run recorded (else a `RangeError`: run the benchmark again to rebuild it).
 */
export async function openCriteoRunData(data: CriteoRunData, seed: number): Promise<CriteoData> {
  const source = await CriteoData.open(data.cache, { seed });
  const built = source.manifest.options;
  if (JSON.stringify(built) !== JSON.stringify(CacheOptionsSchema.parse(data.options))) {
    throw new RangeError(
      `Expected the cache ${data.cache} built with ${JSON.stringify(data.options)} but found ${
        JSON.stringify(built)
      }`,
    );
  }
  return source;
}
