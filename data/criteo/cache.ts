/**
 * The preprocessed Criteo cache: a folder of chunk files of columnar typed arrays and a manifest.
 *
 * ```
 * CACHE/manifest.json        written last (atomically); a cache without it is not complete
 * CACHE/chunks/000000.bin    samples [start, start + n) of the concatenated sources
 * CACHE/dictionaries/        table-NN.bin: the raw value of each row (`dictionary.ts`), for data
 *                            read through them (`indexing.ts`: --test-data, infer --data)
 * CACHE/tests/NAME-KEY/      a test file read through them (`--test-data`), a cache of its own
 * CACHE/progress.json        only while building: what is done, to resume after an interruption
 * CACHE/state/               only while building: the dictionaries at the last checkpoint
 * ```
 *
 * A chunk file of `n` samples holds, little-endian and 4-byte aligned, in this order: the labels
 * (`u8[n]`, padded to a multiple of 4), the source line numbers (`u32[n]`), the dense features
 * (`f32[13 n]`, sample-major, `log(x + 1)`), then one `i32[n]` column of row ids per table. Samples
 * keep the order of the source lines, and chunks never span two source files.
 *
 * @module
 */
import { z } from "zod";
import { BAD_LINE_KINDS, CATEGORICAL_FEATURES, DENSE_FEATURES } from "./format.ts";

/** Name of the cache format, recorded in every manifest. */
export const CACHE_FORMAT = "dqrm-criteo-cache";

/**
 * Version of the cache format; a cache of another version is rebuilt. 2: CR LF line ends and the
 * competition's CSV are read, sources record their format and fingerprint, bad `id` lines.
 */
export const CACHE_VERSION = 2;

/** File name of the manifest in a cache folder. */
export const MANIFEST_FILE = "manifest.json";

/** Byte offsets of the columns of a chunk of `n` samples. */
export interface ChunkLayout {
  /** Samples. */
  samples: number;
  labels: number;
  lines: number;
  dense: number;
  /** Offset of table `t`'s column is `categorical + 4 * n * t`. */
  categorical: number;
  /** Size of the chunk file. */
  bytes: number;
}

/** The layout of a chunk of `n` samples. */
export function chunkLayout(n: number): ChunkLayout {
  const labels = 0;
  const lines = (n + 3) & ~3;
  const dense = lines + 4 * n;
  const categorical = dense + 4 * DENSE_FEATURES * n;
  return {
    samples: n,
    labels,
    lines,
    dense,
    categorical,
    bytes: categorical + 4 * CATEGORICAL_FEATURES * n,
  };
}

/** Path of chunk `index`'s file, relative to the cache folder. */
export function chunkFileName(index: number): string {
  return `chunks/${String(index).padStart(6, "0")}.bin`;
}

/** The options a cache was built with; a change of any rebuilds it. */
export const CacheOptionsSchema = z.object({
  /** Split layout: Kaggle (one file, 7 parts) or Terabyte (one file per day). */
  dataset: z.enum(["kaggle", "terabyte"]),
  /**
   * `hash`: value mod max-ind-range (when set), numbered in order of first appearance (DLRM).
   * `frequency`: the same, but values seen fewer than `threshold` times share row 0.
   */
  index: z.enum(["hash", "frequency"]),
  /** DLRM's `--max-ind-range` (0: none). */
  maxIndRange: z.number().int().nonnegative(),
  /** Frequency mode: fewest occurrences for a row of its own (1 in hash mode). */
  threshold: z.number().int().positive(),
  /** Fraction of negative lines dropped (DLRM's `--data-sub-sample-rate`). */
  subsampleRate: z.number().min(0).lt(1),
  /** Seed of the sub-sampling. */
  seed: z.number().int().nonnegative(),
  /** At most this many lines of each source file (null: all). */
  rows: z.number().int().positive().nullable(),
  /** Terabyte: days used, day_0 … day_{days-1} (null: every day found). */
  days: z.number().int().positive().nullable(),
  /** Samples per chunk file. */
  chunkSamples: z.number().int().positive(),
});

/** The options a cache was built with. */
export type CacheOptions = z.infer<typeof CacheOptionsSchema>;

