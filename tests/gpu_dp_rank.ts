/// <reference lib="deno.worker" />
// A GPU rank of the GPU data-parallel tests (tests/gpu_dp_train_test.ts): its own GPU engine,
// the group's shared-memory communicator, its slice of every global batch.
import { sliceChunk } from "../comm/chunk.ts";
import { type SharedGroup, SharedMemoryCommunicator } from "../comm/communicator.ts";
import type { Compression } from "../comm/compression.ts";
import { GpuRankExchange } from "../comm/gpu_replica.ts";
import type { BatchChunk } from "../engine/batch.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import type { ModelSpec } from "../engine/spec.ts";

interface RankRequest {
  group: SharedGroup;
  rank: number;
  spec: ModelSpec;
  seed: number;
  compression: Compression;
  chunks: BatchChunk[];
  learningRate: number;
}

self.onmessage = async (e: MessageEvent<RankRequest>) => {
  const m = e.data;
  const comm = new SharedMemoryCommunicator(m.group, m.rank);
  try {
    const local = m.chunks.map((c) => sliceChunk(c, m.rank, comm.size));
    const engine = await createGpuEngine({
      spec: m.spec,
      maxBatch: local[0].batchSize,
      seed: m.seed,
      gpuIndex: 0,
    });
    const exchange = new GpuRankExchange(comm, m.compression);
    const losses: Float32Array[] = [];
    const bytes = [];
    for (const c of local) {
      const r = await exchange.trainChunk(engine, c, m.learningRate);
      losses.push(r.loss);
      bytes.push(r.bytesPerIteration);
    }
    const params = await engine.readParams();
    exchange.destroy();
    await engine.dispose();
    self.postMessage({ params, losses, bytes });
  } catch (error) {
    comm.abort();
    self.postMessage({ error: String((error as Error)?.stack ?? error) });
  }
};
