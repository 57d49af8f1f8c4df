import assert from "node:assert/strict";
import { allocateOneHotChunk, type BatchChunk, validateChunk } from "../engine/batch.ts";
import { kaggleSpec, type ModelSpec, terabyteSpec } from "../engine/spec.ts";
import { SYNTHETIC_BLOCK, SyntheticCriteo, type SyntheticStream } from "../data/mod.ts";

const spec = kaggleSpec();
const data = new SyntheticCriteo(spec, { seed: 1 });

/** Fills a fresh chunk with `samples` samples of `stream` from `first`, with teacher probabilities. */
function draw(
  generator: SyntheticCriteo,
  stream: SyntheticStream,
  first: number,
  samples: number,
  model: ModelSpec = spec,
): { chunk: BatchChunk; probabilities: Float32Array } {
  const chunk = allocateOneHotChunk(model, Math.min(samples, 1024), samples);
  const probabilities = new Float32Array(samples);
  generator.fill(chunk, stream, first, probabilities);
  return { chunk, probabilities };
}

/** Every byte a chunk holds for its samples, plus the teacher probabilities. */
function bytesOf(chunk: BatchChunk, probabilities: Float32Array): Uint8Array[] {
  const n = chunk.samples;
  const view = (a: Float32Array | Int32Array, length: number) =>
    new Uint8Array(a.buffer, a.byteOffset, length * 4);
  return [
    view(chunk.dense, n * (chunk.dense.length / chunk.labels.length)),
    view(chunk.labels, n),
    view(probabilities, n),
    ...chunk.indices.map((idx) => view(idx, n)),
  ];
}

function concat(parts: Float32Array[] | Int32Array[]): number[] {
  return parts.flatMap((p) => Array.from(p));
}

Deno.test("same seed gives the same bytes; another seed gives other bytes", () => {
  const again = new SyntheticCriteo(spec, { seed: 1 });
  const other = new SyntheticCriteo(spec, { seed: 2 });
  const a = draw(data, "train", 5000, 3000);
  const b = draw(again, "train", 5000, 3000);
  const c = draw(other, "train", 5000, 3000);
  assert.equal(again.bias, data.bias);
  assert.deepEqual(bytesOf(b.chunk, b.probabilities), bytesOf(a.chunk, a.probabilities));
  assert.notDeepEqual(Array.from(c.chunk.dense), Array.from(a.chunk.dense));
  assert.notDeepEqual(Array.from(c.chunk.indices[2]), Array.from(a.chunk.indices[2]));
  assert.notDeepEqual(Array.from(c.probabilities), Array.from(a.probabilities));
});

Deno.test("output does not depend on how a range is split into fill calls", () => {
  const whole = draw(data, "train", 0, 8192);
  const first = draw(data, "train", 0, 4096);
  const second = draw(data, "train", 4096, 4096);
  assert.deepEqual(
    Array.from(whole.chunk.dense),
    concat([first.chunk.dense, second.chunk.dense]),
  );
  assert.deepEqual(
    Array.from(whole.chunk.labels),
    concat([first.chunk.labels, second.chunk.labels]),
  );
  assert.deepEqual(
    Array.from(whole.probabilities),
    concat([first.probabilities, second.probabilities]),
  );
  for (let t = 0; t < spec.tableRows.length; t++) {
    assert.deepEqual(
      Array.from(whole.chunk.indices[t]),
      concat([first.chunk.indices[t], second.chunk.indices[t]]),
    );
  }
  // Splits that cut generator blocks anywhere, and a far-away range (random access).
  const start = 10 * SYNTHETIC_BLOCK + 17;
  const cuts = [start, start + 1, start + 300, start + 301, start + 2000];
  const unsplit = draw(data, "test", start, 2000);
  const pieces = cuts.slice(1).map((end, i) => draw(data, "test", cuts[i], end - cuts[i]));
  assert.deepEqual(Array.from(unsplit.chunk.dense), concat(pieces.map((p) => p.chunk.dense)));
  assert.deepEqual(
    Array.from(unsplit.chunk.indices[25]),
    concat(pieces.map((p) => p.chunk.indices[25])),
  );
  assert.deepEqual(Array.from(unsplit.chunk.labels), concat(pieces.map((p) => p.chunk.labels)));
  const far = 3_000_000_000;
  assert.deepEqual(
    Array.from(draw(data, "train", far, 500).chunk.dense),
    Array.from(draw(data, "train", far, 500).chunk.dense),
  );
});

