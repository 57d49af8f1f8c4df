/**
 * Helpers of the Criteo pipeline tests: hand-made TSV lines, a reference parser written the
 * obvious way (strings, `Map`s) to check the fast one against, and the real samples' location.
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import { CriteoData, type CriteoStream } from "../data/criteo/mod.ts";

/** Folder of the real Criteo samples (outside the repository; never copied into it). */
export const SAMPLES_DIR = new URL("../../shared/data/criteo/", import.meta.url).pathname;
/** The first 10,000 lines of Kaggle's train.txt. */
export const KAGGLE_SAMPLE =
  `${SAMPLES_DIR}kaggle_train_first10000__DeepGraphLearning-RecommenderSystems__train_examples.txt`;
/** The first 1,000 lines of Terabyte's day_0, gzipped. */
export const TERABYTE_SAMPLE =
  `${SAMPLES_DIR}terabyte_day_0_first1000__NVIDIA-Merlin-NVTabular__day_0.gz`;

/** Whether a file exists; logs why a test is skipped when it does not. */
export function present(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    console.log(`SKIPPED: ${path} is absent (the real Criteo samples live outside the repo)`);
    return false;
  }
}

/** A TSV line (no LF) from a label, 13 integers and 26 categoricals (strings kept as written). */
export function tsvLine(
  label: number | string,
  ints: (number | string)[],
  cats: (number | string)[],
): string {
  const hex = (c: number | string) =>
    typeof c === "number" ? (c >>> 0).toString(16).padStart(8, "0") : c;
  return [String(label), ...ints.map(String), ...cats.map(hex)].join("\t");
}

/** A deterministic good line number `i` (some missing values, a negative integer). */
export function goodLine(i: number, distinct = 50): string {
  const ints = Array.from(
    { length: 13 },
    (_, j) => ((i * 7 + j * 3) % 11 === 0 ? "" : (i * 31 + j * 17) % 997 - (j === 1 ? 3 : 0)),
  );
  const cats = Array.from(
    { length: 26 },
    (_, t) =>
      (i + t) % 13 === 0 ? "" : Math.imul((i * (t + 3)) % (distinct + t * 5) + 1, 0x9e3779b1) >>> 0,
  );
  return tsvLine(i % 4 === 0 ? 1 : 0, ints, cats);
}

/** The header line of the Kaggle competition's CSV: Id, Label, I1-I13, C1-C26. */
export const CSV_HEADER = [
  "Id",
  "Label",
  ...Array.from({ length: 13 }, (_, i) => `I${i + 1}`),
  ...Array.from({ length: 26 }, (_, i) => `C${i + 1}`),
].join(",");

/** The bytes of `lines` joined by LF, with a final LF unless `unterminated`. */
export function text(lines: string[], unterminated = false): Uint8Array {
  return new TextEncoder().encode(lines.join("\n") + (unterminated ? "" : "\n"));
}

/** Gzips bytes. */
export function gzip(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(bytes));
}

/** A sample as the reference parser reads it: label, `log(x + 1)` values, raw categoricals. */
export interface ReferenceSample {
  line: number;
  label: number;
  dense: number[];
  cats: number[];
}

/** Parses good lines the obvious way (the caller passes only good lines' text). */
export function referenceParse(content: string): ReferenceSample[] {
  const lines = content.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((l, i) => {
    const f = l.split("\t");
    return {
      line: i + 1,
      label: Number(f[0]),
      dense: f.slice(1, 14).map((x) => Math.fround(Math.log1p(Math.max(0, Number(x || "0"))))),
      cats: f.slice(14).map((x) => parseInt(x || "0", 16)),
    };
  });
}

/** DLRM's numbering: per table, ids in order of first appearance of `value mod range`. */
export function referenceIds(samples: ReferenceSample[], range = 0): number[][] {
  const maps = Array.from({ length: 26 }, () => new Map<number, number>());
  return samples.map((s) =>
    s.cats.map((v, t) => {
      const key = range > 0 ? v % range : v;
      const m = maps[t];
      if (!m.has(key)) m.set(key, m.size);
      return m.get(key)!;
    })
  );
}

