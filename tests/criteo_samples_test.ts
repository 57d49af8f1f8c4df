/**
 * The real Criteo samples in `../shared/data/criteo/` (read in place, never copied into the
 * repository): each test is skipped, with a message, when its sample is absent.
 */
import assert from "node:assert/strict";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { clickMetrics } from "../engine/metrics.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { chunkFileName, CriteoData, preprocessCriteo } from "../data/criteo/mod.ts";
import {
  gzip,
  KAGGLE_SAMPLE,
  present,
  readAll,
  referenceIds,
  referenceParse,
  tempDir,
  TERABYTE_SAMPLE,
} from "./criteo_helpers.ts";

const hasKaggle = present(KAGGLE_SAMPLE);
const hasTerabyte = present(TERABYTE_SAMPLE);

Deno.test({
  name: "the Kaggle sample: 10,000 clean lines, DLRM's splits and ids, plain and gzipped alike",
  ignore: !hasKaggle,
  fn: async () => {
    const dir = await tempDir();
    const { manifest } = await preprocessCriteo({
      dataset: "kaggle",
      input: KAGGLE_SAMPLE,
      out: `${dir}/plain`,
    });
    assert.equal(manifest.lines, 10_000);
    assert.equal(manifest.samples, 10_000);
    assert.equal(manifest.sources[0].badLines, 0);
    assert.deepEqual(manifest.splits, {
      train: { start: 0, samples: 8572 },
      test: { start: 8572, samples: 714 },
      validation: { start: 9286, samples: 714 },
    });
    const ref = referenceParse(await Deno.readTextFile(KAGGLE_SAMPLE));
    const ids = referenceIds(ref);
    const all = readAll(await CriteoData.open(`${dir}/plain`, { shuffle: false }));
    let clicks = 0;
    for (let s = 0; s < 10_000; s++) {
      clicks += all.labels[s];
      assert.equal(all.labels[s], ref[s].label);
      assert.deepEqual(Array.from(all.dense.subarray(13 * s, 13 * s + 13)), ref[s].dense);
      for (let t = 0; t < 26; t++) assert.equal(all.indices[t][s], ids[s][t]);
    }
    assert.equal(clicks, 2182);
    for (let t = 0; t < 26; t++) {
      assert.equal(manifest.tableRows[t], new Set(ref.map((r) => r.cats[t])).size);
    }
    // The same lines gzipped (in a temporary folder) give the same cache.
    await Deno.writeFile(`${dir}/train.txt.gz`, gzip(await Deno.readFile(KAGGLE_SAMPLE)));
    const gz = await preprocessCriteo({ dataset: "kaggle", input: dir, out: `${dir}/gz` });
    assert.equal(gz.manifest.sources[0].gzip, true);
    assert.deepEqual(gz.manifest.tableRows, manifest.tableRows);
    for (let i = 0; i < manifest.chunks.length; i++) {
      assert.deepEqual(
        await Deno.readFile(`${dir}/gz/${chunkFileName(i)}`),
        await Deno.readFile(`${dir}/plain/${chunkFileName(i)}`),
      );
    }
    const freq = await preprocessCriteo({
      dataset: "kaggle",
      input: KAGGLE_SAMPLE,
      out: `${dir}/freq`,
      index: "frequency",
      threshold: 2,
    });
    for (let t = 0; t < 26; t++) assert.ok(freq.manifest.tableRows[t] <= manifest.tableRows[t] + 1);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "the Terabyte day_0 sample (gzip): 1,000 clean lines, sub-sampled as DLRM, every click kept",
  ignore: !hasTerabyte,
  fn: async () => {
    const dir = await tempDir();
    const { manifest } = await preprocessCriteo({
      dataset: "terabyte",
      input: TERABYTE_SAMPLE,
      out: `${dir}/c`,
    });
    const [source] = manifest.sources;
    assert.equal(source.gzip, true);
    assert.equal(source.lines, 1000);
    assert.equal(source.badLines, 0);
    assert.equal(source.textBytes, 250_808);
    assert.equal(source.samples + source.subsampled, 1000);
    assert.ok(source.subsampled > 800 && source.subsampled < 900, `${source.subsampled} dropped`);
    // One day: cut into 7 parts as Kaggle's file; parts 0-5 train, part 6 is halved.
    const { train, test } = manifest.splits;
    assert.ok(train.samples > 0);
    assert.equal(test.samples, Math.ceil((source.samples - train.samples) / 2));
    const all = readAll(await CriteoData.open(`${dir}/c`, { shuffle: false }));
    let clicks = 0;
    for (let s = 0; s < manifest.samples; s++) clicks += all.labels[s];
    assert.equal(clicks, 21);

    const whole = await preprocessCriteo({
      dataset: "terabyte",
      input: TERABYTE_SAMPLE,
      out: `${dir}/whole`,
      subsampleRate: 0,
    });
    assert.equal(whole.manifest.samples, 1000);
    const text = new TextDecoder().decode(
      await new Response(
        (await Deno.open(TERABYTE_SAMPLE)).readable.pipeThrough(new DecompressionStream("gzip")),
      ).arrayBuffer(),
    );
    const ids = referenceIds(referenceParse(text), 10_000_000);
    const got = readAll(await CriteoData.open(`${dir}/whole`, { shuffle: false }));
    for (let s = 0; s < 1000; s++) {
      for (let t = 0; t < 26; t++) assert.equal(got.indices[t][s], ids[s][t]);
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "training on the Kaggle sample through CriteoData learns (test AUC above chance)",
  ignore: !hasKaggle,
  fn: async () => {
    const dir = await tempDir();
    await preprocessCriteo({ dataset: "kaggle", input: KAGGLE_SAMPLE, out: dir });
    const data = await CriteoData.open(dir);
    const spec = { ...kaggleSpec(), tableRows: [...data.tableRows] };
    const batch = 128;
    const engine = await createCpuEngine({ spec, maxBatch: 1024, seed: 1, threads: 1 });
    try {
      const iterations = Math.floor(data.trainSamples / batch);
      const chunk = allocateOneHotChunk(spec, batch, iterations * batch, true);
      const test = allocateOneHotChunk(spec, 1024, data.testSamples, true);
      data.fill(test, "test", 0);
      for (let epoch = 0; epoch < 2; epoch++) {
        data.fill(chunk, "train", 0);
        await engine.trainChunk(chunk, { learningRate: 0.1 });
      }
      const metrics = clickMetrics(test.labels, await engine.predict(test));
      console.log(
        `Kaggle sample: test AUC ${metrics.auc.toFixed(4)}, accuracy ${
          metrics.accuracy.toFixed(4)
        }`,
      );
      assert.ok(metrics.auc > 0.6, `AUC ${metrics.auc}`);
    } finally {
      await engine.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
