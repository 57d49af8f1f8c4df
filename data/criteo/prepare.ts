/**
 * What `deno task bench SUITE --data PATH [--test-data FILE]` needs: a cache for PATH, whether
 * PATH is already a cache folder or raw Criteo files (preprocessed with the dataset's DLRM
 * defaults, or the options asked for, into a cache folder of the user's cache directory, reused
 * while the files and options are unchanged); a test set read through its dictionaries; the run
 * overrides that point every run at them; and, for the runner, the data source of a run.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { BatchChunk } from "../../engine/batch.ts";
import {
  CACHE_VERSION,
  type CacheManifest,
  type CacheOptions,
  CacheOptionsSchema,
  chunkFileName,
  chunkLayout,
  MANIFEST_FILE,
  readManifest,
} from "./cache.ts";
import {
  cacheDictionaries,
  describeUnseen,
  type MappedCache,
  prepareMappedCache,
  readMapped,
} from "./indexing.ts";
import { preprocessCriteo, type PreprocessOptions, type PreprocessProgress } from "./preprocess.ts";
import type { CriteoRunData } from "./run_data.ts";
import { CriteoData, type CriteoStream } from "./source.ts";
import { resolveInput } from "./sources.ts";
import { splitRule, splitsOf } from "./splits.ts";

/** The preprocessing options `bench --data` accepts (as `deno task preprocess` does). */
export type PreprocessChoices = Pick<
  PreprocessOptions,
  "index" | "maxIndRange" | "threshold" | "subsampleRate" | "rows" | "days" | "strict"
>;

/** Options of {@linkcode prepareCriteo}. */
export interface PrepareCriteoOptions extends PreprocessChoices {
  /** Cache folder for raw input. Default: {@linkcode defaultCacheDir}. */
  cacheDir?: string;
  /** Make sure the cache holds its final dictionaries (rebuilding a raw input's cache). */
  dictionaries?: boolean;
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
 * A cache for `path`: the folder itself when it holds a complete cache (its options are kept:
 * `rows` and `days` must then be unset, and other options asked for must be its own), else a
 * cache built from the raw files at `path` with the options asked for over DLRM's defaults for the
 * dataset (reused when current). A cache without a sample is a `RangeError`.
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
    checkBuiltOptions(path, manifest.options, options);
    if (options.dictionaries) {
      await cacheDictionaries(path, manifest).catch((e) => {
        throw new RangeError(
          `${e.message}: the cache ${path} predates saved dictionaries; rebuild it with deno task preprocess --force`,
        );
      });
    }
    return checkSamples(path, { cache: path, manifest, reused: true });
  }
  const absolute = await resolveInput(dataset, path);
  const cache = options.cacheDir ?? defaultCacheDir(dataset, absolute);
  const build = (force: boolean) =>
    preprocessCriteo({
      dataset,
      input: absolute,
      out: cache,
      index: options.index,
      maxIndRange: options.maxIndRange,
      threshold: options.threshold,
      subsampleRate: options.subsampleRate,
      rows: options.rows,
      days: options.days,
      strict: options.strict,
      force,
      onProgress: options.onProgress,
    });
  let result = await build(false);
  if (options.dictionaries && result.reused) {
    // A cache built before caches kept their dictionaries: build it again.
    const has = await cacheDictionaries(cache, result.manifest).then(() => true, () => false);
    if (!has) result = await build(true);
  }
  return checkSamples(path, { cache, manifest: result.manifest, reused: result.reused });
}

function checkSamples(path: string, prepared: PreparedCriteo): PreparedCriteo {
  const m = prepared.manifest;
  if (m.samples === 0) {
    const bad = m.sources.reduce((n, s) => n + s.badLines, 0);
    throw new RangeError(
      `Expected samples in ${path} but found none in its ${m.lines} lines (${bad} bad)`,
    );
  }
  return prepared;
}