const BadLineSiteSchema = z.object({ file: z.string(), line: z.number().int().positive() });

/** Counts and first sites of every kind of bad line. */
export const BadLineReportSchema = z.record(
  z.enum(BAD_LINE_KINDS),
  z.object({ count: z.number().int().nonnegative(), first: z.array(BadLineSiteSchema) }),
);

/** One source file and what was read from it. */
export const SourceSchema = z.object({
  /** Absolute path when built. */
  path: z.string(),
  /** File name. */
  file: z.string(),
  /** Size in bytes, as stored. */
  bytes: z.number().int().nonnegative(),
  /** Modification time (ms since the epoch), when the system reports it. */
  modifiedMs: z.number().nullable(),
  /** CRC-32 of the file's first and last MiB and 32 windows between (`sources.ts`). */
  fingerprint: z.string().regex(/^[0-9a-f]{8}$/),
  gzip: z.boolean(),
  /** The line format detected from the first line. */
  format: z.object({
    separator: z.enum(["tab", "comma"]),
    idColumn: z.boolean(),
    header: z.boolean(),
  }),
  /** CRC-32 (as gzip's, 8 hex digits) of the first `hashedBytes` bytes of the file as stored. */
  crc32: z.string().regex(/^[0-9a-f]{8}$/).nullable(),
  hashedBytes: z.number().int().nonnegative(),
  /** Lines read (bad lines included, a header line not): all of the file's unless `rows` stopped. */
  lines: z.number().int().nonnegative(),
  /** Uncompressed bytes read. */
  textBytes: z.number().int().nonnegative(),
  /** Samples kept. */
  samples: z.number().int().nonnegative(),
  /** Good negative lines dropped by sub-sampling. */
  subsampled: z.number().int().nonnegative(),
  /** Bad lines skipped. */
  badLines: z.number().int().nonnegative(),
});

/** One source file and what was read from it. */
export type CacheSource = z.infer<typeof SourceSchema>;

/** One chunk file. */
export const ChunkSchema = z.object({
  /** Index of the source file its samples come from. */
  source: z.number().int().nonnegative(),
  /** Index of its first sample among all samples. */
  start: z.number().int().nonnegative(),
  samples: z.number().int().positive(),
  /** Line numbers of its first and last samples. */
  firstLine: z.number().int().positive(),
  lastLine: z.number().int().positive(),
});

/** One chunk file. */
export type CacheChunk = z.infer<typeof ChunkSchema>;

/** A contiguous range of samples. */
export const SplitSchema = z.object({
  start: z.number().int().nonnegative(),
  samples: z.number().int().nonnegative(),
});

/** The manifest of a complete cache. */
export const ManifestSchema = z.object({
  format: z.literal(CACHE_FORMAT),
  version: z.literal(CACHE_VERSION),
  complete: z.literal(true),
  createdAt: z.string(),
  options: CacheOptionsSchema,
  sources: z.array(SourceSchema).min(1),
  chunks: z.array(ChunkSchema),
  /** Dense features per sample (13). */
  denseFeatures: z.literal(DENSE_FEATURES),
  /** Rows of each of the 26 tables, from the data. */
  tableRows: z.array(z.number().int().positive()).length(CATEGORICAL_FEATURES),
  /** DLRM's splits, as ranges of the samples in chunk order. */
  splits: z.object({ train: SplitSchema, test: SplitSchema, validation: SplitSchema }),
  badLines: BadLineReportSchema,
  /** Samples and lines of the whole cache. */
  samples: z.number().int().nonnegative(),
  lines: z.number().int().nonnegative(),
  /** How the build went (the last run, when it resumed). */
  build: z.object({
    seconds: z.number().nonnegative(),
    textBytes: z.number().nonnegative(),
    megabytesPerSecond: z.number().nonnegative(),
    workers: z.number().int().positive(),
    resumedFromSource: z.number().int().nonnegative(),
  }),
});

/** The manifest of a complete cache. */
export type CacheManifest = z.infer<typeof ManifestSchema>;

/**
 * What a cache's raw input held, as a run's result records it (`inputLines`): lines, samples,
 * sub-sampled lines, and the bad lines by kind (kinds found only) with their first sites.
 */
