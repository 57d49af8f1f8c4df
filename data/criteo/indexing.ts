/**
 * What maps raw categorical values to a trained model's rows, and data read through it.
 *
 * A complete cache keeps its final dictionaries (`CACHE/dictionaries/table-NN.bin`, the value of
 * each row). Other data read with them, a separate test set (`bench --data --test-data`) or a
 * file to score (`infer --data`), is preprocessed into a _mapped_ cache: the same modulo
 * (`--max-ind-range`) and index mode, each value given the training row it had, a value the
 * training data never held given row 0 (frequency mode: the row of rare values). A mapped cache
 * records which dictionaries it was mapped with (`indexing.json`), and is rebuilt when they
 * change.
 *
 * A model saved from a run on real data (`bench --data --save-models`) gets a sidecar,
 * `RUN.model.indexing`, naming the options and a copy (hard link where possible) of the
 * dictionaries in the results folder (`dictionaries/ID/`), so `infer --data` can reproduce the
 * indexing anywhere the results folder goes.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { z } from "zod";
import {
  type CacheManifest,
  type CacheOptions,
  CacheOptionsSchema,
  readManifest,
} from "./cache.ts";
import { DICTIONARIES_DIR, finalDictionaryFileName, rowOffset } from "./dictionary.ts";
import { CATEGORICAL_FEATURES } from "./format.ts";
import { writeFileAtomic } from "../files.ts";
import { preprocessCriteo, type PreprocessProgress } from "./preprocess.ts";
import type { CriteoRunData } from "./run_data.ts";

/** A folder of final dictionaries and what identifies its contents. */
export interface DictionarySet {
  /** The folder (absolute when resolved). */
  dir: string;
  /** 16 hex digits of a SHA-256 over every table file's CRC-32 and size. */
  id: string;
  /** CRC-32 of each table's file (8 hex digits). */
  crc32: string[];
  /** Size of each table's file. */
  bytes: number[];
}

/** CRC-32 of `bytes`, 8 hex digits. */
function crcOf(bytes: Uint8Array): string {
  return (crc32(bytes) >>> 0).toString(16).padStart(8, "0");
}

/**
 * Checks the dictionaries in `dir` against the table sizes they must give (`tableRows`, index
 * mode `index`) and identifies them. Throws a `RangeError` naming the first missing or wrong file.
 */
export async function dictionarySet(
  dir: string,
  tableRows: readonly number[],
  index: CacheOptions["index"],
): Promise<DictionarySet> {
  const sums: string[] = [], sizes: number[] = [];
  for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
    const path = `${dir}/${finalDictionaryFileName(t)}`;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new RangeError(`Expected the dictionary ${path} but found no file`);
    }
    const expected = Math.max(0, 4 * (tableRows[t] - rowOffset(index)));
    // A table that saw no value at all has one row and an empty dictionary.
    if (bytes.length !== expected && !(bytes.length === 0 && tableRows[t] === 1)) {
      throw new RangeError(
        `Expected ${path} to hold ${expected} bytes (${
          tableRows[t]
        } rows) but found ${bytes.length}`,
      );
    }
    sums.push(crcOf(bytes));
    sizes.push(bytes.length);
  }
  const id = createHash("sha256").update(JSON.stringify([sums, sizes])).digest("hex").slice(0, 16);
  return { dir, id, crc32: sums, bytes: sizes };
}

const known = new Map<string, Promise<DictionarySet>>();

/**
 * The final dictionaries of the complete cache `cache` (checked and identified once per build and
 * process). A `RangeError` when the cache has none (built before caches kept them).
 */
export function cacheDictionaries(cache: string, manifest: CacheManifest): Promise<DictionarySet> {
  const key = `${cache}\n${manifest.createdAt}`;
  let set = known.get(key);
  if (!set) {
    set = dictionarySet(`${cache}/${DICTIONARIES_DIR}`, manifest.tableRows, manifest.options.index);
    set.catch(() => known.delete(key));
    known.set(key, set);
  }
  return set;
}

/** File of a mapped cache that names the dictionaries it was mapped with. */
export const MAPPED_FILE = "indexing.json";

const MappedSchema = z.object({
  format: z.literal("dqrm-criteo-mapped"),
  version: z.literal(1),
  /** {@linkcode DictionarySet.id} of the dictionaries. */
  dictionaries: z.string(),
  /** Per table: values the dictionaries lacked (mapped to row 0). */
  unseen: z.array(z.number().int().nonnegative()).length(CATEGORICAL_FEATURES),
});

/** A cache of data read through another's dictionaries. */
export interface MappedCache {
  cache: string;
  manifest: CacheManifest;
  reused: boolean;
  /** {@linkcode DictionarySet.id} of the dictionaries. */
  dictionaries: string;
  /** Per table: values the dictionaries lacked (mapped to row 0). */
  unseen: number[];
}

