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