Deno.test("train and test streams differ", () => {
  const train = draw(data, "train", 0, 2048);
  const test = draw(data, "test", 0, 2048);
  assert.notDeepEqual(Array.from(train.chunk.dense), Array.from(test.chunk.dense));
  assert.notDeepEqual(Array.from(train.chunk.indices[2]), Array.from(test.chunk.indices[2]));
  assert.notDeepEqual(Array.from(train.chunk.labels), Array.from(test.chunk.labels));
});

Deno.test("click rate is within 0.02 of the target, also for another target", () => {
  const n = 50_000;
  const { chunk, probabilities } = draw(data, "train", 0, n);
  let clicks = 0, mean = 0;
  for (let i = 0; i < n; i++) {
    assert.ok(chunk.labels[i] === 0 || chunk.labels[i] === 1);
    assert.ok(probabilities[i] > 0 && probabilities[i] < 1);
    clicks += chunk.labels[i];
    mean += probabilities[i];
  }
  assert.ok(Math.abs(clicks / n - 0.25) < 0.02, `click rate ${clicks / n}`);
  assert.ok(Math.abs(mean / n - 0.25) < 0.02, `mean probability ${mean / n}`);

  const rarer = new SyntheticCriteo(spec, { seed: 3, clickRate: 0.1 });
  const r = draw(rarer, "train", 0, n).chunk;
  const rate = r.labels.reduce((s, x) => s + x, 0) / n;
  assert.ok(Math.abs(rate - 0.1) < 0.02, `click rate ${rate}`);
});

Deno.test("indices are in range and dense values are log(count + 1), finite and >= 0", () => {
  const n = 20_000;
  const { chunk } = draw(data, "train", 123, n);
  validateChunk(chunk, spec);
  for (let t = 0; t < spec.tableRows.length; t++) {
    for (let s = 0; s < n; s++) {
      const id = chunk.indices[t][s];
      assert.ok(id >= 0 && id < spec.tableRows[t], `table ${t} id ${id}`);
    }
  }
  const d = spec.denseFeatures;
  const zeros = new Array(d).fill(0);
  let max = 0;
  for (let i = 0; i < n * d; i++) {
    const v = chunk.dense[i];
    assert.ok(Number.isFinite(v) && v >= 0, `dense value ${v}`);
    // exp(v) - 1 is a non-negative integer count (up to float32 rounding).
    const count = Math.exp(v) - 1;
    assert.ok(Math.abs(count - Math.round(count)) <= 1e-6 * (count + 1) + 1e-4, `count ${count}`);
    if (v === 0) zeros[i % d]++;
    max = Math.max(max, v);
  }
  // Heavy tails: some large counts; missing values: some features often 0.
  assert.ok(max > Math.log(1000), `largest dense value ${max}`);
  assert.ok(zeros.some((z) => z / n > 0.5), `zeros per feature ${zeros}`);
  assert.ok(zeros.some((z) => z / n < 0.1), `zeros per feature ${zeros}`);
});

Deno.test("fill rewrites offsets as one-hot and checks the chunk", () => {
  const chunk = allocateOneHotChunk(spec, 8, 16);
  chunk.offsets[0].fill(3);
  data.fill(chunk, "train", 0);
  assert.deepEqual(Array.from(chunk.offsets[5]), Array.from({ length: 17 }, (_, s) => s));
  assert.throws(() => data.fill(chunk, "valid" as SyntheticStream, 0), TypeError);
  assert.throws(() => data.fill(chunk, "train", -1), /Expected a non-negative integer/);
  assert.throws(() => data.fill(chunk, "train", 0.5), RangeError);
  assert.throws(
    () => data.fill(chunk, "train", 0, new Float32Array(4)),
    /Expected 16 teacher probabilities but found 4/,
  );
  assert.throws(
    () => data.fill({ ...chunk, dense: new Float32Array(10) }, "train", 0),
    /Expected 208 dense values but found 10/,
  );
  assert.throws(
    () => data.fill({ ...chunk, indices: chunk.indices.slice(1) }, "train", 0),
    RangeError,
  );
  assert.throws(() => new SyntheticCriteo(spec, { seed: -1 }), /Expected a seed/);
  assert.throws(() => new SyntheticCriteo(spec, { seed: 1, clickRate: 1 }), RangeError);
  assert.throws(() => new SyntheticCriteo(spec, { seed: 1, signal: -1 }), RangeError);
  assert.throws(
    () => new SyntheticCriteo({ denseFeatures: 13, tableRows: [10, 0] }, { seed: 1 }),
    /Expected table 1 rows/,
  );
});

