/**
 * Preprocesses raw Criteo files into the binary cache (`cache.ts`), on every core.
 *
 * The main thread reads the sources (decompressing gzip) into blocks of whole lines in shared
 * memory and writes chunk files; Workers parse blocks (any worker, any block) and number the
 * categorical values of the tables each owns, block after block in file order, so ids follow first
 * appearance exactly as DLRM's dictionaries give them. Bad lines are counted by kind and skipped;
 * in strict mode the first stops the build with `file:line: what`.
 *
 * A build writes `manifest.json` last, atomically, and deletes it first when rebuilding, so an
 * interrupted build never looks complete. After each source file but the last it saves a
 * checkpoint (the dictionaries and `progress.json`); a later build with the same options and
 * unchanged files resumes from the next file.
 *
 * @module
 */
import { z } from "zod";
import { KAGGLE_TABLE_ROWS, TERABYTE_TABLE_ROWS } from "../../engine/spec.ts";
import { writeFileAtomic } from "../files.ts";
import {
  allocateChunkColumns,
  BadLineReportSchema,
  CACHE_FORMAT,
  CACHE_VERSION,
  type CacheChunk,
  type CacheManifest,
  type CacheOptions,
  CacheOptionsSchema,
  type CacheSource,
  type ChunkColumns,
  chunkFileName,
  chunkLayout,
  ChunkSchema,
  encodeChunk,
  MANIFEST_FILE,
  ManifestSchema,
  SourceSchema,
} from "./cache.ts";
import {
  BAD_LINE_KINDS,
  type BadLineKind,
  type BadLineReport,
  CATEGORICAL_FEATURES,
  CriteoFormatError,
  DENSE_FEATURES,
  emptyBadLineReport,
  FIRST_BAD_LINES,
} from "./format.ts";
import { rowOffset } from "./dictionary.ts";
import { type FirstBadLine, formatOf, likelyCause, noSampleError } from "./diagnose.ts";
import {
  type BlockParse,
  emptyBlockParse,
  parsedColumnsBytes,
  parsedColumnsView,
  samplesCapacity,
} from "./parse.ts";
import { type LineBlock, LineBlockReader, type ReaderBadLine, readHead } from "./reader.ts";
import {
  BUILD_FILE,
  findSources,
  identifySource,
  sameSource,
  type SourceIdentity,
} from "./sources.ts";
import { partLines, splitRanges } from "./splits.ts";
import {
  type PreprocessOptions,
  type PreprocessProgress,
  type PreprocessResult,
  resolveCacheOptions,
  reusableCache,
  sameOptions,
} from "./preprocess_options.ts";
import { WorkerPool } from "./pool.ts";
import type { WorkerReply } from "./worker.ts";

export * from "./preprocess_options.ts";

/** Bytes of text per block handed to a worker. */
export const BLOCK_BYTES = 4 << 20;
/** Samples a block's parse columns hold (the most its text can have). */
const BLOCK_SAMPLES = samplesCapacity(BLOCK_BYTES);
/** Bytes of a file's text its format is detected from (and a bad file diagnosed from). */
const HEAD_BYTES = 64 << 10;
/**
 * Makes sure `options.out` holds a complete cache of the sources with these options: reuses one
 * that matches (options, file sizes and times, chunk files; checksums with `verify`), resumes an
 * interrupted build, or builds from scratch. Returns the manifest.
 */
export async function preprocessCriteo(options: PreprocessOptions): Promise<PreprocessResult> {
  const cacheOptions = resolveCacheOptions(options);
  const dir = options.out;
  const paths = await findSources(options.dataset, options.input, options.days);
  const identities = await Promise.all(paths.map(identifySource));
  if (!options.force) {
    const existing = await reusableCache(dir, cacheOptions, identities, options.verify ?? false);
    if (existing) return { dir, manifest: existing, reused: true };
  }
  const build = new Build(dir, cacheOptions, identities, options);
  const manifest = await build.run();
  return { dir, manifest, reused: false, unseen: build.unseen };
}

/** Saved after each source file but the last, to resume from. */
interface Progress {
  format: typeof CACHE_FORMAT;
  version: typeof CACHE_VERSION;
  options: CacheOptions;
  sources: CacheSource[];
  chunks: CacheChunk[];
  badLines: BadLineReport;
}

