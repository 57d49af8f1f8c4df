/**
 * Samples/s of N single-threaded data-parallel workers against one single-threaded engine, on
 * the Kaggle architecture (tables scaled) and synthetic data.
 *
 * `deno run -A comm/bench_dp.ts [workers=2] [globalBatch=2048] [iterations=12] [scale=0.01]
 *  [preset=sparse]`
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { COMPRESSION_PRESETS } from "./compression.ts";
import { DataParallelTrainer } from "./data_parallel.ts";

const [workers = 2, batch = 2048, iterations = 12, scale = 0.01] = Deno.args.slice(0, 4).map(
  Number,
);
const preset = (Deno.args[4] ?? "sparse") as keyof typeof COMPRESSION_PRESETS;
const spec = kaggleSpec(scale);
const data = new SyntheticCriteo(spec, { seed: 1 });
const chunk = allocateOneHotChunk(spec, batch, batch * iterations, true);
data.fill(chunk, "train", 0);
const warm = allocateOneHotChunk(spec, batch, batch * 2, true);
data.fill(warm, "train", batch * iterations);

const engine = await createCpuEngine({ spec, maxBatch: batch, seed: 1, threads: 1 });
await engine.trainChunk(warm, { learningRate: 0.01 });
let t = performance.now();
await engine.trainChunk(chunk, { learningRate: 0.01 });
const one = (batch * iterations) / ((performance.now() - t) / 1000);
await engine.dispose();

const dp = await DataParallelTrainer.create({
  spec,
  workers,
  maxBatch: batch,
  seed: 1,
  compression: COMPRESSION_PRESETS[preset],
});
await dp.trainChunk(warm, { learningRate: 0.01 });
t = performance.now();
const r = await dp.trainChunk(chunk, { learningRate: 0.01 });
const many = (batch * iterations) / ((performance.now() - t) / 1000);
await dp.checkReplicas();
dp.dispose();
const med = (a: Float64Array) => Float64Array.from(a).sort()[a.length >> 1];
console.log(JSON.stringify({
  workers,
  globalBatch: batch,
  iterations,
  scale,
  preset,
  oneWorkerSamplesPerS: Math.round(one),
  dataParallelSamplesPerS: Math.round(many),
  speedup: +(many / one).toFixed(3),
  rank0MedianMs: Object.fromEntries(
    Object.entries(r.phases).map(([p, v]) => [p, +med(v).toFixed(2)]),
  ),
  bytesPerIteration: r.bytesPerIteration,
}));
