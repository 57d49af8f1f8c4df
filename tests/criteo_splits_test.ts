/**
 * Splits users choose: a separate test set read through the training data's dictionaries
 * (`--test-data`), a single Terabyte day cut into 7 parts, and the final dictionaries a cache
 * keeps for them (and for `infer --data`).
 */
import assert from "node:assert/strict";
import {
  CriteoData,
  criteoRunOverrides,
  dictionarySet,
  openCriteoRunData,
  preprocessCriteo,
  readManifest,
} from "../data/criteo/mod.ts";
import {
  goodLine,
  present,
  readAll,
  referenceParse,
  tempDir,
  TERABYTE_SAMPLE,
  text,
} from "./criteo_helpers.ts";

/** Per table, the row of each training value, as `index` numbers them (reference, with Maps). */
function referenceRows(
  train: ReturnType<typeof referenceParse>,
  index: "hash" | "frequency",
  range = 0,
  threshold = 1,
): Map<number, number>[] {
  return Array.from({ length: 26 }, (_, t) => {
    const counts = new Map<number, number>();
    for (const s of train) {
      const v = range > 0 ? s.cats[t] % range : s.cats[t];
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    const rows = new Map<number, number>();
    let next = index === "frequency" ? 1 : 0;
    for (const [v, c] of counts) if (index === "hash" || c >= threshold) rows.set(v, next++);
    return rows;
  });
}

Deno.test("a cache keeps its final dictionaries: the value of every row, hash and frequency", async () => {
  const dir = await tempDir();
  const lines = Array.from({ length: 300 }, (_, i) => goodLine(i, 20));
  await Deno.writeFile(`${dir}/train.txt`, text(lines));
  const ref = referenceParse(lines.join("\n") + "\n");
  for (const [index, threshold] of [["hash", 1], ["frequency", 3]] as const) {
    const out = `${dir}/${index}`;
    const { manifest } = await preprocessCriteo({
      dataset: "kaggle",
      input: `${dir}/train.txt`,
      out,
      index,
      threshold: index === "frequency" ? threshold : undefined,
    });
    const rows = referenceRows(ref, index, 0, threshold);
    for (let t = 0; t < 26; t++) {
      const bytes = await Deno.readFile(
        `${out}/dictionaries/table-${String(t).padStart(2, "0")}.bin`,
      );
      const values = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
      const expected = [...rows[t].keys()];
      assert.deepEqual([...values], expected, `${index} table ${t}`);
      assert.equal(
        manifest.tableRows[t],
        Math.max(1, expected.length + (index === "frequency" ? 1 : 0)),
      );
    }
    const set = await dictionarySet(`${out}/dictionaries`, manifest.tableRows, index);
    assert.match(set.id, /^[0-9a-f]{16}$/);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--test-data: the test file is read with the training data's modulo and dictionaries; the whole training file trains", async () => {
  const dir = await tempDir();
  const train = Array.from({ length: 700 }, (_, i) => goodLine(i, 40));
  // Lines 600.. of a wider generator: some values the training file never held.
  const test = Array.from({ length: 210 }, (_, i) => goodLine(600 + i, 90));
  test[5] = "1\t2\t3"; // a bad line: skipped and counted, as in training data
  await Deno.writeFile(`${dir}/train.txt`, text(train));
  await Deno.writeFile(`${dir}/test.txt`, text(test));
  const refTrain = referenceParse(train.join("\n") + "\n");
  const refTest = referenceParse(test.filter((_, i) => i !== 5).join("\n") + "\n");
  for (const [index, range, threshold] of [["hash", 37, 1], ["frequency", 0, 2]] as const) {
    const cacheDir = `${dir}/cache-${index}`;
    const overrides = () =>
      criteoRunOverrides("kaggle", `${dir}/train.txt`, {
        cacheDir,
        index,
        maxIndRange: range,
        threshold: index === "frequency" ? threshold : undefined,
        testData: `${dir}/test.txt`,
      });
    const o = await overrides();
    assert.equal(o.trainSamples, 700, "the whole training file trains");
    assert.equal(o.testSamples, 209);
    assert.equal(o.data.options.maxIndRange, range);
    assert.equal(o.data.options.index, index);
    assert.equal(o.data.test?.source, `${dir}/test.txt`);
    assert.match(o.summary.join("\n"), /the whole training data trains: 700 samples/);
    assert.match(o.summary.join("\n"), /209 samples read with the training data's dictionaries/);
    const source = await openCriteoRunData(o.data, 1);
    assert.equal(source.train.trainSamples, 700);
    assert.equal(source.test.testSamples, 209);
    const got = readAll(await CriteoData.open(o.data.test!.cache, { use: "test" }));
    const rows = referenceRows(refTrain, index, range, threshold);
    let unseen = 0;
    for (let s = 0; s < refTest.length; s++) {
      assert.equal(got.labels[s], refTest[s].label);
      for (let t = 0; t < 26; t++) {
        const v = range > 0 ? refTest[s].cats[t] % range : refTest[s].cats[t];
        const row = rows[t].get(v);
        if (row === undefined) unseen++;
        assert.equal(got.indices[t][s], row ?? 0, `sample ${s} table ${t}`);
      }
    }
    if (index === "frequency") assert.ok(unseen > 0, "the test file holds unseen values");
    // The test cache is reused while current, and rebuilt when the dictionaries change.
    const again = await overrides();
    assert.deepEqual(again.data, o.data);
    source.close();
  }
  // A training file with other values: the same test file maps to other rows, never stale ones.
  await Deno.writeFile(`${dir}/train.txt`, text(train.slice(100)));
  const changed = await criteoRunOverrides("kaggle", `${dir}/train.txt`, {
    cacheDir: `${dir}/cache-hash`,
    maxIndRange: 37,
    testData: `${dir}/test.txt`,
  });
  assert.equal(changed.trainSamples, 600);
  const rows = referenceRows(referenceParse(train.slice(100).join("\n") + "\n"), "hash", 37);
  const got = readAll(await CriteoData.open(changed.data.test!.cache, { use: "test" }));
  for (let t = 0; t < 26; t++) {
    assert.equal(got.indices[t][0], rows[t].get(refTest[0].cats[t] % 37) ?? 0);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Terabyte with one day: the day is cut into 7 parts, parts 0-5 train, part 6 halved", async () => {
  const dir = await tempDir();
  await Deno.writeFile(
    `${dir}/day_0`,
    text(Array.from({ length: 700 }, (_, i) => goodLine(i))),
  );
  const o = await criteoRunOverrides("terabyte", dir, {
    cacheDir: `${dir}/c`,
    subsampleRate: 0,
  });
  assert.equal(o.trainSamples, 600);
  assert.equal(o.testSamples, 50);
  assert.match(
    o.summary[0],
    /one day only: as Kaggle's file, the day is cut into 7 parts by lines: parts 0-5 train, part 6 is halved into test and validation: train 600, test 50, validation 50 samples/,
  );
  const manifest = (await readManifest(`${dir}/c`))!;
  assert.deepEqual(manifest.splits, {
    train: { start: 0, samples: 600 },
    test: { start: 600, samples: 50 },
    validation: { start: 650, samples: 50 },
  });
  // A test part without a click: AUC is undefined, so one line says so before any training.
  const quiet = Array.from(
    { length: 700 },
    (_, i) => goodLine(i).replace(/^1/, i >= 600 ? "0" : "1"),
  );
  await Deno.writeFile(`${dir}/day_q`, text(quiet));
  await assert.rejects(
    criteoRunOverrides("terabyte", `${dir}/day_q`, { cacheDir: `${dir}/q`, subsampleRate: 0 }),
    (e: Error) =>
      e.message ===
        `Expected clicks and non-clicks among the 50 test samples of ${dir}/day_q (AUC needs both) but found only non-clicks; use more data`,
  );
  // Nothing usable: one line naming the file.
  await Deno.writeFile(`${dir}/bad`, text(["1\t2", "x"]));
  await assert.rejects(
    criteoRunOverrides("terabyte", `${dir}/bad`, { cacheDir: `${dir}/b` }),
    (e: Error) =>
      !e.message.includes("\n") &&
      /^Expected Criteo samples in .*\/bad but found none usable in 2 lines; first bad line .*\/bad:1: /
        .test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "the Terabyte day_0 sample alone: parts 0-5 of its lines train; its test part has no click",
  ignore: !present(TERABYTE_SAMPLE),
  fn: async () => {
    const dir = await tempDir();
    await assert.rejects(
      criteoRunOverrides("terabyte", TERABYTE_SAMPLE, { cacheDir: dir }),
      /^RangeError: Expected clicks and non-clicks among the 8 test samples of .* but found only non-clicks; use more data$/,
    );
    const m = (await readManifest(dir))!;
    assert.ok(m.splits.train.samples > 100);
    assert.equal(
      m.splits.test.samples + m.splits.validation.samples + m.splits.train.samples,
      m.samples,
    );
    await Deno.remove(dir, { recursive: true });
  },
});
