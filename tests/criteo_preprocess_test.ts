import assert from "node:assert/strict";
import {
  BAD_LINE_KINDS,
  chunkFileName,
  CriteoData,
  CriteoFormatError,
  MANIFEST_FILE,
  preprocessCriteo,
  type PreprocessOptions,
  readManifest,
  writeRawTsv,
} from "../data/criteo/mod.ts";
import {
  goodLine,
  gzip,
  readAll,
  referenceIds,
  referenceParse,
  tempDir,
  text,
  tsvLine,
} from "./criteo_helpers.ts";

const BLOCK = 4 << 20;

/** A file with every kind of bad line a plain file can have, and the expected report. */
function badFile(): { lines: string[]; expected: Record<string, number[]> } {
  const good = goodLine(5).split("\t");
  const field = (i: number, v: string) => good.map((f, j) => (j === i ? v : f)).join("\t");
  const lines = [
    goodLine(1), // 1
    "", // 2 empty
    goodLine(2) + "\r\r", // 3 carriageReturn (CR LF alone is a line end)
    "1\t" + "5".repeat(70_000), // 4 lineLength (parsed by a worker)
    good.slice(0, 39).join("\t"), // 5 fields
    goodLine(3) + "\tx", // 6 fields
    field(0, "2"), // 7 label
    field(2, "1.5"), // 8 integer
    field(13, "99999999999"), // 9 integer
    field(30, "zz"), // 10 hexadecimal
    field(39, "123456789"), // 11 categoricalLength
    "x".repeat(BLOCK + 10), // 12 lineLength (longer than a block: skipped by the reader)
    ...Array.from({ length: 400 }, (_, i) => goodLine(100 + i)), // 13..412
  ];
  return {
    lines,
    expected: {
      empty: [2],
      carriageReturn: [3],
      lineLength: [4, 12],
      fields: [5, 6],
      id: [],
      label: [7],
      integer: [8, 9],
      hexadecimal: [10],
      categoricalLength: [11],
      truncatedGzip: [],
    },
  };
}

