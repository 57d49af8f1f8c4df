/**
 * Fuzzing the Criteo parser: seeded random mutations of real-looking lines (bytes, fields added
 * and removed, separators, LF / CR LF / CR line ends, gzip cuts), thousands of them, checked
 * against the naive reference parser of `criteo_helpers.ts`: parsing never throws, every sample
 * keeps its line and values, every bad line is counted by kind at its line. The lines are
 * synthetic (so it runs in CI); the real Kaggle sample's lines are mutated too when present.
 */
import assert from "node:assert/strict";
import {
  BAD_LINE_KINDS,
  chunkFileName,
  chunkLayout,
  CriteoData,
  CriteoInputError,
  type LineFormat,
  parseBlock,
  parsedColumnsBytes,
  parsedColumnsView,
  preprocessCriteo,
  samplesCapacity,
} from "../data/criteo/mod.ts";
import { Rng } from "../engine/rng.ts";
import {
  CSV_HEADER as HEADER,
  goodLine,
  gzip,
  KAGGLE_SAMPLE,
  latin1,
  present,
  readAll,
  type ReferenceFile,
  referenceIds,
  referenceParseFile,
  tempDir,
} from "./criteo_helpers.ts";

const TSV: LineFormat = { separator: "tab", idColumn: false, header: false };
const CSV: LineFormat = { separator: "comma", idColumn: true, header: false };
const ALPHABET = '0123456789abcdefABCDEF-+.,\t\r\n "xz';
const ODD_VALUES = ["2147483648", "-2147483649", "99999999999999999999", "1.0", "123456789", ""];

/** The fields of base line `i` in `format` (an Id first in CSV). */
function baseFields(base: string, i: number, format: LineFormat): string[] {
  const fields = base.split("\t");
  return format.idColumn ? [String(10_000_000 + i), ...fields] : fields;
}

/** A line mutated 0 to 3 times, with a random line end (Latin-1 string, one char per byte). */
function mutate(fields: string[], format: LineFormat, rng: Rng): string {
  const sep = format.separator === "comma" ? "," : "\t";
  let line = fields.join(sep);
  const edits = rng.next() < 0.45 ? 0 : 1 + rng.int(3);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(line.length + 1);
    const c = ALPHABET[rng.int(ALPHABET.length)];
    switch (rng.int(10)) {
      case 0: // any byte
        line = line.slice(0, at) + String.fromCharCode(rng.int(256)) + line.slice(at + 1);
        break;
      case 1:
        line = line.slice(0, at) + c + line.slice(at + 1);
        break;
      case 2:
        line = line.slice(0, at) + c + line.slice(at);
        break;
      case 3:
        line = line.slice(0, at) + line.slice(at + 1);
        break;
      case 4: { // a field added
        const f = line.split(sep);
        f.splice(rng.int(f.length + 1), 0, ODD_VALUES[rng.int(ODD_VALUES.length)]);
        line = f.join(sep);
        break;
      }
      case 5: { // a field removed
        const f = line.split(sep);
        f.splice(rng.int(f.length), 1);
        line = f.join(sep);
        break;
      }
      case 6: // the other separator
        line = line.replaceAll(sep, sep === "\t" ? "," : "\t");
        break;
      case 7: { // an odd value in a field
        const f = line.split(sep);
        f[rng.int(f.length)] = ODD_VALUES[rng.int(ODD_VALUES.length)];
        line = f.join(sep);
        break;
      }
      case 8:
        line = rng.int(64) ? "" : `1${sep}${"7".repeat(70_000)}`; // empty, or over 64 KiB
        break;
      default: // a separator doubled
        line = line.replace(sep, sep + sep);
    }
  }
  const end = rng.next();
  return line + (end < 0.6 ? "\n" : end < 0.85 ? "\r\n" : end < 0.93 ? "\r" : "\r\r\n");
}