export function inputLinesOf(manifest: CacheManifest): {
  lines: number;
  samples: number;
  subsampled: number;
  bad: number;
  badLines: Record<string, { count: number; first: { file: string; line: number }[] }>;
} {
  const found = BAD_LINE_KINDS.filter((k) => manifest.badLines[k].count > 0);
  return {
    lines: manifest.lines,
    samples: manifest.samples,
    subsampled: manifest.sources.reduce((n, s) => n + s.subsampled, 0),
    bad: found.reduce((n, k) => n + manifest.badLines[k].count, 0),
    badLines: Object.fromEntries(found.map((k) => [k, manifest.badLines[k]])),
  };
}

/**
 * Reads and validates a cache's manifest; `undefined` when the folder has none (not built, or
 * not complete). Throws a `TypeError` naming every wrong field of a manifest of this version, and
 * returns `undefined` for another format version (to be rebuilt).
 */
export async function readManifest(dir: string): Promise<CacheManifest | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/${MANIFEST_FILE}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const json = JSON.parse(text);
  if (json?.format !== CACHE_FORMAT || json?.version !== CACHE_VERSION) return undefined;
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new TypeError(`Invalid cache manifest in ${dir}: ${what.join("; ")}`);
  }
  return parsed.data;
}

/**
 * Checks that every chunk file of a manifest exists with its expected size, throwing a
 * `RangeError` naming the first that does not.
 */
export async function checkChunkFiles(dir: string, manifest: CacheManifest): Promise<void> {
  for (const [i, chunk] of manifest.chunks.entries()) {
    const path = `${dir}/${chunkFileName(i)}`;
    const expected = chunkLayout(chunk.samples).bytes;
    const size = await Deno.stat(path).then((s) => s.size, () => -1);
    if (size !== expected) {
      throw new RangeError(
        `Expected ${path} to hold ${expected} bytes but found ${size < 0 ? "no file" : size}`,
      );
    }
  }
}

/**
 * Columns of a chunk being filled in memory, laid out as the file of a full chunk
 * (`chunkLayout(capacity)`), so a full chunk is written without a copy.
 */
export interface ChunkColumns {
  capacity: number;
  /** The file bytes of a full chunk; the arrays below are views of it. */
  bytes: Uint8Array;
  labels: Uint8Array;
  lines: Uint32Array;
  dense: Float32Array;
  /** `categorical[t * capacity + s]`. */
  categorical: Int32Array;
}

/** Allocates in-memory chunk columns. */
export function allocateChunkColumns(capacity: number): ChunkColumns {
  const layout = chunkLayout(capacity);
  const bytes = new Uint8Array(layout.bytes);
  const buffer = bytes.buffer;
  return {
    capacity,
    bytes,
    labels: new Uint8Array(buffer, layout.labels, capacity),
    lines: new Uint32Array(buffer, layout.lines, capacity),
    dense: new Float32Array(buffer, layout.dense, capacity * DENSE_FEATURES),
    categorical: new Int32Array(buffer, layout.categorical, capacity * CATEGORICAL_FEATURES),
  };
}

/**
 * The bytes of a chunk file holding the first `n` samples of `columns`: `columns.bytes` itself
 * when the chunk is full, else a re-laid-out copy.
 */
export function encodeChunk(columns: ChunkColumns, n: number): Uint8Array {
  if (n === columns.capacity) return columns.bytes;
  const layout = chunkLayout(n);
  const out = new Uint8Array(layout.bytes);
  out.set(columns.labels.subarray(0, n), layout.labels);
  out.set(asBytes(columns.lines.subarray(0, n)), layout.lines);
  out.set(asBytes(columns.dense.subarray(0, n * DENSE_FEATURES)), layout.dense);
  for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
    const col = columns.categorical.subarray(t * columns.capacity, t * columns.capacity + n);
    out.set(asBytes(col), layout.categorical + 4 * n * t);
  }
  return out;
}

/** The bytes of a typed array (same memory). */
export function asBytes(a: Uint32Array | Int32Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1) {
  throw new RangeError("Expected a little-endian machine but found a big-endian one");
}