Deno.test("preprocess counts every kind of bad line with its first line numbers, plain and truncated gzip", async () => {
  const dir = await tempDir();
  const { lines, expected } = badFile();
  const bytes = text(lines, true);
  await Deno.writeFile(`${dir}/bad.tsv`, bytes);
  const { manifest } = await preprocessCriteo({
    dataset: "kaggle",
    input: `${dir}/bad.tsv`,
    out: `${dir}/cache`,
  });
  for (const kind of BAD_LINE_KINDS) {
    assert.equal(manifest.badLines[kind].count, expected[kind].length, kind);
    assert.deepEqual(
      manifest.badLines[kind].first,
      expected[kind].map((line) => ({ file: "bad.tsv", line })),
      kind,
    );
  }
  assert.equal(manifest.lines, lines.length);
  assert.equal(manifest.samples, 401);
  assert.equal(manifest.sources[0].badLines, 11);
  // The good lines' values are intact (columns never misalign).
  const data = await CriteoData.open(`${dir}/cache`, { shuffle: false });
  const all = readAll(data);
  const ref = referenceParse([lines[0], ...lines.slice(12)].join("\n"));
  ref.forEach((r, s) => {
    assert.equal(all.labels[s], r.label);
    assert.deepEqual(Array.from(all.dense.subarray(13 * s, 13 * s + 13)), r.dense);
  });

  // Gzipped and cut short: the same, plus the truncated stream at the line it cut.
  const gz = gzip(bytes);
  const tail = gzip(text(lines.slice(12))).length;
  await Deno.writeFile(`${dir}/bad.gz`, gz.subarray(0, gz.length - (tail >> 1)));
  const cut = (await preprocessCriteo({
    dataset: "kaggle",
    input: `${dir}/bad.gz`,
    out: `${dir}/cache-gz`,
  })).manifest;
  assert.equal(cut.badLines.truncatedGzip.count, 1);
  const at = cut.badLines.truncatedGzip.first[0];
  assert.equal(at.file, "bad.gz");
  assert.ok(at.line > 13 && at.line < lines.length, `cut at line ${at.line}`);
  assert.equal(cut.lines, at.line);
  assert.equal(cut.samples, at.line - 12);
  for (const kind of BAD_LINE_KINDS.filter((k) => k !== "truncatedGzip")) {
    assert.equal(cut.badLines[kind].count, expected[kind].length, kind);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("preprocess --strict stops at the first bad line with file:line: what and leaves no manifest", async () => {
  const dir = await tempDir();
  const { lines } = badFile();
  await Deno.writeFile(`${dir}/bad.tsv`, text(lines));
  const run = (input: string) =>
    preprocessCriteo({ dataset: "kaggle", input, out: `${dir}/cache`, strict: true });
  await assert.rejects(
    run(`${dir}/bad.tsv`),
    (e: unknown) =>
      e instanceof CriteoFormatError && e.kind === "empty" &&
      e.message === "bad.tsv:2: Expected 40 fields but found an empty line",
  );
  assert.equal(await readManifest(`${dir}/cache`), undefined);
  const onlyLong = [goodLine(1), goodLine(2), "x".repeat(BLOCK + 1), goodLine(3), "1\t2"];
  await Deno.writeFile(`${dir}/long.tsv`, text(onlyLong));
  await assert.rejects(
    run(`${dir}/long.tsv`),
    /^CriteoFormatError: long\.tsv:3: Expected a line of at most/,
  );
  await Deno.writeFile(`${dir}/fields.tsv`, text([goodLine(1), "1\t2"]));
  await assert.rejects(
    run(`${dir}/fields.tsv`),
    /fields\.tsv:2: Expected 40 tab-separated fields but found 2/,
  );
  await Deno.remove(dir, { recursive: true });
});

/** Builds a cache and returns it with its manifest. */
async function build(options: PreprocessOptions) {
  const result = await preprocessCriteo(options);
  return { ...result, data: await CriteoData.open(options.out, { shuffle: false }) };
}

Deno.test("hash mode numbers values by first appearance (mod max-ind-range), as DLRM", async () => {
  const dir = await tempDir();
  await writeRawTsv(`${dir}/train.txt`, {
    lines: 20_000,
    seed: 3,
    tableRows: Array(26).fill(3000),
  });
  const content = await Deno.readTextFile(`${dir}/train.txt`);
  const ref = referenceParse(content);
  for (const range of [0, 500]) {
    const { manifest, data } = await build({
      dataset: "kaggle",
      input: dir,
      out: `${dir}/cache-${range}`,
      maxIndRange: range,
    });
    const ids = referenceIds(ref, range);
    const all = readAll(data);
    for (let t = 0; t < 26; t++) {
      assert.equal(manifest.tableRows[t], Math.max(...ids.map((r) => r[t])) + 1, `table ${t}`);
      for (let s = 0; s < ref.length; s++) assert.equal(all.indices[t][s], ids[s][t]);
    }
    ref.forEach((r, s) => assert.equal(all.labels[s], r.label));
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("frequency mode gives values seen fewer than the threshold row 0, the others rows 1, 2, …", async () => {
  const dir = await tempDir();
  await writeRawTsv(`${dir}/train.txt`, {
    lines: 20_000,
    seed: 4,
    tableRows: Array(26).fill(5000),
  });
  const ref = referenceParse(await Deno.readTextFile(`${dir}/train.txt`));
  const threshold = 4;
  const { manifest, data } = await build({
    dataset: "kaggle",
    input: `${dir}/train.txt`,
    out: `${dir}/cache`,
    index: "frequency",
    threshold,
  });
  assert.equal(manifest.options.threshold, threshold);
  const first = referenceIds(ref);
  const all = readAll(data);
  for (let t = 0; t < 26; t++) {
    const counts = new Map<number, number>();
    for (const r of first) counts.set(r[t], (counts.get(r[t]) ?? 0) + 1);
    const remap = new Map<number, number>();
    let next = 1;
    for (let id = 0; id < counts.size; id++) {
      remap.set(id, counts.get(id)! >= threshold ? next++ : 0);
    }
    assert.equal(manifest.tableRows[t], next, `table ${t}`);
    for (let s = 0; s < ref.length; s++) assert.equal(all.indices[t][s], remap.get(first[s][t]));
  }
  await Deno.remove(dir, { recursive: true });
});

async function chunkBytes(dir: string, chunks: number): Promise<Uint8Array[]> {
  return await Promise.all(
    Array.from({ length: chunks }, (_, i) => Deno.readFile(`${dir}/${chunkFileName(i)}`)),
  );
}

Deno.test("plain and gzipped input, and any worker count, give the same cache bytes", async () => {
  const dir = await tempDir();
  await writeRawTsv(`${dir}/a.tsv`, { bytes: 9_000_000, seed: 5 });
  await writeRawTsv(`${dir}/a.tsv.gz`, { bytes: 9_000_000, seed: 5, gzip: true });
  const options = { dataset: "kaggle", chunkSamples: 5000, index: "frequency" } as const;
  const a = await preprocessCriteo({ ...options, input: `${dir}/a.tsv`, out: `${dir}/a` });
  const b = await preprocessCriteo({
    ...options,
    input: `${dir}/a.tsv.gz`,
    out: `${dir}/b`,
    workers: 3,
  });
  const c = await preprocessCriteo({
    ...options,
    input: `${dir}/a.tsv`,
    out: `${dir}/c`,
    workers: 1,
  });
  assert.equal(b.manifest.sources[0].gzip, true);
  assert.notEqual(a.manifest.sources[0].crc32, b.manifest.sources[0].crc32);
  for (const other of [b, c]) {
    assert.deepEqual(other.manifest.tableRows, a.manifest.tableRows);
    assert.deepEqual(other.manifest.splits, a.manifest.splits);
    assert.deepEqual(other.manifest.chunks, a.manifest.chunks);
    assert.deepEqual(
      await chunkBytes(other.dir, other.manifest.chunks.length),
      await chunkBytes(a.dir, a.manifest.chunks.length),
    );
  }
  assert.ok(a.manifest.chunks.length > 5);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Kaggle splits: 7 parts of the lines, parts 0-5 train, part 6 halved; --rows limits", async () => {
  const dir = await tempDir();
  await Deno.writeFile(
    `${dir}/train.txt`,
    text(Array.from({ length: 1000 }, (_, i) => goodLine(i))),
  );
  const { manifest } = await preprocessCriteo({ dataset: "kaggle", input: dir, out: `${dir}/c` });
  // 1000 = 143 × 6 + 142: parts 0-5 have 143 lines, part 6 has 142 (71 test, 71 validation).
  assert.deepEqual(manifest.splits, {
    train: { start: 0, samples: 858 },
    test: { start: 858, samples: 71 },
    validation: { start: 929, samples: 71 },
  });
  const limited = await preprocessCriteo({
    dataset: "kaggle",
    input: dir,
    out: `${dir}/c`,
    rows: 100,
  });
  assert.equal(limited.reused, false);
  assert.equal(limited.manifest.lines, 100);
  assert.deepEqual(limited.manifest.splits.test, { start: 86, samples: 7 });
  // Bad lines in the last part still count as its lines, not samples.
  const lines = Array.from({ length: 70 }, (_, i) => (i === 65 ? "" : goodLine(i)));
  await Deno.writeFile(`${dir}/gap.txt`, text(lines));
  const gap = await preprocessCriteo({
    dataset: "kaggle",
    input: `${dir}/gap.txt`,
    out: `${dir}/g`,
  });
  assert.deepEqual(gap.manifest.splits, {
    train: { start: 0, samples: 60 },
    test: { start: 60, samples: 5 },
    validation: { start: 65, samples: 4 },
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Terabyte: days 0..n-2 train, the last day halved; sub-sampling keeps every positive; --days", async () => {
  const dir = await tempDir();
  const day = (d: number) => Array.from({ length: 800 }, (_, i) => goodLine(d * 1000 + i));
  await Deno.writeFile(`${dir}/day_0`, text(day(0)));
  await Deno.writeFile(`${dir}/day_1.gz`, gzip(text(day(1))));
  await Deno.writeFile(`${dir}/day_2`, text(day(2)));
  const { manifest } = await preprocessCriteo({ dataset: "terabyte", input: dir, out: `${dir}/c` });
  assert.deepEqual(manifest.sources.map((s) => [s.file, s.gzip]), [
    ["day_0", false],
    ["day_1.gz", true],
    ["day_2", false],
  ]);
  assert.equal(manifest.options.subsampleRate, 0.875);
  assert.equal(manifest.options.maxIndRange, 10_000_000);
  const positives = (d: number) => day(d).filter((l) => l[0] === "1").length;
  for (const [d, s] of manifest.sources.entries()) {
    assert.equal(s.samples + s.subsampled, 800);
    assert.ok(s.samples >= positives(d));
  }
  const [s0, s1, s2] = manifest.sources.map((s) => s.samples);
  assert.deepEqual(manifest.splits, {
    train: { start: 0, samples: s0 + s1 },
    test: { start: s0 + s1, samples: Math.ceil(s2 / 2) },
    validation: { start: s0 + s1 + Math.ceil(s2 / 2), samples: Math.floor(s2 / 2) },
  });
  const data = await CriteoData.open(`${dir}/c`, { shuffle: false });
  const all = readAll(data);
  let kept = 0;
  for (let s = 0; s < manifest.samples; s++) kept += all.labels[s];
  assert.equal(kept, positives(0) + positives(1) + positives(2));

  const two = await preprocessCriteo({
    dataset: "terabyte",
    input: dir,
    out: `${dir}/c2`,
    days: 2,
    subsampleRate: 0,
  });
  assert.equal(two.manifest.sources.length, 2);
  assert.deepEqual(two.manifest.splits.train, { start: 0, samples: 800 });
  await assert.rejects(
    preprocessCriteo({ dataset: "terabyte", input: dir, out: `${dir}/c3`, days: 4 }),
    /Expected day_3 or day_3\.gz in .* but found neither/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a cache is reused while current, rebuilt when options, sources or chunk files change", async () => {
  const dir = await tempDir();
  await Deno.writeFile(`${dir}/t.txt`, text(Array.from({ length: 500 }, (_, i) => goodLine(i))));
  const options: PreprocessOptions = { dataset: "kaggle", input: `${dir}/t.txt`, out: `${dir}/c` };
  assert.equal((await preprocessCriteo(options)).reused, false);
  assert.equal((await preprocessCriteo(options)).reused, true);
  assert.equal((await preprocessCriteo({ ...options, verify: true })).reused, true);
  assert.equal((await preprocessCriteo({ ...options, maxIndRange: 100 })).reused, false);
  assert.equal((await preprocessCriteo({ ...options, maxIndRange: 100 })).reused, true);
  await Deno.writeFile(`${dir}/t.txt`, text(Array.from({ length: 501 }, (_, i) => goodLine(i))));
  const changed = await preprocessCriteo({ ...options, maxIndRange: 100 });
  assert.equal(changed.reused, false);
  assert.equal(changed.manifest.lines, 501);
  await Deno.truncate(`${dir}/c/${chunkFileName(0)}`, 10);
  await assert.rejects(
    CriteoData.open(`${dir}/c`),
    /Expected .*000000\.bin to hold \d+ bytes but found 10/,
  );
  assert.equal((await preprocessCriteo({ ...options, maxIndRange: 100 })).reused, false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an interrupted build never looks complete and resumes after its last finished file", async () => {
  const dir = await tempDir();
  const day = (d: number) => Array.from({ length: 3000 }, (_, i) => goodLine(d * 5000 + i, 400));
  for (const d of [0, 1]) await Deno.writeFile(`${dir}/day_${d}`, text(day(d)));
  await Deno.writeFile(
    `${dir}/day_2`,
    text([...day(2).slice(0, 100), "broken", ...day(2).slice(100)]),
  );
  const options: PreprocessOptions = {
    dataset: "terabyte",
    input: dir,
    out: `${dir}/c`,
    index: "frequency",
    threshold: 2,
    subsampleRate: 0.5,
    chunkSamples: 700,
  };
  await assert.rejects(preprocessCriteo({ ...options, strict: true }), /day_2:101: /);
  assert.equal(await readManifest(`${dir}/c`), undefined);
  await assert.rejects(Deno.stat(`${dir}/c/${MANIFEST_FILE}`), Deno.errors.NotFound);
  await assert.rejects(
    CriteoData.open(`${dir}/c`),
    /The cache at .*\/c is incomplete \(no manifest\.json.*deno task preprocess terabyte .* --out .*\/c \(it resumes/,
  );
  await Deno.writeFile(`${dir}/day_2`, text(day(2)));
  const resumed = await preprocessCriteo(options);
  assert.equal(resumed.manifest.build.resumedFromSource, 2);
  const fresh = await preprocessCriteo({ ...options, out: `${dir}/fresh` });
  assert.equal(fresh.manifest.build.resumedFromSource, 0);
  assert.deepEqual(resumed.manifest.tableRows, fresh.manifest.tableRows);
  assert.deepEqual(resumed.manifest.chunks, fresh.manifest.chunks);
  assert.deepEqual(resumed.manifest.sources, fresh.manifest.sources);
  assert.deepEqual(
    await chunkBytes(`${dir}/c`, resumed.manifest.chunks.length),
    await chunkBytes(`${dir}/fresh`, fresh.manifest.chunks.length),
  );
  await assert.rejects(Deno.stat(`${dir}/c/progress.json`), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("CriteoData shuffles the training split into a seeded permutation; any range fills alike", async () => {
  const dir = await tempDir();
  await writeRawTsv(`${dir}/t.tsv`, { lines: 30_000, seed: 6, tableRows: Array(26).fill(100_000) });
  await preprocessCriteo({
    dataset: "kaggle",
    input: `${dir}/t.tsv`,
    out: `${dir}/c`,
    chunkSamples: 3000,
  });
  const plain = await CriteoData.open(`${dir}/c`, { shuffle: false });
  const shuffled = await CriteoData.open(`${dir}/c`, {
    shuffleBlock: 100,
    shuffleWindow: 7,
    seed: 3,
  });
  const spec = { denseFeatures: 13, tableRows: plain.tableRows };
  const n = plain.trainSamples;
  const { allocateOneHotChunk, validateChunk } = await import("../engine/batch.ts");
  const a = allocateOneHotChunk(spec, 64, n), b = allocateOneHotChunk(spec, 64, n);
  plain.fill(a, "train", 0);
  shuffled.fill(b, "train", 0);
  validateChunk(b, spec);
  // Every feature of a sample: a sample's ids and values must move together, whole.
  const key = (c: typeof a, s: number) =>
    `${c.labels[s]}:${c.indices.map((idx) => idx[s]).join(",")}:${
      Array.from(c.dense.subarray(13 * s, 13 * s + 13)).join(",")
    }`;
  const sorted = (c: typeof a) => Array.from({ length: n }, (_, s) => key(c, s)).sort();
  assert.deepEqual(sorted(b), sorted(a), "a permutation of the split");
  let moved = 0;
  for (let s = 0; s < n; s++) moved += key(a, s) === key(b, s) ? 0 : 1;
  assert.ok(moved > n * 0.9);
  // Filling piece by piece, in any order, gives the same samples.
  const piece = allocateOneHotChunk(spec, 64, 777);
  for (const first of [n - 777, 5000, 0, 12_345]) {
    shuffled.fill(piece, "train", first);
    for (let s = 0; s < 777; s++) assert.equal(key(piece, s), key(b, first + s));
  }
  assert.throws(
    () => shuffled.fill(piece, "train", n - 10),
    /Expected a range within the \d+ samples of the train split/,
  );
  assert.throws(() => shuffled.fill(piece, "test", plain.testSamples), RangeError);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the synthetic TSV generator writes SyntheticCriteo's samples", async () => {
  const dir = await tempDir();
  const rows = Array(26).fill(1000);
  await writeRawTsv(`${dir}/t.tsv`, { lines: 3000, seed: 9, tableRows: rows });
  const { SyntheticCriteo } = await import("../data/synthetic.ts");
  const { allocateOneHotChunk } = await import("../engine/batch.ts");
  const spec = { denseFeatures: 13, tableRows: rows };
  const expected = allocateOneHotChunk(spec, 3000, 3000);
  new SyntheticCriteo(spec, { seed: 9 }).fill(expected, "train", 0);
  const ref = referenceParse(await Deno.readTextFile(`${dir}/t.tsv`));
  assert.equal(ref.length, 3000);
  const ids = Array.from({ length: 26 }, () => new Map<number, number>());
  ref.forEach((r, s) => {
    assert.equal(r.label, expected.labels[s]);
    for (let j = 0; j < 13; j++) {
      assert.ok(
        Math.abs(r.dense[j] - expected.dense[13 * s + j]) < 1e-5,
        `sample ${s} feature ${j}`,
      );
    }
    for (let t = 0; t < 26; t++) {
      // One hex value per id and one id per hex value.
      const id = expected.indices[t][s];
      if (!ids[t].has(r.cats[t])) ids[t].set(r.cats[t], id);
      assert.equal(ids[t].get(r.cats[t]), id);
    }
  });
  const line = tsvLine(1, Array(13).fill(""), Array(26).fill(""));
  assert.equal(line.split("\t").length, 40);
  await Deno.remove(dir, { recursive: true });
});