/** Throws when an option asked for is not the one a built cache was made with. */
function checkBuiltOptions(path: string, built: CacheOptions, asked: PreprocessChoices): void {
  const pairs = [
    ["index", asked.index, built.index],
    ["max-ind-range", asked.maxIndRange, built.maxIndRange],
    ["threshold", asked.threshold, built.threshold],
    ["subsample", asked.subsampleRate, built.subsampleRate],
  ] as const;
  for (const [flag, want, has] of pairs) {
    if (want !== undefined && want !== has) {
      throw new RangeError(
        `Expected --${flag} ${want} to be the built cache's but ${path} has ${has}; rebuild it with deno task preprocess`,
      );
    }
  }
}

/**
 * The test cache of `test` for the training cache `prepared`: `test` itself when it is a cache
 * mapped with the same dictionaries, else `test` read through them into
 * `TRAIN_CACHE/tests/NAME-KEY` (reused while current).
 */
export async function prepareTestCriteo(
  prepared: PreparedCriteo,
  test: string,
  options: Pick<PrepareCriteoOptions, "strict" | "onProgress"> = {},
): Promise<MappedCache> {
  const dictionaries = await cacheDictionaries(prepared.cache, prepared.manifest);
  const isCache = await Deno.stat(`${test}/${MANIFEST_FILE}`).then((s) => s.isFile, () => false);
  if (isCache) {
    const manifest = await readManifest(test);
    const mapped = await readMapped(test);
    if (!manifest || mapped?.dictionaries !== dictionaries.id) {
      throw new RangeError(
        `Expected ${test} to be a test cache read through the dictionaries of ${prepared.cache} (${dictionaries.id}) but found ${
          mapped ? mapped.dictionaries : "another cache"
        }`,
      );
    }
    return {
      cache: test,
      manifest,
      reused: true,
      dictionaries: dictionaries.id,
      unseen: mapped.unseen,
    };
  }
  const absolute = await resolveInput(prepared.manifest.options.dataset, test);
  const name = absolute.slice(absolute.lastIndexOf("/") + 1).replace(/[^A-Za-z0-9._-]/g, "_");
  const key = createHash("sha256").update(absolute).digest("hex").slice(0, 12);
  return await prepareMappedCache({
    input: absolute,
    out: `${await Deno.realPath(prepared.cache)}/tests/${name}-${key}`,
    options: prepared.manifest.options,
    dictionaries,
    strict: options.strict,
    onProgress: options.onProgress,
  });
}

/** What `bench --data` overrides in every run of a suite. */
export interface CriteoRunOverrides {
  data: CriteoRunData;
  /** The whole training split, or `iterations × batch` when that is asked (and fits). */
  trainSamples: number;
  /** The whole test split, or fewer when asked. */
  testSamples: number;
  /** What was read and how it was split, for the output (one line each). */
  summary: string[];
}

/**
 * Prepares the cache for `bench SUITE --data PATH [--test-data FILE]` and returns the run
 * overrides: the data record, and the training and test sizes (the whole splits unless fewer
 * are asked for; more than a split holds is a `RangeError`). With `testData`, every sample of
 * PATH trains and every sample of the test file tests.
 */
export async function criteoRunOverrides(
  dataset: "kaggle" | "terabyte",
  path: string,
  options: PrepareCriteoOptions & {
    trainSamples?: number;
    testSamples?: number;
    testData?: string;
  } = {},
): Promise<CriteoRunOverrides> {
  const testData = options.testData;
  const prepared = await prepareCriteo(dataset, path, {
    ...options,
    dictionaries: options.dictionaries || testData !== undefined,
  });
  const m = prepared.manifest;
  const n = (x: number) => x.toLocaleString("en-US");
  const from = `${path}${prepared.reused ? "" : " (preprocessed)"} -> ${prepared.cache}`;
  let splits = m.splits;
  let test: MappedCache | undefined;
  const summary: string[] = [];
  if (testData !== undefined) {
    test = await prepareTestCriteo(prepared, testData, options);
    splits = { ...splitsOf(m, "train"), test: splitsOf(test.manifest, "test").test };
    summary.push(
      `data: ${from}; the whole training data trains: ${n(m.samples)} samples`,
      `test data: ${testData} -> ${test.cache}: ${
        n(test.manifest.samples)
      } samples read with the training data's dictionaries (${describeUnseen(test)})`,
    );
  } else {
    summary.push(
      `data: ${from}; ${splitRule(dataset, m.sources.length)}: train ${
        n(splits.train.samples)
      }, test ${n(splits.test.samples)}, validation ${n(splits.validation.samples)} samples`,
    );
  }
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
  const testSamples = pick("test", options.testSamples, splits.test.samples);
  const testCache = test ?? prepared;
  const clicks = await countClicks(
    testCache.cache,
    testCache.manifest,
    splits.test.start,
    testSamples,
  );
  if (clicks === 0 || clicks === testSamples) {
    throw new RangeError(
      `Expected clicks and non-clicks among the ${testSamples} test samples of ${
        testData ?? path
      } (AUC needs both) but found only ${clicks ? "clicks" : "non-clicks"}; use more data`,
    );
  }
  return {
    data: {
      kind: "criteo",
      source: path,
      cache: await Deno.realPath(prepared.cache),
      options: prepared.manifest.options,
      ...(test
        ? {
          test: {
            source: testData!,
            cache: await Deno.realPath(test.cache),
            dictionaries: test.dictionaries,
          },
        }
        : {}),
    },
    trainSamples: pick("training", options.trainSamples, splits.train.samples),
    testSamples,
    summary,
  };
}