Deno.test("ids follow a Zipf-like law: the top 1% of ids carry most draws", () => {
  const n = 50_000;
  const { chunk } = draw(data, "train", 0, n);
  // The 10M-row table: draws landing on the ids of the top 1% of ranks.
  const big = 2;
  const rows = spec.tableRows[big];
  const top = new Set<number>();
  for (let r = 0; r < Math.ceil(rows / 100); r++) top.add(data.idOfRank(big, r));
  let hits = 0;
  for (let s = 0; s < n; s++) if (top.has(chunk.indices[big][s])) hits++;
  assert.ok(hits / n > 0.6, `top 1% of table ${big} ranks got ${hits / n} of draws`);
  // A 93k-row table, by observed frequency: the most frequent 1% of ids.
  const mid = 9;
  const counts = new Map<number, number>();
  for (let s = 0; s < n; s++) {
    const id = chunk.indices[mid][s];
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const sorted = [...counts.values()].sort((a, b) => b - a);
  const head = sorted.slice(0, Math.ceil(spec.tableRows[mid] / 100)).reduce((a, b) => a + b, 0);
  assert.ok(head / n > 0.5, `top 1% of table ${mid} ids got ${head / n} of draws`);
  // And a long tail: many ids of the big table are seen only once.
  const seen = new Map<number, number>();
  for (let s = 0; s < n; s++) {
    seen.set(chunk.indices[big][s], (seen.get(chunk.indices[big][s]) ?? 0) + 1);
  }
  const singles = [...seen.values()].filter((c) => c === 1).length;
  assert.ok(singles / n > 0.05, `ids seen once: ${singles / n} of draws`);
  for (let t = 0; t < spec.tableRows.length; t++) {
    const s = data.zipfExponent(t);
    assert.ok(s >= 1.05 && s <= 1.2, `table ${t} exponent ${s}`);
  }
});

Deno.test("the teacher has signal but is not separable (Criteo-like ceiling)", () => {
  const ceiling = data.ceiling(100_000);
  console.log(
    `teacher ceiling (Kaggle spec, seed 1, 100k test samples): AUC ${ceiling.auc.toFixed(4)}, ` +
      `log loss ${ceiling.logLoss.toFixed(4)}, accuracy ${ceiling.accuracy.toFixed(4)}, ` +
      `click rate ${ceiling.clickRate.toFixed(4)}`,
  );
  assert.ok(ceiling.auc > 0.7 && ceiling.auc < 1, `AUC ${ceiling.auc}`);
  assert.ok(ceiling.auc > 0.78 && ceiling.auc < 0.85, `AUC ${ceiling.auc}`);
  assert.ok(ceiling.logLoss > 0.4 && ceiling.logLoss < 0.48, `log loss ${ceiling.logLoss}`);
  assert.ok(Math.abs(ceiling.clickRate - 0.25) < 0.02);
  // Without signal the teacher knows nothing.
  const blind = new SyntheticCriteo(spec, { seed: 1, signal: 0 }).ceiling(20_000);
  assert.ok(Math.abs(blind.auc - 0.5) < 0.03, `AUC without signal ${blind.auc}`);
});

Deno.test("full Terabyte cardinalities work, and generation is fast", () => {
  const tb = terabyteSpec();
  const generator = new SyntheticCriteo(tb, { seed: 7 });
  const { chunk } = draw(generator, "train", 1_000_000, 4096, tb);
  validateChunk(chunk, tb);

  const samples = 65_536;
  const buffer = allocateOneHotChunk(spec, 2048, samples);
  data.fill(buffer, "train", 0); // warm-up
  const rounds = 8;
  const start = performance.now();
  for (let k = 0; k < rounds; k++) data.fill(buffer, "train", (k + 1) * samples);
  const seconds = (performance.now() - start) / 1000;
  const rate = (rounds * samples) / seconds;
  console.log(`synthetic Kaggle data: ${Math.round(rate).toLocaleString("en")} samples/s`);
  // Loose bound: a shared or slow machine must not fail the suite; the target is >= 300k/s.
  assert.ok(rate > 50_000, `${rate} samples/s`);
});
