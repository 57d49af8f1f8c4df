/**
 * One data-parallel worker: a single-threaded CPU engine holding a replica, joined to the group's
 * communicator. Messages: `setup`, `train`, `predict`, `params`, `checksum`, `quantization`
 * (pause or resume QAT), `quantizeInPlace` (post-training quantization).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { BatchChunk } from "../engine/batch.ts";
import { cpuDataParallelHooks, createCpuEngine } from "../engine/cpu/mod.ts";
import type { Engine } from "../engine/engine.ts";
import type { Params } from "../engine/params.ts";
import type { QuantConfig } from "../engine/quant.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { sliceChunk } from "./chunk.ts";
import { type SharedGroup, SharedMemoryCommunicator } from "./communicator.ts";
import {
  type ByteCount,
  type Compression,
  exchangeWithCommunicator,
  WorkerGradients,
} from "./compression.ts";
import { replicaChecksum } from "./replicas.ts";

/** Messages the coordinator sends. */
export type ReplicaRequest =
  | {
    type: "setup";
    rank: number;
    group: SharedGroup;
    spec: ModelSpec;
    localBatch: number;
    /** Largest batch the replica predicts (at least `localBatch`). */
    maxBatch: number;
    seed: number;
    params?: Params;
    quantization: QuantConfig | null;
    compression: Compression;
  }
  | { type: "train"; chunk: BatchChunk; learningRate: number }
  | { type: "predict"; chunk: BatchChunk }
  | { type: "params" }
  | { type: "checksum" }
  | { type: "quantization"; active: boolean }
  | {
    type: "quantizeInPlace";
    config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">;
  };

let engine: Engine | undefined;
let comm: SharedMemoryCommunicator | undefined;
let state: WorkerGradients | undefined;
let sums: { f32: Float32Array; i32: Int32Array } | undefined;

self.onmessage = async (event: MessageEvent<ReplicaRequest>) => {
  const msg = event.data;
  try {
    if (msg.type === "setup") {
      comm = new SharedMemoryCommunicator(msg.group, msg.rank);
      engine = await createCpuEngine({
        spec: msg.spec,
        maxBatch: Math.max(msg.localBatch, msg.maxBatch),
        seed: msg.seed,
        params: msg.params,
        threads: 1,
        quantization: msg.quantization,
      });
      state = new WorkerGradients(msg.spec, msg.compression);
      sums = { f32: new Float32Array(state.mlp.length), i32: new Int32Array(state.mlp.length) };
      // The tables live in shared memory: rank 0's are read in place by the coordinator.
      const tables = msg.rank === 0 ? cpuDataParallelHooks(engine).access.tables : [];
      self.postMessage({ type: "ready", memoryBytes: engine.memoryBytes(), tables });
    } else if (msg.type === "train") {
      const hooks = cpuDataParallelHooks(engine!);
      const local = sliceChunk(msg.chunk, comm!.rank, comm!.size);
      const sent0 = comm!.bytesSent;
      const bytes: ByteCount = { embedding: 0, mlp: 0, scales: 0, total: 0 };
      const r = await hooks.trainChunk(local, { learningRate: msg.learningRate }, (rows, s0) => {
        exchangeWithCommunicator(
          comm!,
          hooks.access,
          state!,
          sums!,
          local,
          s0,
          rows,
          msg.learningRate,
        );
        const b = state!.bytes();
        bytes.embedding += b.embedding;
        bytes.mlp += b.mlp;
        bytes.scales += b.scales;
        bytes.total += b.total;
      });
      self.postMessage({
        type: "trained",
        result: r,
        bytes,
        bytesSent: comm!.bytesSent - sent0,
        scales: engine!.embeddingScales(),
      });
    } else if (msg.type === "predict") {
      self.postMessage({ type: "predicted", probabilities: await engine!.predict(msg.chunk) });
    } else if (msg.type === "params") {
      self.postMessage({ type: "params", params: await engine!.readParams() });
    } else if (msg.type === "quantization") {
      engine!.setQuantizationActive(msg.active);
      self.postMessage({ type: "quantization", scales: engine!.embeddingScales() });
    } else if (msg.type === "quantizeInPlace") {
      engine!.quantizeInPlace(msg.config);
      self.postMessage({ type: "quantizeInPlace", scales: engine!.embeddingScales() });
    } else if (msg.type === "checksum") {
      const access = cpuDataParallelHooks(engine!).access;
      self.postMessage({ type: "checksum", checksum: replicaChecksum(access) });
    }
  } catch (error) {
    // A failing worker must not leave the others blocked in a collective.
    comm?.abort();
    self.postMessage({ type: "error", message: String((error as Error)?.stack ?? error) });
  }
};
