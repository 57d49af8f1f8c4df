/**
 * What a Criteo preprocessing build is asked for and answers (options, progress, result), the
 * options a cache records, and whether an existing cache can be reused for them.
 *
 * @module
 */
import {
  type CacheManifest,
  type CacheOptions,
  CacheOptionsSchema,
  checkChunkFiles,
  readManifest,
} from "./cache.ts";
import { crc32Prefix } from "./reader.ts";
import { sameSource, type SourceIdentity } from "./sources.ts";

/** Default samples per chunk file (about 10.5 MB). */
export const DEFAULT_CHUNK_SAMPLES = 65536;
/** Default frequency threshold (NVIDIA's DLRM preprocessing uses 15). */
export const DEFAULT_THRESHOLD = 15;

/** Options of `preprocessCriteo`. */
export interface PreprocessOptions {
  /** Split layout: `kaggle` (one `train.txt`, 7 parts) or `terabyte` (`day_0 … day_23`). */
  dataset: "kaggle" | "terabyte";
  /** Kaggle: `train.txt[.gz]` or its folder. Terabyte: the folder of days, or one day's file. */
  input: string;
  /** Cache folder (created when missing). */
  out: string;
  /** `hash` (DLRM: value mod max-ind-range, numbered by first appearance) or `frequency`. Default `hash`. */
  index?: "hash" | "frequency";
  /** DLRM's `--max-ind-range`; 0 for none. Default: Kaggle 0, Terabyte 10,000,000. */
  maxIndRange?: number;
  /** Frequency mode: values seen fewer times share row 0. Default 15. */
  threshold?: number;
  /** Fraction of negative lines dropped. Default: Kaggle 0, Terabyte 0.875 (as the paper). */
  subsampleRate?: number;
  /** Seed of the sub-sampling. Default 1. */
  seed?: number;
  /** At most this many lines of each source file. */
  rows?: number;
  /** Terabyte: use `day_0 … day_{days-1}` (the last one halved into test and validation). */
  days?: number;
  /** Samples per chunk file. Default 65,536. */
  chunkSamples?: number;
  /** Stop at the first bad line with `file:line: what` (a `CriteoFormatError`). */
  strict?: boolean;
  /** Parsing workers. Default: one per core. */
  workers?: number;
  /** Checksum every source (CRC-32) into the manifest. Default true. */
  checksum?: boolean;
  /**
   * Reusing a cache: also recompute the sources' whole CRC-32. Default false: path, size,
   * modification time and fingerprint (CRC-32 of the first and last MiB and 32 windows between).
   */
  verify?: boolean;
  /** Rebuild even when a complete cache with the same options and sources exists. */
  force?: boolean;
  /**
   * A folder of final dictionaries (`CACHE/dictionaries` of a complete cache) that map the values
   * (a test set read with a training set's rows): nothing is numbered, the table sizes are the
   * dictionaries', and a value they lack gets row 0. Their index mode must be `index`'s.
   */
  dictionaries?: string;
  /** Called about once a second while reading, and at each stage. */
  onProgress?: (progress: PreprocessProgress) => void;
}

/** Progress of a build. */
export interface PreprocessProgress {
  stage: "read" | "checkpoint" | "finish" | "done";
  /** Index of the source being read and the number of sources. */
  source: number;
  sources: number;
  /** Uncompressed bytes, lines and samples so far (this run). */
  textBytes: number;
  lines: number;
  samples: number;
  seconds: number;
}

/** What `preprocessCriteo` did. */
export interface PreprocessResult {
  /** The cache folder. */
  dir: string;
  manifest: CacheManifest;
  /** Whether an existing complete cache was reused without building. */
  reused: boolean;
  /** With `dictionaries`, after a build: each table's values that they lacked (row 0). */
  unseen?: number[];
}

/** The options a cache records, defaults filled in. */
export function resolveCacheOptions(options: PreprocessOptions): CacheOptions {
  const terabyte = options.dataset === "terabyte";
  const index = options.index ?? "hash";
  const parsed = CacheOptionsSchema.safeParse({
    dataset: options.dataset,
    index,
    maxIndRange: options.maxIndRange ?? (terabyte ? 10_000_000 : 0),
    threshold: index === "frequency" ? options.threshold ?? DEFAULT_THRESHOLD : 1,
    subsampleRate: options.subsampleRate ?? (terabyte ? 0.875 : 0),
    seed: options.seed ?? 1,
    rows: options.rows ?? null,
    days: options.days ?? null,
    chunkSamples: options.chunkSamples ?? DEFAULT_CHUNK_SAMPLES,
  });
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new RangeError(`Invalid preprocessing options: ${what.join("; ")}`);
  }
  return parsed.data;
}

/**
 * The complete cache in `dir` when it was built with `options` from exactly these sources (path,
 * size, modification time and fingerprint; the whole CRC-32 too with `verify`), else undefined.
 */
export async function reusableCache(
  dir: string,
  options: CacheOptions,
  identities: SourceIdentity[],
  verify: boolean,
): Promise<CacheManifest | undefined> {
  const manifest = await readManifest(dir).catch(() => undefined);
  if (!manifest || !sameOptions(manifest.options, options)) return undefined;
  // A single Terabyte day built before it was cut into 7 parts (nothing trained): rebuild.
  const { train } = manifest.splits;
  if (manifest.sources.length === 1 && train.samples === 0 && manifest.samples > 0) {
    return undefined;
  }
  if (
    manifest.sources.length !== identities.length ||
    !manifest.sources.every((s, i) => sameSource(s, identities[i]))
  ) return undefined;
  try {
    await checkChunkFiles(dir, manifest);
  } catch {
    return undefined;
  }
  if (verify) {
    for (const s of manifest.sources) {
      if (s.crc32 === null || (await crc32Prefix(s.path, s.hashedBytes)) !== s.crc32) {
        return undefined;
      }
    }
  }
  return manifest;
}

/** Whether two caches' options are the same once defaults are filled in. */
export function sameOptions(a: CacheOptions, b: CacheOptions): boolean {
  return JSON.stringify(CacheOptionsSchema.parse(a)) ===
    JSON.stringify(CacheOptionsSchema.parse(b));
}