const PROGRESS_FILE = "progress.json";

/** One block between reading and writing. */
interface InFlight {
  slot: number;
  block: LineBlock;
  /** The reader's bad lines, numbered when the block is. */
  skipped: (ReaderBadLine & { line?: number })[];
  parse?: BlockParse;
  /** Map replies still awaited (set when the maps are posted). */
  mapsLeft: number;
  /** 1-based number of the block's first line (set when the block is numbered). */
  firstLine: number;
  /** Header lines at the block's start, not parsed (1 in a file's first block with a header). */
  header: number;
}

/** What was read from a source so far. */
interface SourceStats {
  lines: number;
  samples: number;
  subsampled: number;
  bad: number;
  /** The first bad line (reader's or parser's). */
  firstBad?: FirstBadLine;
}

class Build {
  #dir: string;
  #options: CacheOptions;
  #identities: SourceIdentity[];
  #settings: PreprocessOptions;
  #pool: WorkerPool | undefined;
  #slots: { input: Uint8Array; output: ReturnType<typeof parsedColumnsView> }[] = [];
  #sources: CacheSource[] = [];
  #chunks: CacheChunk[] = [];
  #report: BadLineReport = emptyBadLineReport();
  #columns: ChunkColumns;
  #filled = 0;
  #samples = 0;
  #writes: Promise<void> = Promise.resolve();
  #pendingWrites = 0;
  #error: unknown;
  #wake: (() => void) | undefined;
  #started = performance.now();
  #textBytes = 0;
  #reader: LineBlockReader | undefined;
  #stats: SourceStats | undefined;
  #source = 0;
  #lastProgress = 0;
  /** With frozen dictionaries: each table's values they lacked. */
  unseen: number[] | undefined;

  constructor(
    dir: string,
    options: CacheOptions,
    identities: SourceIdentity[],
    settings: PreprocessOptions,
  ) {
    this.#dir = dir;
    this.#options = options;
    this.#identities = identities;
    this.#settings = settings;
    this.#columns = allocateChunkColumns(options.chunkSamples);
  }

