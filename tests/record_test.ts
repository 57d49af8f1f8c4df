import assert from "node:assert/strict";
import { meanBytesPerIteration } from "../comm/accounting.ts";
import { COMPRESSION_PRESETS as COMM_PRESETS, CompressionSchema } from "../comm/compression.ts";
import {
  COMPRESSION_PRESET_NAMES,
  COMPRESSION_PRESETS,
  compressionPreset,
} from "../record/presets.ts";
import { RunConfigSchema } from "../record/schema.ts";
import { medianOfSorted, quantileSorted, summarize, upperMedian } from "../record/stats.ts";

Deno.test("compression presets: one table, every entry valid compression settings, named by the schema", () => {
  assert.equal(COMM_PRESETS, COMPRESSION_PRESETS);
  assert.deepEqual(Object.keys(COMPRESSION_PRESETS), [...COMPRESSION_PRESET_NAMES]);
  for (const name of COMPRESSION_PRESET_NAMES) {
    assert.deepEqual(CompressionSchema.parse(COMPRESSION_PRESETS[name]), COMPRESSION_PRESETS[name]);
    assert.equal(compressionPreset(name), COMPRESSION_PRESETS[name]);
  }
  assert.equal(compressionPreset("toString"), undefined);
  const dp = RunConfigSchema.shape.dataParallel.unwrap();
  assert.deepEqual(dp.shape.compression.options, [...COMPRESSION_PRESET_NAMES]);
});

Deno.test("summarize: interpolated median and percentiles, MAD as the mean of the middle deviations", () => {
  assert.deepEqual(summarize([]), { n: 0, median: 0, mad: 0, mean: 0, p10: 0, p90: 0 });
  const v = [0.1, 0.3, 0.7, 2.9, 0.2, 5];
  const s = Float64Array.from(v).sort();
  const r = summarize(v);
  assert.equal(r.median, quantileSorted(s, 0.5));
  const dev = Float64Array.from(s, (x) => Math.abs(x - r.median)).sort();
  assert.equal(r.mad, (dev[2] + dev[3]) / 2);
  assert.equal(r.mad, medianOfSorted(dev));
  assert.equal(r.p90, quantileSorted(s, 0.9));
});

Deno.test("upperMedian takes the upper middle value; NaN when empty", () => {
  assert.equal(upperMedian([4, 1, 3, 2]), 3);
  assert.equal(upperMedian([5, 1, 3]), 3);
  assert.ok(Number.isNaN(upperMedian([])));
});

Deno.test("meanBytesPerIteration: over workers and iterations, zero iterations as one", () => {
  const a = { embedding: 30, mlp: 10, scales: 2, total: 42 };
  const b = { embedding: 10, mlp: 10, scales: 2, total: 22 };
  assert.deepEqual(meanBytesPerIteration([a, b], 2), {
    embedding: 10,
    mlp: 5,
    scales: 1,
    total: 16,
  });
  assert.deepEqual(meanBytesPerIteration([a], 0), a);
});
