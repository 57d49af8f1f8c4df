/**
 * What users bring: the Kaggle competition's CSV, Windows line ends, empty, binary and
 * wrong-column files, missing paths, interrupted caches and files changed in place.
 */
import assert from "node:assert/strict";
import {
  CriteoData,
  CriteoFormatError,
  CriteoInputError,
  criteoRunOverrides,
  detectLineFormat,
  findSources,
  MANIFEST_FILE,
  preprocessCriteo,
} from "../data/criteo/mod.ts";
import { CSV_HEADER as HEADER, goodLine, gzip, readAll, tempDir, text } from "./criteo_helpers.ts";

/** The Kaggle competition's CSV form of TSV lines: header, Id column, commas, CR LF. */
function csvOf(lines: string[], { header = true, crlf = true } = {}): Uint8Array {
  const rows = lines.map((l, i) => `${10_000_000 + i},${l.replaceAll("\t", ",")}`);
  const end = crlf ? "\r\n" : "\n";
  return new TextEncoder().encode((header ? [HEADER, ...rows] : rows).join(end) + end);
}

const LINES = Array.from({ length: 700 }, (_, i) => goodLine(i));

/** Builds a cache of `file` holding `bytes`; returns the manifest and every sample. */
async function build(dir: string, file: string, bytes: Uint8Array, strict = false) {
  await Deno.writeFile(`${dir}/${file}`, bytes);
  const { manifest } = await preprocessCriteo({
    dataset: "kaggle",
    input: `${dir}/${file}`,
    out: `${dir}/cache-${file}`,
    strict,
  });
  return {
    manifest,
    all: readAll(await CriteoData.open(`${dir}/cache-${file}`, { shuffle: false })),
  };
}