/** Reads a mapped cache's record; undefined when it has none (not mapped, or not finished). */
export async function readMapped(cache: string): Promise<z.infer<typeof MappedSchema> | undefined> {
  try {
    return MappedSchema.parse(JSON.parse(await Deno.readTextFile(`${cache}/${MAPPED_FILE}`)));
  } catch {
    return undefined;
  }
}

/** Options of {@linkcode prepareMappedCache}. */
export interface MappedCacheOptions {
  /** The raw file to read. */
  input: string;
  /** The mapped cache folder. */
  out: string;
  /** The training data's options: dataset, index mode, modulo, threshold. */
  options: CacheOptions;
  dictionaries: DictionarySet;
  strict?: boolean;
  onProgress?: (progress: PreprocessProgress) => void;
}

/**
 * Preprocesses `input` with the training data's modulo and index mode through its dictionaries
 * into `out` (reused while the file and the dictionaries are unchanged). Nothing is sub-sampled
 * and every sample is kept in file order. Throws a `RangeError` when the file holds no sample.
 */
export async function prepareMappedCache(options: MappedCacheOptions): Promise<MappedCache> {
  const { out, dictionaries } = options;
  const previous = await readMapped(out);
  const current = previous?.dictionaries === dictionaries.id;
  if (!current) await Deno.remove(`${out}/${MAPPED_FILE}`).catch(() => {});
  const train = options.options;
  const result = await preprocessCriteo({
    dataset: train.dataset,
    input: options.input,
    out,
    index: train.index,
    maxIndRange: train.maxIndRange,
    threshold: train.threshold,
    subsampleRate: 0,
    dictionaries: dictionaries.dir,
    strict: options.strict,
    force: !current,
    onProgress: options.onProgress,
  });
  const unseen = result.reused && previous ? previous.unseen : result.unseen!;
  if (!result.reused || !current) {
    const record: z.infer<typeof MappedSchema> = {
      format: "dqrm-criteo-mapped",
      version: 1,
      dictionaries: dictionaries.id,
      unseen,
    };
    await writeFileAtomic(`${out}/${MAPPED_FILE}`, JSON.stringify(record, null, 1) + "\n");
  }
  if (result.manifest.samples === 0) {
    throw new RangeError(
      `Expected samples in ${options.input} but found none in its ${result.manifest.lines} lines`,
    );
  }
  return {
    cache: out,
    manifest: result.manifest,
    reused: result.reused,
    dictionaries: dictionaries.id,
    unseen,
  };
}

/** A line about the values a mapped cache's dictionaries lacked. */
export function describeUnseen(mapped: MappedCache): string {
  const total = mapped.unseen.reduce((a, b) => a + b, 0);
  const values = mapped.manifest.samples * CATEGORICAL_FEATURES;
  const worst = mapped.unseen.indexOf(Math.max(...mapped.unseen));
  return `${total.toLocaleString("en-US")} of ${values.toLocaleString("en-US")} categorical ` +
    `values (${(100 * total / Math.max(1, values)).toFixed(2)}%) unseen in training, given row 0` +
    (total > 0 ? ` (most in table ${worst}: ${mapped.unseen[worst].toLocaleString("en-US")})` : "");
}

/** The sidecar of a model file: what maps raw values to its rows. */
export const ModelIndexingSchema = z.object({
  format: z.literal("dqrm-model-indexing"),
  version: z.literal(1),
  /** The model file it belongs to: name, size and CRC-32 of the whole file. */
  model: z.object({ file: z.string(), bytes: z.number().int().positive(), crc32: z.string() }),
  /** The training cache's options (dataset, index mode, modulo, threshold, …). */
  options: CacheOptionsSchema,
  tableRows: z.array(z.number().int().positive()).length(CATEGORICAL_FEATURES),
  /** The dictionaries, `dir` relative to the sidecar's folder. */
  dictionaries: z.object({
    dir: z.string(),
    id: z.string(),
    crc32: z.array(z.string()).length(CATEGORICAL_FEATURES),
    bytes: z.array(z.number().int().nonnegative()).length(CATEGORICAL_FEATURES),
  }),
  /** What it was trained on (`--data`) and the cache it was trained from. */
  trainedOn: z.object({ source: z.string(), cache: z.string() }),
});

/** The sidecar of a model file. */
export type ModelIndexing = z.infer<typeof ModelIndexingSchema>;

/** Path of a model file's sidecar. */
export function modelIndexingPath(modelPath: string): string {
  return `${modelPath}.indexing`;
}

function folderOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

/**
 * Writes the sidecar of the model file `modelPath`, trained on `data`: its cache's dictionaries
 * are hard-linked (copied across file systems) into `dictionaries/ID/` beside the model, once per
 * folder. Returns the sidecar's path. For several models, {@linkcode modelIndexingSaver} reads
 * and copies each cache's dictionaries once.
 */
export function saveModelIndexing(modelPath: string, data: CriteoRunData): Promise<string> {
  return modelIndexingSaver()(modelPath, data);
}

/** What a sidecar needs of a cache, its dictionaries copied beside the models. */
interface SavedDictionaries {
  manifest: CacheManifest;
  set: DictionarySet;
  rel: string;
}