/** Every sample of a cache, in file order: train, then test, then validation. */
export function readAll(data: CriteoData): BatchChunk {
  const total = data.trainSamples + data.testSamples + data.validationSamples;
  const spec = { denseFeatures: 13, tableRows: data.tableRows };
  const all = allocateOneHotChunk(spec, Math.max(1, total), total);
  let at = 0;
  for (const stream of ["train", "test", "validation"] as CriteoStream[]) {
    const n = data.samplesOf(stream);
    if (n === 0) continue;
    const part = allocateOneHotChunk(spec, n, n);
    data.fill(part, stream, 0);
    all.labels.set(part.labels, at);
    all.dense.set(part.dense, at * 13);
    for (let t = 0; t < 26; t++) all.indices[t].set(part.indices[t], at);
    at += n;
  }
  return all;
}

/** A fresh temporary folder. */
export async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "dqrm-criteo-test-" });
}

/** A line format as the reference parser sees it. */
export interface ReferenceFormat {
  separator: "tab" | "comma";
  idColumn: boolean;
  header: boolean;
}

/** What the reference parser finds in a file: samples and bad lines, numbered in the file. */
export interface ReferenceFile {
  format: ReferenceFormat;
  /** Data lines (bad ones included, a header not). */
  lines: number;
  samples: ReferenceSample[];
  /** 1-based file line numbers of the bad lines of each kind. */
  bad: Record<string, number[]>;
}

/** The reference's format detection, written from the rules in `data/criteo/format.ts`. */
export function referenceFormat(firstLine: string): ReferenceFormat {
  const separator = firstLine.includes("\t") ? "tab" : firstLine.includes(",") ? "comma" : "tab";
  const f = firstLine.split(separator === "tab" ? "\t" : ",");
  const name = f[0].replace(/^\uFEFF/, "").replace(/^"(.*)"$/, "$1").trim().toLowerCase();
  if (name === "id" || name === "label") {
    return { separator, idColumn: name === "id", header: true };
  }
  const idColumn = f.length === 41 && /^[0-9]+$/.test(f[0]) && (f[1] === "0" || f[1] === "1");
  return { separator, idColumn, header: false };
}

/**
 * Classifies one line (its bytes as a Latin-1 string, without LF; a CR before the LF included)
 * the obvious way: the kind of bad line, or the sample it holds.
 */
export function referenceLine(
  line: string,
  format: ReferenceFormat,
): { kind: string } | { label: number; dense: number[]; cats: number[] } {
  const body = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (body === "") return { kind: "empty" };
  if (body.includes("\r")) return { kind: "carriageReturn" };
  if (line.length + 1 > 65536) return { kind: "lineLength" };
  const f = body.split(format.separator === "tab" ? "\t" : ",");
  if (f.length !== 40 + (format.idColumn ? 1 : 0)) return { kind: "fields" };
  if (format.idColumn && !/^[0-9]+$/.test(f.shift()!)) return { kind: "id" };
  if (f[0] !== "0" && f[0] !== "1") return { kind: "label" };
  const ints = f.slice(1, 14), cats = f.slice(14);
  for (const x of ints) {
    if (x === "") continue;
    if (!/^-?[0-9]+$/.test(x)) return { kind: "integer" };
    const v = BigInt(x);
    if (v > 2147483647n || v < -2147483648n) return { kind: "integer" };
  }
  for (const x of cats) {
    if (!/^[0-9a-fA-F]*$/.test(x)) return { kind: "hexadecimal" };
    if (x.length > 8) return { kind: "categoricalLength" };
  }
  return {
    label: Number(f[0]),
    dense: ints.map((x) => Math.fround(Math.log1p(Math.max(0, Number(x || "0"))))),
    cats: cats.map((x) => parseInt(x || "0", 16)),
  };
}

/** Bytes as a Latin-1 string (one character per byte). */
export function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/**
 * Parses a whole raw file the obvious way: lines split at LF (an unterminated last line counts),
 * the format detected from the first line (or `format` when given), a header skipped, every line
 * classified with {@linkcode referenceLine}.
 */
export function referenceParseFile(bytes: Uint8Array, format?: ReferenceFormat): ReferenceFile {
  const lines = latin1(bytes).split("\n");
  if (lines.at(-1) === "") lines.pop();
  let fmt = format ?? referenceFormat((lines[0] ?? "").replace(/\r$/, ""));
  // A header is a whole first line.
  if (fmt.header && !bytes.includes(10)) fmt = { ...fmt, header: false };
  const header = fmt.header ? 1 : 0;
  const out: ReferenceFile = { format: fmt, lines: lines.length - header, samples: [], bad: {} };
  for (let i = header; i < lines.length; i++) {
    const r = referenceLine(lines[i], fmt);
    if ("kind" in r) (out.bad[r.kind] ??= []).push(i + 1);
    else out.samples.push({ line: i + 1, ...r });
  }
  return out;
}