/** Clicks among samples `[start, start + n)` of a cache (read from the label columns only). */
async function countClicks(
  cache: string,
  manifest: CacheManifest,
  start: number,
  n: number,
): Promise<number> {
  let clicks = 0;
  for (const [i, c] of manifest.chunks.entries()) {
    const from = Math.max(start, c.start), to = Math.min(start + n, c.start + c.samples);
    if (from >= to) continue;
    const labels = new Uint8Array(to - from);
    const file = await Deno.open(`${cache}/${chunkFileName(i)}`);
    try {
      await file.seek(chunkLayout(c.samples).labels + from - c.start, Deno.SeekMode.Start);
      for (let got = 0; got < labels.length;) {
        const r = await file.read(labels.subarray(got));
        if (r === null) throw new RangeError(`Expected the labels of ${chunkFileName(i)}`);
        got += r;
      }
    } finally {
      file.close();
    }
    for (const l of labels) clicks += l;
  }
  return clicks;
}

/** A run's real data: training samples from one cache, test samples from it or another. */
export class CriteoRunSource {
  /** Rows of each table, from the training data. */
  readonly tableRows: readonly number[];
  readonly train: CriteoData;
  readonly test: CriteoData;

  /** The training data and the test data (the same object without a separate test set). */
  constructor(train: CriteoData, test: CriteoData) {
    this.train = train;
    this.test = test;
    this.tableRows = train.tableRows;
  }

  /** Fills `chunk` from the training, test or validation split, as {@linkcode CriteoData.fill}. */
  fill(chunk: BatchChunk, stream: CriteoStream, firstSample: number): void {
    (stream === "train" ? this.train : this.test).fill(chunk, stream, firstSample);
  }

  /** Drops what both hold in memory. */
  close(): void {
    this.train.close();
    this.test.close();
  }
}

/**
 * Opens the caches of a run's data for training, checking that the training cache is still built
 * with the options the run recorded and the test cache mapped with the same dictionaries (else a
 * `RangeError`: run the benchmark again to rebuild them).
 */
export async function openCriteoRunData(
  data: CriteoRunData,
  seed: number,
): Promise<CriteoRunSource> {
  const train = await CriteoData.open(data.cache, { seed, use: data.test ? "train" : "splits" });
  const built = train.manifest.options;
  if (JSON.stringify(built) !== JSON.stringify(CacheOptionsSchema.parse(data.options))) {
    throw new RangeError(
      `Expected the cache ${data.cache} built with ${JSON.stringify(data.options)} but found ${
        JSON.stringify(built)
      }`,
    );
  }
  if (!data.test) return new CriteoRunSource(train, train);
  const mapped = await readMapped(data.test.cache);
  if (mapped?.dictionaries !== data.test.dictionaries) {
    throw new RangeError(
      `Expected the test cache ${data.test.cache} mapped with the dictionaries ${data.test.dictionaries} but found ${
        mapped?.dictionaries ?? "none"
      }`,
    );
  }
  const test = await CriteoData.open(data.test.cache, { shuffle: false, use: "test" });
  return new CriteoRunSource(train, test);
}