/** Latin-1 string to bytes. */
function bytesOf(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Checks parsed columns against the reference, sample by sample and bad line by bad line. */
function checkBlock(
  label: string,
  result: ReturnType<typeof parseBlock>,
  out: ReturnType<typeof parsedColumnsView>,
  ref: ReferenceFile,
): void {
  assert.equal(result.lines, ref.lines, `${label}: lines`);
  assert.equal(result.samples, ref.samples.length, `${label}: samples`);
  for (const [s, r] of ref.samples.entries()) {
    assert.equal(out.lines[s] + 1, r.line, `${label}: sample ${s}'s line`);
    assert.equal(out.labels[s], r.label, `${label}: line ${r.line}'s label`);
    assert.deepEqual(
      Array.from(out.dense.subarray(13 * s, 13 * s + 13)),
      r.dense,
      `${label}: ${r.line}`,
    );
    for (let t = 0; t < 26; t++) {
      assert.equal(
        out.categorical[t * out.capacity + s],
        r.cats[t],
        `${label}: ${r.line} C${t + 1}`,
      );
    }
  }
  for (const [k, kind] of BAD_LINE_KINDS.entries()) {
    const lines = ref.bad[kind] ?? [];
    assert.equal(result.badCounts[k], lines.length, `${label}: ${kind} count`);
    assert.deepEqual(result.badLines[k].map((l) => l + 1), lines.slice(0, 10), `${label}: ${kind}`);
  }
}

/**
 * Mutated blocks of `bases` through parseBlock, `rounds` times, TSV and CSV; returns the lines
 * and the bad lines of each kind met.
 */
function fuzzBlocks(bases: string[], rounds: number, seed: number) {
  const rng = new Rng(seed, 15);
  let lines = 0;
  const kinds: Record<string, number> = {};
  for (let round = 0; round < rounds; round++) {
    const format = rng.int(2) ? TSV : CSV;
    const n = 1 + rng.int(60);
    let textOf = "";
    for (let i = 0; i < n; i++) {
      const b = rng.int(bases.length);
      textOf += mutate(baseFields(bases[b], b, format), format, rng);
    }
    if (!textOf.endsWith("\n")) textOf += "\n";
    const bytes = bytesOf(textOf);
    const ref = referenceParseFile(bytes, format);
    const capacity = Math.max(1, samplesCapacity(bytes.length));
    const out = parsedColumnsView(new ArrayBuffer(parsedColumnsBytes(capacity)), capacity);
    const result = parseBlock(bytes, 0, bytes.length, out, {
      maxIndRange: 0,
      subsampleRate: 0,
      seed: 1,
      source: 0,
      offset: 0,
      format,
    });
    checkBlock(`round ${round} (${JSON.stringify(latin1(bytes).slice(0, 60))}…)`, result, out, ref);
    lines += ref.lines;
    for (const [kind, at] of Object.entries(ref.bad)) kinds[kind] = (kinds[kind] ?? 0) + at.length;
  }
  return { lines, kinds };
}

/** Every kind of bad line a block can hold (not the reader's truncated gzip). */
const BLOCK_KINDS = BAD_LINE_KINDS.filter((k) => k !== "truncatedGzip");

const SYNTHETIC = Array.from({ length: 500 }, (_, i) => goodLine(i));

Deno.test("fuzz: parseBlock() agrees with the reference on thousands of mutated TSV and CSV lines", () => {
  const { lines, kinds } = fuzzBlocks(SYNTHETIC, 400, 1);
  assert.ok(lines > 10_000, `${lines} lines`);
  for (const kind of BLOCK_KINDS) {
    assert.ok(kinds[kind] > 0, `${kind} met: ${JSON.stringify(kinds)}`);
  }
});

Deno.test({
  name: "fuzz: parseBlock() agrees with the reference on mutated lines of the real Kaggle sample",
  ignore: !present(KAGGLE_SAMPLE),
  fn: async () => {
    const real = (await Deno.readTextFile(KAGGLE_SAMPLE)).split("\n").filter((l) => l !== "");
    assert.ok(fuzzBlocks(real, 150, 2).lines > 4000);
  },
});

/** The chunk files' line numbers of a cache, in sample order. */
async function cacheLines(dir: string, data: CriteoData): Promise<number[]> {
  const lines: number[] = [];
  for (const [i, c] of data.manifest.chunks.entries()) {
    const bytes = await Deno.readFile(`${dir}/${chunkFileName(i)}`);
    const at = chunkLayout(c.samples).lines;
    lines.push(...new Uint32Array(bytes.buffer, bytes.byteOffset + at, c.samples));
  }
  return lines;
}

Deno.test("fuzz: preprocess of mutated files (TSV, CSV, headers, CR LF, gzip, cut gzip) matches the reference line for line", async () => {
  const dir = await tempDir();
  const rng = new Rng(3, 15);
  const kinds = ["tsv", "csv-header", "csv", "tsv-gz", "csv-header-gz", "tsv-cut", "csv-cut"];
  for (let f = 0; f < 10; f++) {
    const kind = kinds[f % kinds.length];
    const format = kind.startsWith("csv") ? CSV : TSV;
    const n = 200 + rng.int(600);
    let body = kind.includes("header") ? HEADER + (rng.int(2) ? "\r\n" : "\n") : "";
    for (let i = 0; i < n; i++) {
      const b = rng.int(SYNTHETIC.length);
      body += mutate(baseFields(SYNTHETIC[b], b, format), format, rng);
    }
    const plain = bytesOf(body);
    let stored = kind.endsWith("gz") || kind.endsWith("cut") ? gzip(plain) : plain;
    if (kind.endsWith("cut")) {
      stored = stored.subarray(0, Math.floor(stored.length * (0.3 + 0.6 * rng.next())));
    }
    const file = `f${f}.${kind}`;
    await Deno.writeFile(`${dir}/${file}`, stored);
    const ref = referenceParseFile(plain);
    const out = `${dir}/cache-${f}`;
    let manifest;
    try {
      manifest =
        (await preprocessCriteo({ dataset: "kaggle", input: `${dir}/${file}`, out, workers: 1 }))
          .manifest;
    } catch (e) {
      assert.ok(e instanceof CriteoInputError, `${file}: ${e}`);
      assert.ok(kind.endsWith("cut") || ref.samples.length === 0, `${file}: ${e.message}`);
      continue;
    }
    assert.deepEqual(manifest.sources[0].format, ref.format, file);
    // Lines cut off by a broken gzip stream are not read: compare the lines before the cut.
    const cut = manifest.badLines.truncatedGzip.first[0]?.line ?? Infinity;
    assert.equal(manifest.badLines.truncatedGzip.count, kind.endsWith("cut") ? 1 : 0, file);
    if (!kind.endsWith("cut")) assert.equal(manifest.lines, ref.lines, file);
    const samples = ref.samples.filter((s) => s.line < cut);
    for (const kind of BAD_LINE_KINDS.filter((k) => k !== "truncatedGzip")) {
      const lines = (ref.bad[kind] ?? []).filter((l) => l < cut);
      assert.equal(manifest.badLines[kind].count, lines.length, `${file}: ${kind}`);
      assert.deepEqual(
        manifest.badLines[kind].first.map((s) => s.line),
        lines.slice(0, 10),
        `${file}: ${kind}`,
      );
    }
    assert.equal(manifest.samples, samples.length, file);
    const data = await CriteoData.open(out, { shuffle: false });
    assert.deepEqual(await cacheLines(out, data), samples.map((s) => s.line), `${file}: lines`);
    const all = readAll(data);
    const ids = referenceIds(samples);
    for (const [s, r] of samples.entries()) {
      assert.equal(all.labels[s], r.label, `${file}:${r.line}`);
      assert.deepEqual(Array.from(all.dense.subarray(13 * s, 13 * s + 13)), r.dense);
      for (let t = 0; t < 26; t++) assert.equal(all.indices[t][s], ids[s][t], `${file}:${r.line}`);
    }
    data.close();
  }
  await Deno.remove(dir, { recursive: true });
});