Deno.test("the competition's CSV (header, Id column, CR LF; plain or gzipped) and CR LF TSV read as the LF TSV", async () => {
  const dir = await tempDir();
  const tsv = await build(dir, "train.txt", text(LINES));
  assert.equal(tsv.manifest.samples, 700);
  const crlf = new TextEncoder().encode(LINES.join("\r\n") + "\r\n");
  const cases: [string, Uint8Array, object][] = [
    ["train.csv", csvOf(LINES), { separator: "comma", idColumn: true, header: true }],
    ["train.csv.gz", gzip(csvOf(LINES)), { separator: "comma", idColumn: true, header: true }],
    ["noheader.csv", csvOf(LINES, { header: false, crlf: false }), {
      separator: "comma",
      idColumn: true,
      header: false,
    }],
    ["crlf.txt", crlf, { separator: "tab", idColumn: false, header: false }],
  ];
  for (const [file, bytes, format] of cases) {
    const got = await build(dir, file, bytes, true);
    const m = got.manifest;
    assert.deepEqual(m.sources[0].format, format, file);
    assert.equal(m.lines, 700, file);
    assert.equal(m.samples, 700, file);
    assert.equal(m.sources[0].badLines, 0, file);
    assert.deepEqual(m.splits, tsv.manifest.splits, file);
    assert.deepEqual(m.tableRows, tsv.manifest.tableRows, file);
    assert.deepEqual(got.all.labels, tsv.all.labels, file);
    assert.deepEqual(got.all.dense, tsv.all.dense, file);
    assert.deepEqual(got.all.indices, tsv.all.indices, file);
  }
  // A bad CSV line is counted at its line in the file (the header is line 1).
  const bad = [...LINES];
  bad[9] = bad[9].replace(/^[01]/, "7");
  const csv = await build(dir, "bad.csv", csvOf(bad));
  assert.deepEqual(csv.manifest.badLines.label.first, [{ file: "bad.csv", line: 11 }]);
  assert.equal(csv.manifest.samples, 699);
  // A bad Id.
  const rows = new TextDecoder().decode(csvOf(LINES)).split("\r\n");
  rows[5] = "x" + rows[5];
  const id = await build(dir, "id.csv", new TextEncoder().encode(rows.join("\r\n")));
  assert.deepEqual(id.manifest.badLines.id.first, [{ file: "id.csv", line: 6 }]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("detectLineFormat() reads the first line: separator, header, Id column", () => {
  assert.deepEqual(detectLineFormat(goodLine(1)), {
    separator: "tab",
    idColumn: false,
    header: false,
  });
  assert.deepEqual(detectLineFormat(HEADER), { separator: "comma", idColumn: true, header: true });
  assert.deepEqual(detectLineFormat("\uFEFF" + HEADER.toLowerCase()), {
    separator: "comma",
    idColumn: true,
    header: true,
  });
  assert.deepEqual(detectLineFormat(HEADER.replace("Id,", "").replaceAll(",", "\t")), {
    separator: "tab",
    idColumn: false,
    header: true,
  });
  assert.throws(
    () => detectLineFormat(HEADER.replace("Label,", "")),
    /no Label column after Id .*test file without click labels/,
  );
});

/** The one-line error a build of `bytes` throws, strict or not. */
async function buildError(dir: string, file: string, bytes: Uint8Array, strict: boolean) {
  await Deno.writeFile(`${dir}/${file}`, bytes);
  try {
    await preprocessCriteo({ dataset: "kaggle", input: `${dir}/${file}`, out: `${dir}/c`, strict });
  } catch (e) {
    assert.ok(e instanceof CriteoInputError || e instanceof CriteoFormatError, String(e));
    assert.equal(e.message.split("\n").length, 1);
    assert.equal(await Deno.stat(`${dir}/c/${MANIFEST_FILE}`).catch(() => null), null);
    return e.message;
  }
  assert.fail(`Expected ${file} to fail`);
}

Deno.test("a file with no usable sample is an error naming the file, its first bad line and the likely cause", async () => {
  const dir = await tempDir();
  const garbage = new Uint8Array(20000);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24;
  const wrongCsv = new TextEncoder().encode("a,b,c,d,e\n1,2,3,4,5\n");
  const floats = LINES.map((l) => l.replace(/\t(\d+)\t/, "\t$1.0\t"));
  const testFile = new TextEncoder().encode(
    LINES.map((l) => l.slice(2)).join("\n") + "\n",
  );
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "empty.txt",
      new Uint8Array(0),
      /in \S+empty\.txt but found none usable in 0 lines; likely cause: the file is empty/,
    ],
    ["empty.gz", gzip(new Uint8Array(0)), /empty\.gz .* 0 lines; likely cause: the file is empty/],
    [
      "blank.txt",
      text(["", ""]),
      /2 lines; first bad line \S+blank\.txt:1: empty: .*first data line is empty/,
    ],
    ["garbage.bin", garbage, /first bad line \S+garbage\.bin:1: .*likely cause: it looks binary/],
    [
      "wrong.csv",
      wrongCsv,
      /:1: fields: Expected 40 comma-separated fields but found 5; likely cause: it looks like CSV with 5 comma-separated columns/,
    ],
    ["floats.txt", text(floats), /:1: integer: .*"\d+\.0".*integers are written as decimals/],
    ["test.txt", testFile, /:1: fields: .*found 39; .*one short: a test file without click labels/],
    [
      "mac.txt",
      new TextEncoder().encode(LINES.slice(0, 5).join("\r") + "\r"),
      /1 line; .*carriageReturn.*lines seem to end in CR alone/,
    ],
    [
      "data.bz2",
      new TextEncoder().encode("BZh91AY&SY" + "x".repeat(100)),
      /bzip2 archive, not text: decompress it first/,
    ],
  ];
  for (const [file, bytes, pattern] of cases) {
    const loose = await buildError(dir, file, bytes, false);
    assert.match(loose, pattern, file);
    assert.match(loose, /^Expected Criteo samples in \//, file);
    const strict = await buildError(dir, file, bytes, true);
    // Strict stops at the first bad line, with the same likely cause; a file without a line
    // fails as without --strict.
    if (/ 0 lines/.test(loose)) assert.equal(strict, loose, file);
    else {assert.match(
        strict,
        new RegExp(`^${file.replace(".", "\\.")}:1: .*; likely cause: `),
        file,
      );}
  }
  // A labelless competition test.csv is named as such before reading.
  const testCsv = new TextDecoder().decode(csvOf(LINES)).replace("Label,", "");
  assert.match(
    await buildError(dir, "test.csv", new TextEncoder().encode(testCsv), false),
    /test\.csv:1: Expected a header of Id,Label.* test file without click labels/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a missing path and an interrupted cache are one-line errors saying what was expected", async () => {
  const dir = await tempDir();
  await assert.rejects(
    criteoRunOverrides("kaggle", `${dir}/nonexistent`),
    (e: Error) =>
      e instanceof CriteoInputError &&
      e.message ===
        `Expected Kaggle's train.txt[.gz] (TSV, or the competition's train.csv), or a folder holding it, or a cache folder at ${dir}/nonexistent but found nothing there`,
  );
  await assert.rejects(
    criteoRunOverrides("terabyte", `${dir}/nonexistent`),
    /Expected a folder of Terabyte's day_0 … day_23\[\.gz\] \(or one day's file\), or a cache folder at .* but found nothing there/,
  );
  await assert.rejects(
    findSources("kaggle", dir),
    /Expected train\.txt or train\.txt\.gz in the folder/,
  );
  // A build that stopped before its manifest.
  await Deno.writeFile(`${dir}/train.txt`, text(LINES));
  await preprocessCriteo({ dataset: "kaggle", input: `${dir}/train.txt`, out: `${dir}/cache` });
  await Deno.remove(`${dir}/cache/${MANIFEST_FILE}`);
  await assert.rejects(
    criteoRunOverrides("kaggle", `${dir}/cache`),
    (e: Error) =>
      e instanceof CriteoInputError &&
      new RegExp(`^The cache at ${dir}/cache is incomplete \\(no manifest\\.json`).test(
        e.message,
      ) &&
      e.message.includes("rebuild it with deno task preprocess DATASET RAW_INPUT --out"),
  );
  await assert.rejects(
    CriteoData.open(`${dir}/cache`),
    /^CriteoInputError: The cache at .* is incomplete/,
  );
  await Deno.writeTextFile(
    `${dir}/cache/build.json`,
    JSON.stringify({ dataset: "kaggle", input: `${dir}/train.txt` }),
  );
  await assert.rejects(
    criteoRunOverrides("kaggle", `${dir}/cache`),
    new RegExp(
      `rebuild it with deno task preprocess kaggle ${dir}/train\\.txt --out ${dir}/cache \\(it resumes`,
    ),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a cache is rebuilt when a source changes in place with the same size and time", async () => {
  const dir = await tempDir();
  const path = `${dir}/train.txt`;
  // Big enough that the change lies outside the first and last MiB, in a sampled window.
  const lines = Array.from({ length: 20_000 }, (_, i) => goodLine(i));
  const bytes = text(lines);
  assert.ok(bytes.length > 4 << 20);
  await Deno.writeFile(path, bytes);
  const opts = { dataset: "kaggle" as const, input: path, out: `${dir}/cache` };
  const first = await preprocessCriteo(opts);
  assert.equal(first.reused, false);
  assert.equal((await preprocessCriteo(opts)).reused, true);
  const { mtime } = await Deno.stat(path);
  /** Changes the first digit from `at` to another digit. */
  const change = (b: Uint8Array, at: number) => {
    while (!(b[at] >= 48 && b[at] <= 57)) at++;
    b[at] = 48 + (b[at] - 47) % 10;
  };
  // One digit in a sampled window in the middle of the file, then one at the start.
  for (const at of [(1 << 20) + Math.floor((bytes.length - (2 << 20)) / 32) * 5 + 10, 0]) {
    const changed = bytes.slice();
    change(changed, at);
    await Deno.writeFile(path, changed);
    await Deno.utime(path, mtime!, mtime!);
    assert.equal((await Deno.stat(path)).mtime?.getTime(), mtime!.getTime());
    const again = await preprocessCriteo(opts);
    assert.equal(again.reused, false, `a change at byte ${at} is seen`);
    assert.notDeepEqual(
      again.manifest.sources[0].fingerprint,
      first.manifest.sources[0].fingerprint,
    );
  }
  // A change outside the sampled bytes needs --verify (the whole CRC-32).
  const current = await Deno.readFile(path);
  change(current, (1 << 20) + 70_000);
  await Deno.writeFile(path, current);
  await Deno.utime(path, mtime!, mtime!);
  assert.equal((await preprocessCriteo(opts)).reused, true, "not sampled: reused without --verify");
  assert.equal((await preprocessCriteo({ ...opts, verify: true })).reused, false);
  await Deno.remove(dir, { recursive: true });
});