  async run(): Promise<CacheManifest> {
    const dir = this.#dir;
    await Deno.mkdir(dir, { recursive: true });
    await removeIfPresent(`${dir}/${MANIFEST_FILE}`);
    const input = this.#settings.input;
    await writeFileAtomic(
      `${dir}/${BUILD_FILE}`,
      JSON.stringify({ dataset: this.#options.dataset, input }) + "\n",
    );
    const resumeFrom = await this.#prepare();
    try {
      await this.#startWorkers(resumeFrom > 0);
      for (let i = resumeFrom; i < this.#identities.length; i++) {
        await this.#readSource(i);
        this.#flushChunk();
        await this.#drainWrites();
        if (i < this.#identities.length - 1) await this.#checkpoint(i + 1);
      }
      this.#progress("finish", this.#identities.length - 1, true);
      const tableRows = await this.#finishTables();
      const manifest = await this.#manifest(tableRows, resumeFrom);
      await writeFileAtomic(`${dir}/${MANIFEST_FILE}`, JSON.stringify(manifest, null, 1) + "\n");
      await removeIfPresent(`${dir}/${PROGRESS_FILE}`);
      await removeIfPresent(`${dir}/state`);
      await removeIfPresent(`${dir}/${BUILD_FILE}`);
      this.#progress("done", this.#identities.length - 1, true);
      return manifest;
    } finally {
      this.#pool?.terminate();
      await this.#writes.catch(() => {});
    }
  }

  /** Sets the folder up for a fresh build or a resumed one; returns the first source to read. */
  async #prepare(): Promise<number> {
    const dir = this.#dir;
    const progress = await readProgress(dir);
    const ids = this.#identities;
    if (
      progress && sameOptions(progress.options, this.#options) &&
      progress.sources.length < ids.length &&
      progress.sources.every((s, i) => sameSource(s, ids[i]))
    ) {
      this.#sources = progress.sources;
      this.#chunks = progress.chunks;
      this.#report = progress.badLines;
      this.#samples = progress.chunks.reduce((n, c) => n + c.samples, 0);
      // Chunks written after the checkpoint are stale.
      for await (const entry of Deno.readDir(`${dir}/chunks`)) {
        const index = Number(entry.name.replace(/\.bin$/, ""));
        if (!(Number.isInteger(index) && index < this.#chunks.length)) {
          await Deno.remove(`${dir}/chunks/${entry.name}`);
        }
      }
      return progress.sources.length;
    }
    await removeIfPresent(`${dir}/${PROGRESS_FILE}`);
    await removeIfPresent(`${dir}/chunks`);
    await removeIfPresent(`${dir}/state`);
    await Deno.mkdir(`${dir}/chunks`);
    await Deno.mkdir(`${dir}/state`);
    return 0;
  }

  async #startWorkers(resume: boolean): Promise<void> {
    const count = Math.max(1, this.#settings.workers ?? navigator.hardwareConcurrency ?? 2);
    const expected = this.#options.dataset === "kaggle" ? KAGGLE_TABLE_ROWS : TERABYTE_TABLE_ROWS;
    this.#pool = new WorkerPool(count, expected, (e) => this.#fail(e));
    const slots = Array.from({ length: 2 * count + 2 }, () => ({
      input: new SharedArrayBuffer(BLOCK_BYTES),
      output: new SharedArrayBuffer(parsedColumnsBytes(BLOCK_SAMPLES)),
    }));
    this.#slots = slots.map((s) => ({
      input: new Uint8Array(s.input),
      output: parsedColumnsView(s.output, BLOCK_SAMPLES),
    }));
    const { maxIndRange, subsampleRate, seed, index } = this.#options;
    await this.#pool.all((w) => ({
      type: "init",
      tables: w.tables,
      counting: index === "frequency",
      capacity: BLOCK_SAMPLES,
      slots,
      settings: { maxIndRange, subsampleRate, seed },
      frozen: this.#settings.dictionaries === undefined ? undefined : {
        dir: this.#settings.dictionaries,
        offset: rowOffset(index),
      },
    }));
    if (resume) await this.#pool.all(() => ({ type: "load", dir: this.#dir }));
  }

  /** Waits until `ready()` holds, throwing the build's error if one happened. */
  async #until(ready: () => boolean): Promise<void> {
    for (;;) {
      if (this.#error !== undefined) throw this.#error;
      if (ready()) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #fail(error: unknown): void {
    this.#error ??= error;
    this.#notify();
  }

  async #readSource(index: number): Promise<void> {
    const identity = this.#identities[index];
    const head = await readHead(identity.path, HEAD_BYTES);
    const format = formatOf(head, identity.path);
    const headerLines = format.header ? 1 : 0;
    const rows = this.#options.rows;
    const reader = await LineBlockReader.open(identity.path, {
      maxLines: rows === null ? undefined : rows + headerLines,
      checksum: this.#settings.checksum ?? true,
    });
    this.#reader = reader;
    this.#source = index;
    const stats: SourceStats = { lines: 0, samples: 0, subsampled: 0, bad: 0 };
    this.#stats = stats;
    const inflight = new Map<number, InFlight>();
    const free = this.#slots.map((_, i) => i).reverse();
    const pool = this.#pool!;
    const mappers = pool.mappers;
    let sequence = 0, nextMap = 0, nextWrite = 0;
    // Lines before the next block to number (blocks are numbered in order, when mapped).
    let numbered = 0;
    let headerLeft = headerLines;

    const write = () => {
      for (
        let f = inflight.get(nextWrite);
        f?.parse && f.mapsLeft === 0;
        f = inflight.get(nextWrite)
      ) {
        this.#take(f, identity.file, stats);
        inflight.delete(nextWrite++);
        free.push(f.slot);
      }
      this.#notify();
    };
    const numberAndMap = () => {
      for (let f = inflight.get(nextMap); f?.parse; f = inflight.get(nextMap)) {
        // Number the lines: those the reader skipped before the block, the block's own, then a
        // truncated last line.
        for (const s of f.skipped) if (s.kind === "lineLength") s.line = ++numbered;
        numbered += f.header;
        f.firstLine = numbered + 1;
        if (f.block.lines !== undefined && f.block.lines !== f.header + f.parse.lines) {
          throw new Error(
            `Expected the reader's ${f.block.lines} lines and the parser's ${f.parse.lines} (+${f.header} header) to agree`,
          );
        }
        numbered += f.parse.lines;
        for (const s of f.skipped) {
          if (s.kind === "truncatedGzip") s.line = s.counts ? ++numbered : numbered + 1;
        }
        nextMap++;
        const bad = firstBadOf(f);
        if (bad) {
          if (this.#settings.strict) {
            const hint = bad.line === headerLines + 1
              ? `; likely cause: ${likelyCause(head, format, bad)}`
              : "";
            throw new CriteoFormatError(
              { file: identity.file, line: bad.line },
              bad.kind,
              bad.what + hint,
            );
          }
          stats.firstBad ??= bad;
        }
        const samples = f.parse.samples;
        f.mapsLeft = samples > 0 ? mappers.length : 0;
        if (samples > 0) {
          for (const w of mappers) {
            pool.call(w, { type: "map", slot: f.slot, samples }).then(() => {
              if (--f.mapsLeft === 0) write();
            }).catch((e) => this.#fail(e));
          }
        }
      }
      write();
    };
    // Blocks are numbered and mapped in order, once; after a failure, nothing more is.
    const map = () => {
      if (this.#error !== undefined) return;
      try {
        numberAndMap();
      } catch (e) {
        this.#fail(e);
      }
    };

    try {
      for (;;) {
        await this.#until(() => free.length > 0 && this.#pendingWrites < 4);
        const slot = free.pop()!;
        const block = await reader.next(this.#slots[slot].input);
        if (block === null) {
          free.push(slot);
          break;
        }
        // A header line starts the file's first block (it was detected in the file's head).
        const header = headerLeft > 0 && block.length > 0 ? headerLeft : 0;
        const start = header ? this.#slots[slot].input.indexOf(10) + 1 : 0;
        headerLeft -= header;
        const f: InFlight = {
          slot,
          block,
          skipped: block.skipped,
          mapsLeft: -1,
          firstLine: 0,
          header,
        };
        inflight.set(sequence++, f);
        if (block.length === start) {
          f.parse = emptyBlockParse();
          map();
          continue;
        }
        pool.call(pool.leastLoaded(), {
          type: "parse",
          slot,
          start,
          length: block.length,
          offset: block.offset + start,
          source: index,
          format,
        }).then((r) => {
          f.parse = (r as Extract<WorkerReply, { type: "parsed" }>).result;
          map();
        }).catch((e) => this.#fail(e));
        this.#progress("read", index);
      }
      await this.#until(() => nextWrite === sequence);
    } finally {
      await reader.close();
    }
    this.#textBytes += reader.textBytes;
    const lines = Math.max(0, numbered - headerLines);
    if (stats.samples + stats.subsampled === 0) {
      throw noSampleError(identity.path, lines, head, format, stats.firstBad);
    }
    this.#sources.push({
      ...identity,
      gzip: reader.gzip,
      format,
      crc32: reader.crc32 ?? null,
      hashedBytes: reader.hashedBytes,
      lines,
      textBytes: reader.textBytes,
      samples: stats.samples,
      subsampled: stats.subsampled,
      badLines: stats.bad,
    });
    this.#reader = undefined;
    this.#stats = undefined;
  }

  /** Adds a mapped block's samples to the chunk being filled and its bad lines to the report. */
  #take(f: InFlight, file: string, stats: SourceStats): void {
    const parse = f.parse!;
    const report = this.#report;
    const add = (kind: BadLineKind, count: number, lines: number[]) => {
      const tally = report[kind];
      tally.count += count;
      stats.bad += count;
      for (const line of lines) {
        if (tally.first.length < FIRST_BAD_LINES) tally.first.push({ file, line });
      }
    };
    for (const s of f.skipped) if (s.kind === "lineLength") add(s.kind, 1, [s.line!]);
    for (const [k, kind] of BAD_LINE_KINDS.entries()) {
      add(kind, parse.badCounts[k], parse.badLines[k].map((l) => f.firstLine + l));
    }
    for (const s of f.skipped) if (s.kind === "truncatedGzip") add(s.kind, 1, [s.line!]);
    stats.subsampled += parse.subsampled;
    stats.samples += parse.samples;
    stats.lines = f.firstLine - 1 + parse.lines;
    const out = this.#slots[f.slot].output;
    const ids = new Int32Array(
      out.categorical.buffer,
      out.categorical.byteOffset,
      out.categorical.length,
    );
    for (let s = 0; s < parse.samples;) {
      const cols = this.#columns;
      const capacity = cols.capacity;
      const k = Math.min(parse.samples - s, capacity - this.#filled);
      const at = this.#filled;
      cols.labels.set(out.labels.subarray(s, s + k), at);
      const lines = cols.lines, first = f.firstLine;
      for (let i = 0; i < k; i++) lines[at + i] = out.lines[s + i] + first;
      cols.dense.set(
        out.dense.subarray(s * DENSE_FEATURES, (s + k) * DENSE_FEATURES),
        at * DENSE_FEATURES,
      );
      for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
        const from = t * out.capacity + s;
        cols.categorical.set(ids.subarray(from, from + k), t * capacity + at);
      }
      this.#filled += k;
      s += k;
      if (this.#filled === capacity) this.#flushChunk();
    }
  }

  /** Writes the chunk being filled, if it holds samples (in the background). */
  #flushChunk(): void {
    const n = this.#filled;
    if (n === 0) return;
    const cols = this.#columns;
    const chunk: CacheChunk = {
      source: this.#source,
      start: this.#samples,
      samples: n,
      firstLine: cols.lines[0],
      lastLine: cols.lines[n - 1],
    };
    const bytes = encodeChunk(cols, n);
    if (bytes === cols.bytes) this.#columns = allocateChunkColumns(cols.capacity);
    const path = `${this.#dir}/${chunkFileName(this.#chunks.length)}`;
    this.#chunks.push(chunk);
    this.#samples += n;
    this.#filled = 0;
    this.#pendingWrites++;
    this.#writes = this.#writes.then(() => Deno.writeFile(path, bytes)).then(() => {
      this.#pendingWrites--;
      this.#notify();
    }, (e) => this.#fail(e));
  }

  async #drainWrites(): Promise<void> {
    await this.#until(() => this.#pendingWrites === 0);
  }

  /** Saves the dictionaries and `progress.json`: a later build resumes at source `next`. */
  async #checkpoint(next: number): Promise<void> {
    this.#progress("checkpoint", next - 1, true);
    await this.#pool!.all(() => ({ type: "save", dir: this.#dir }));
    const progress: Progress = {
      format: CACHE_FORMAT,
      version: CACHE_VERSION,
      options: this.#options,
      sources: this.#sources,
      chunks: this.#chunks,
      badLines: this.#report,
    };
    await writeFileAtomic(`${this.#dir}/${PROGRESS_FILE}`, JSON.stringify(progress) + "\n");
  }

  /** The row count of every table (renumbering the chunks first in frequency mode). */
  async #finishTables(): Promise<number[]> {
    const rows = new Array<number>(CATEGORICAL_FEATURES).fill(1);
    const chunks = this.#chunks.map((c) => c.samples);
    const replies = await this.#pool!.all(() => ({
      type: "finish",
      dir: this.#dir,
      threshold: this.#options.threshold,
      chunks,
    }));
    for (const r of replies) {
      if (r.type !== "finished") throw new Error(`Expected a finished reply but found ${r.type}`);
      r.tables.forEach((t, i) => rows[t] = r.rows[i]);
      if (r.unseen) {
        this.unseen ??= new Array<number>(CATEGORICAL_FEATURES).fill(0);
        r.tables.forEach((t, i) => this.unseen![t] = r.unseen![i]);
      }
    }
    return rows;
  }

  async #manifest(tableRows: number[], resumedFromSource: number): Promise<CacheManifest> {
    const total = this.#samples;
    let lastPartStart: number;
    // One file (Kaggle's, or a single Terabyte day): DLRM's 7 parts of its lines, the last one
    // held out (`splits.ts`); several days: every day but the last trains.
    if (this.#sources.length === 1) {
      const { lines, format } = this.#sources[0];
      const parts = partLines(lines);
      // Samples keep their file's line numbers, counting a header line.
      const header = format.header ? 1 : 0;
      lastPartStart = await this.#firstSampleAfterLine(header + lines - parts[parts.length - 1]);
    } else {
      const last = this.#sources.length - 1;
      lastPartStart = this.#sources.slice(0, last).reduce((n, s) => n + s.samples, 0);
    }
    const seconds = (performance.now() - this.#started) / 1000;
    const manifest: CacheManifest = {
      format: CACHE_FORMAT,
      version: CACHE_VERSION,
      complete: true,
      createdAt: new Date().toISOString(),
      options: this.#options,
      sources: this.#sources,
      chunks: this.#chunks,
      denseFeatures: DENSE_FEATURES,
      tableRows,
      splits: splitRanges(lastPartStart, total),
      badLines: this.#report,
      samples: total,
      lines: this.#sources.reduce((n, s) => n + s.lines, 0),
      build: {
        seconds,
        textBytes: this.#textBytes,
        megabytesPerSecond: seconds > 0 ? this.#textBytes / 1e6 / seconds : 0,
        workers: this.#pool!.workers.length,
        resumedFromSource,
      },
    };
    return ManifestSchema.parse(manifest);
  }

  /** Index of the first sample whose line number is above `line` (the total when none is). */
  async #firstSampleAfterLine(line: number): Promise<number> {
    for (const [i, c] of this.#chunks.entries()) {
      if (c.lastLine <= line) continue;
      if (c.firstLine > line) return c.start;
      const layout = chunkLayout(c.samples);
      const file = await Deno.open(`${this.#dir}/${chunkFileName(i)}`);
      try {
        const lines = new Uint32Array(c.samples);
        await file.seek(layout.lines, Deno.SeekMode.Start);
        const bytes = new Uint8Array(lines.buffer);
        for (let got = 0; got < bytes.length;) {
          const n = await file.read(bytes.subarray(got));
          if (n === null) throw new RangeError(`Expected the line column of chunk ${i}`);
          got += n;
        }
        let s = 0;
        while (lines[s] <= line) s++;
        return c.start + s;
      } finally {
        file.close();
      }
    }
    return this.#samples;
  }

  #progress(stage: PreprocessProgress["stage"], source: number, force = false): void {
    const report = this.#settings.onProgress;
    if (!report) return;
    const now = performance.now();
    if (!force && now - this.#lastProgress < 1000) return;
    this.#lastProgress = now;
    report({
      stage,
      source,
      sources: this.#identities.length,
      textBytes: this.#textBytes + (this.#reader?.textBytes ?? 0),
      lines: this.#sources.reduce((n, s) => n + s.lines, 0) + (this.#stats?.lines ?? 0),
      samples: this.#samples + this.#filled,
      seconds: (now - this.#started) / 1000,
    });
  }
}

/** The first bad line of a numbered block (the reader's or the parser's), if any. */
function firstBadOf(f: InFlight): FirstBadLine | undefined {
  const candidates: FirstBadLine[] = f.skipped.map((s) => ({
    line: s.line!,
    kind: s.kind,
    what: s.what,
  }));
  const bad = f.parse?.firstBad;
  if (bad) candidates.push({ ...bad, line: f.firstLine + bad.line });
  if (candidates.length === 0) return undefined;
  return candidates.reduce((a, b) => (b.line < a.line ? b : a));
}

const ProgressSchema = z.object({
  format: z.literal(CACHE_FORMAT),
  version: z.literal(CACHE_VERSION),
  options: CacheOptionsSchema,
  sources: z.array(SourceSchema),
  chunks: z.array(ChunkSchema),
  badLines: BadLineReportSchema,
});

/** The checkpoint of an interrupted build, or undefined (none, unreadable or another version). */
async function readProgress(dir: string): Promise<Progress | undefined> {
  try {
    const json = JSON.parse(await Deno.readTextFile(`${dir}/${PROGRESS_FILE}`));
    const parsed = ProgressSchema.safeParse(json);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
