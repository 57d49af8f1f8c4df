/**
 * The chunk loop (`suites/training_loop.ts`) hands the trainer the same chunks in the same order
 * whether it fills on the spot or ahead: an engine that records ahead gets a third buffer, filled
 * with the chunk after next while two chunks are in flight, and must never see a buffer that is
 * being written.
 */
import assert from "node:assert/strict";
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import type { Engine, TrainChunkResult } from "../engine/engine.ts";
import { allocatePhaseSamples } from "../engine/phases.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { kaggleSuite } from "../suites/mod.ts";
import { type ChunkSource, trainChunks, TrainingTally } from "../suites/training_loop.ts";
import type { RunConfig } from "../record/schema.ts";

const spec = kaggleSpec(0.0005);
const fp32 = kaggleSuite({ experiments: ["table3"] }).runs.find((r) => r.name === "fp32")!;
// Chunks of 3 iterations over epochs of 10: short views, an epoch's restart, evaluations.
const config: RunConfig = {
  ...fp32,
  batchSize: 16,
  trainSamples: 10 * 16,
  epochs: 3,
  evalEvery: 4,
  chunkIterations: 3,
  warmupIterations: 1,
};

/** A digest of everything a chunk's batches hold. */
function digest(chunk: BatchChunk): string {
  const n = chunk.samples;
  let h = 0;
  const mix = (v: number) => (h = Math.imul(h ^ v, 0x9e3779b1) >>> 0);
  const bits = new Int32Array(chunk.dense.buffer, chunk.dense.byteOffset, n * spec.denseFeatures);
  for (const v of bits) mix(v);
  for (let s = 0; s < n; s++) mix(chunk.labels[s]);
  for (const [t, idx] of chunk.indices.entries()) {
    for (let s = 0; s < n; s++) mix(idx[chunk.offsets[t][s]]);
  }
  return `${n}:${h.toString(16)}`;
}

/** Runs the loop; returns the digest of every chunk as the trainer saw it when called. */
async function chunksSeen(data: ChunkSource, overlapsChunks: boolean): Promise<string[]> {
  const seen: string[] = [];
  const settled: Promise<unknown>[] = [];
  // The first call reads its chunk only after a preparation, and the calls made meanwhile wait
  // for it in call order, as the GPU engine's first LSQ call does; later calls read when called.
  let preparing: Promise<void> | null = new Promise((resolve) => setTimeout(resolve, 30));
  preparing.then(() => preparing = null);
  let lastRead: Promise<void> = Promise.resolve();
  const trainer = {
    overlapsChunks,
    trainChunk(chunk: BatchChunk): Promise<TrainChunkResult> {
      const at = seen.push("") - 1;
      const read = () => void (seen[at] = digest(chunk));
      if (preparing) lastRead = lastRead.then(() => preparing).then(read);
      else read();
      const iterations = chunk.samples / chunk.batchSize;
      // Trains for a while after the read: the loop fills while chunks are in flight.
      const done = lastRead.then(() =>
        new Promise<TrainChunkResult>((resolve) =>
          setTimeout(() =>
            resolve({
              iterations,
              loss: new Float32Array(iterations),
              wallMs: 1,
              phases: allocatePhaseSamples(iterations),
            }), 3)
        )
      );
      settled.push(done);
      return done;
    },
  };
  const engine = { setQuantizationActive() {} } as unknown as Engine;
  const itersPerEpoch = config.trainSamples / config.batchSize;
  await trainChunks({
    config,
    spec,
    engine,
    trainer,
    data,
    itersPerEpoch,
    totalIterations: itersPerEpoch * config.epochs,
    report() {},
    evaluate: () => new Promise((resolve) => setTimeout(resolve, 1)),
    endEpoch: async () => {},
  }, new TrainingTally());
  await Promise.all(settled);
  return seen;
}

Deno.test("chunks filled ahead reach the trainer as chunks filled on the spot", async () => {
  const data = new SyntheticCriteo(spec, { seed: 3 });
  const onTheSpot = await chunksSeen(data, false);
  // Fills that take a while, written in two halves with a pause between (as workers write).
  let delay = 0;
  const slow: ChunkSource = {
    async fill(chunk, stream, first) {
      delay = (delay + 3) % 7;
      await new Promise((resolve) => setTimeout(resolve, delay));
      const half = Math.floor(chunk.samples / 2);
      const fresh = allocateOneHotChunk(spec, chunk.batchSize, chunk.samples);
      data.fill(fresh, stream, first);
      chunk.dense.set(fresh.dense.subarray(0, half * spec.denseFeatures));
      chunk.labels.set(fresh.labels.subarray(0, half));
      await new Promise((resolve) => setTimeout(resolve, 2));
      chunk.dense.set(fresh.dense.subarray(0, chunk.samples * spec.denseFeatures));
      chunk.labels.set(fresh.labels.subarray(0, chunk.samples));
      fresh.indices.forEach((idx, t) => chunk.indices[t].set(idx.subarray(0, chunk.samples)));
    },
  };
  const ahead = await chunksSeen(slow, true);
  // Evaluations every 4 iterations cut epochs of 10 into chunks of 3, 1, 3, 1, 2 (epochs 1 and 3)
  // and 2, 3, 1, 3, 1 (epoch 2).
  assert.equal(onTheSpot.length, 15);
  assert.equal(new Set(onTheSpot).size, 10);
  assert.deepEqual(ahead, onTheSpot);
  assert.deepEqual(await chunksSeen(slow, false), onTheSpot);
});
