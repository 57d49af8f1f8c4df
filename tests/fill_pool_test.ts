/**
 * The data worker pool (`data/fill_pool.ts`): its chunks equal one thread's fill bit for bit,
 * whatever the number of workers, for synthetic data and for a Criteo cache.
 */
import assert from "node:assert/strict";
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { FillPool, sliceBounds } from "../data/fill_pool.ts";
import { CriteoData, preprocessCriteo, writeRawTsv } from "../data/criteo/mod.ts";
import { kaggleSuite, runTraining } from "../suites/mod.ts";
import type { RunConfig } from "../record/schema.ts";
import { KAGGLE_SAMPLE, present, tempDir } from "./criteo_helpers.ts";
import { findTestAdapter } from "./gpu_setup.ts";

/** Asserts that the first `chunk.samples` samples of two chunks are equal bit for bit. */
function assertSameSamples(got: BatchChunk, want: BatchChunk, what: string): void {
  const n = want.samples;
  const d = want.dense.length / want.labels.length;
  const bits = (a: Float32Array, len: number) => new Uint32Array(a.buffer, a.byteOffset, len);
  assert.deepEqual(bits(got.dense, n * d), bits(want.dense, n * d), `${what}: dense`);
  assert.deepEqual(bits(got.labels, n), bits(want.labels, n), `${what}: labels`);
  for (let t = 0; t < want.indices.length; t++) {
    assert.deepEqual(
      got.indices[t].subarray(0, n),
      want.indices[t].subarray(0, n),
      `${what}: table ${t}`,
    );
    assert.deepEqual(got.offsets[t].subarray(0, n + 1), want.offsets[t].subarray(0, n + 1));
  }
}

Deno.test("slice bounds cover the chunk in order, on synthetic block starts where they can", () => {
  assert.deepEqual(sliceBounds(0, 1024, 4), [0, 256, 512, 768, 1024]);
  assert.deepEqual(sliceBounds(100, 1000, 2), [0, 412, 1000]);
  assert.deepEqual(sliceBounds(0, 10, 3), [0, 0, 0, 10]);
  for (const [first, n, w] of [[7, 5000, 3], [0, 1, 8], [513, 70000, 15]]) {
    const b = sliceBounds(first, n, w);
    assert.equal(b.length, w + 1);
    assert.equal(b[0], 0);
    assert.equal(b[w], n);
    for (let k = 1; k <= w; k++) assert.ok(b[k] >= b[k - 1]);
  }
});

Deno.test("the pool fills synthetic chunks as one thread does, with 1, 2 and 3 workers", async () => {
  const spec = kaggleSpec(0.0005);
  const options = { seed: 7, clickRate: 0.3 };
  const single = new SyntheticCriteo(spec, options);
  const batch = 100, samples = 1900;
  for (const workers of [1, 2, 3]) {
    const pool = await FillPool.start({ kind: "synthetic", shape: spec, options }, workers);
    try {
      const got = allocateOneHotChunk(spec, batch, samples, true);
      const want = allocateOneHotChunk(spec, batch, samples);
      // A full chunk from an unaligned sample, then a shorter view, of each stream.
      for (const [stream, first, n] of [["train", 333, samples], ["test", 5000, 700]] as const) {
        got.offsets[0].fill(-1);
        await pool.fill({ ...got, samples: n }, stream, first);
        single.fill({ ...want, samples: n }, stream, first);
        assertSameSamples({ ...got, samples: n }, { ...want, samples: n }, `${workers} workers`);
      }
    } finally {
      pool.close();
    }
  }
});

Deno.test("the pool refuses a chunk outside shared memory", async () => {
  const spec = kaggleSpec(0.0001);
  const pool = await FillPool.start({ kind: "synthetic", shape: spec, options: { seed: 1 } }, 1);
  try {
    assert.throws(
      () => pool.fill(allocateOneHotChunk(spec, 8, 16), "train", 0),
      /Expected a chunk in shared memory/,
    );
  } finally {
    pool.close();
  }
});