/**
 * A {@linkcode saveModelIndexing} that reads each cache's manifest and dictionaries, and copies
 * them into each models' folder, once for all the models it saves (a suite's runs share a cache).
 */
export function modelIndexingSaver(): (modelPath: string, data: CriteoRunData) => Promise<string> {
  const prepared = new Map<string, Promise<SavedDictionaries>>();
  return async (modelPath, data) => {
    const folder = folderOf(modelPath);
    const key = `${data.cache}\0${folder}`;
    let saved = prepared.get(key);
    if (!saved) {
      saved = copyDictionaries(data.cache, folder);
      prepared.set(key, saved);
    }
    const { manifest, set, rel } = await saved;
    const model = await Deno.readFile(modelPath);
    const sidecar: ModelIndexing = {
      format: "dqrm-model-indexing",
      version: 1,
      model: {
        file: modelPath.slice(modelPath.lastIndexOf("/") + 1),
        bytes: model.length,
        crc32: crcOf(model),
      },
      options: manifest.options,
      tableRows: manifest.tableRows,
      dictionaries: { dir: rel, id: set.id, crc32: set.crc32, bytes: set.bytes },
      trainedOn: { source: data.source, cache: data.cache },
    };
    const path = modelIndexingPath(modelPath);
    await writeFileAtomic(path, JSON.stringify(sidecar, null, 1) + "\n");
    return path;
  };
}

/** Reads the cache's dictionaries and puts them into `folder/dictionaries/ID/` unless there. */
async function copyDictionaries(cache: string, folder: string): Promise<SavedDictionaries> {
  const manifest = await readManifest(cache);
  if (!manifest) throw new RangeError(`Expected a complete cache in ${cache} but found none`);
  const set = await cacheDictionaries(cache, manifest);
  const rel = `${DICTIONARIES_DIR}/${set.id}`;
  const target = `${folder}/${rel}`;
  const copied = await dictionarySet(target, manifest.tableRows, manifest.options.index)
    .then((s) => s.id === set.id, () => false);
  if (!copied) {
    await Deno.mkdir(target, { recursive: true });
    for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
      const name = finalDictionaryFileName(t);
      await Deno.remove(`${target}/${name}`).catch(() => {});
      await Deno.link(`${set.dir}/${name}`, `${target}/${name}`)
        .catch(() => Deno.copyFile(`${set.dir}/${name}`, `${target}/${name}`));
    }
  }
  return { manifest, set, rel };
}

/** A model's indexing, its dictionaries found and checked. */
export interface LoadedModelIndexing {
  indexing: ModelIndexing;
  /** The dictionaries (`dir` resolved). */
  dictionaries: DictionarySet;
}

/**
 * Reads and checks the sidecar of the model file `modelPath` (whose bytes are `model` and whose
 * tables have `tableRows` rows): it must belong to this file, and its dictionaries must be there,
 * unchanged. Throws an `Error` of one line saying what is missing or wrong.
 */
export async function loadModelIndexing(
  modelPath: string,
  model: Uint8Array,
  tableRows: readonly number[],
): Promise<LoadedModelIndexing> {
  const path = modelIndexingPath(modelPath);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new Error(
      `cannot reproduce the indexing of ${modelPath}: expected its sidecar ${path} but found none (a model trained on synthetic data, or saved without it; train with bench --data FILE --save-models)`,
    );
  }
  const parsed = ModelIndexingSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`Invalid model indexing file ${path}: ${what.join("; ")}`);
  }
  const indexing = parsed.data;
  const crc = crcOf(model);
  if (indexing.model.bytes !== model.length || indexing.model.crc32 !== crc) {
    throw new Error(
      `Expected ${path} to describe a ${indexing.model.bytes}-byte model with CRC-32 ${indexing.model.crc32} but ${modelPath} has ${model.length} bytes and CRC-32 ${crc}`,
    );
  }
  if (indexing.tableRows.some((r, t) => r !== tableRows[t])) {
    throw new Error(
      `Expected the table sizes of ${path} to be the model's but found ${
        indexing.tableRows.join(",")
      } against ${tableRows.join(",")}`,
    );
  }
  const dir = indexing.dictionaries.dir.startsWith("/")
    ? indexing.dictionaries.dir
    : `${folderOf(modelPath)}/${indexing.dictionaries.dir}`;
  let set: DictionarySet;
  try {
    set = await dictionarySet(dir, indexing.tableRows, indexing.options.index);
  } catch (e) {
    throw new Error(`cannot reproduce the indexing of ${modelPath}: ${(e as Error).message}`);
  }
  if (set.id !== indexing.dictionaries.id) {
    throw new Error(
      `Expected the dictionaries in ${dir} to be ${indexing.dictionaries.id} as ${path} records but found ${set.id} (changed files)`,
    );
  }
  return { indexing, dictionaries: { ...set, dir: await Deno.realPath(dir) } };
}