Deno.test({
  name: "the pool fills Criteo cache chunks (shuffled training, test) as one thread does",
  ignore: !present(KAGGLE_SAMPLE),
  fn: async () => {
    const dir = await tempDir();
    try {
      await preprocessCriteo({ dataset: "kaggle", input: KAGGLE_SAMPLE, out: dir });
      const options = { seed: 3, shuffleBlock: 300, shuffleWindow: 4 };
      const single = await CriteoData.open(dir, options);
      const spec = { ...kaggleSpec(), tableRows: [...single.tableRows] };
      const pool = await FillPool.start({ kind: "criteo", dir, options }, 3);
      try {
        const got = allocateOneHotChunk(spec, 128, 4096, true);
        const want = allocateOneHotChunk(spec, 128, 4096);
        for (const [stream, first, n] of [["train", 1000, 4096], ["test", 10, 600]] as const) {
          await pool.fill({ ...got, samples: n }, stream, first);
          single.fill({ ...want, samples: n }, stream, first);
          assertSameSamples({ ...got, samples: n }, { ...want, samples: n }, stream);
        }
      } finally {
        pool.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("a Criteo pool loads each shuffle window once, together, and fills as one thread does", async () => {
  // Windows of 3 blocks of 100 samples: fills of 1000 samples touch 4-5 windows (more than the
  // pool keeps), consecutive fills share windows, and a fill far back loads evicted ones again.
  const dir = await tempDir();
  try {
    await writeRawTsv(`${dir}/t.tsv`, { lines: 24_000, seed: 8, tableRows: Array(26).fill(5000) });
    await preprocessCriteo({ dataset: "kaggle", input: `${dir}/t.tsv`, out: `${dir}/c` });
    const options = { seed: 5, shuffleBlock: 100, shuffleWindow: 3 };
    const single = await CriteoData.open(`${dir}/c`, options);
    const spec = { ...kaggleSpec(), tableRows: [...single.tableRows] };
    const pool = await FillPool.start({ kind: "criteo", dir: `${dir}/c`, options }, 3);
    try {
      const got = allocateOneHotChunk(spec, 128, 1000, true);
      const want = allocateOneHotChunk(spec, 128, 1000);
      const last = single.trainSamples - 1000;
      let loads = 0;
      for (const first of [0, 1000, 2000, 1500, 250, last, 7777, 0]) {
        await pool.fill(got, "train", first);
        single.fill(want, "train", first);
        assertSameSamples(got, want, `train from ${first}`);
        // Each window a fill needs is loaded once, unless the last fill left it in memory.
        const windows = single.windowsOf(first, 1000).length;
        assert.ok(pool.windowLoads - loads <= windows, `windows loaded for ${first}`);
        loads = pool.windowLoads;
      }
      assert.ok(loads > 8 && loads < 8 * 5, `windows loaded in all: ${loads}`);
      // Two fills in flight at once (into two chunks) run one after the other.
      const other = allocateOneHotChunk(spec, 128, 1000, true);
      await Promise.all([pool.fill(got, "train", 3000), pool.fill(other, "train", 9000)]);
      single.fill(want, "train", 3000);
      assertSameSamples(got, want, "train from 3000, in flight with another");
      single.fill(want, "train", 9000);
      assertSameSamples(other, want, "train from 9000, in flight with another");
    } finally {
      pool.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const adapter = await findTestAdapter();

for (const engine of ["cpu", "gpu"] as const) {
  Deno.test({
    name: `a ${engine} run trains the same model with its chunks filled by 2 data workers`,
    ignore: engine === "gpu" && !adapter,
    fn: async () => {
      const fp32 = kaggleSuite({ experiments: ["table3"] }).runs.find((r) => r.name === "fp32")!;
      // Chunks of 3 iterations over epochs of 10: short views, an epoch's restart, evaluations.
      const config: RunConfig = {
        ...fp32,
        engine,
        tableScale: 0.0005,
        batchSize: 32,
        testBatchSize: 256,
        trainSamples: 10 * 32,
        testSamples: 256,
        epochs: 2,
        evalEvery: 4,
        chunkIterations: 3,
        warmupIterations: 1,
        threads: 1,
      };
      const dir = await Deno.makeTempDir();
      try {
        const main = await runTraining(config, { suite: "t", saveModelTo: `${dir}/main.model` });
        const pooled = await runTraining(config, {
          suite: "t",
          saveModelTo: `${dir}/pool.model`,
          dataWorkers: 2,
        });
        assert.equal(main.status, "ok", main.error);
        assert.equal(pooled.status, "ok", pooled.error);
        assert.equal(pooled.iterations, 20);
        assert.deepEqual(
          pooled.curve.map((p) => [p.iteration, p.logLoss, p.auc, p.trainLoss]),
          main.curve.map((p) => [p.iteration, p.logLoss, p.auc, p.trainLoss]),
        );
        assert.deepEqual(
          await Deno.readFile(`${dir}/pool.model`),
          await Deno.readFile(`${dir}/main.model`),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
