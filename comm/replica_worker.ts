/**
 * One data-parallel worker: a {@linkcode DataParallelReplica} (a single-threaded CPU engine
 * holding a replica) joined to the group's shared-memory communicator. Messages: `setup`, `train`, `predict`, `params`, `checksum`, `quantization`
 * (pause or resume QAT), `quantizeInPlace` (post-training quantization).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { BatchChunk } from "../engine/batch.ts";
import { cpuDataParallelHooks, type CpuKernelChoice } from "../engine/cpu/mod.ts";
import type { Params } from "../engine/params.ts";
import type { QuantConfig } from "../engine/quant.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { type SharedGroup, SharedMemoryCommunicator } from "./communicator.ts";
import type { Compression } from "./compression.ts";
import { DataParallelReplica } from "./replica.ts";

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
    kernels?: CpuKernelChoice;
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

let comm: SharedMemoryCommunicator | undefined;
let replica: DataParallelReplica | undefined;

self.onmessage = async (event: MessageEvent<ReplicaRequest>) => {
  const msg = event.data;
  try {
    if (msg.type === "setup") {
      comm = new SharedMemoryCommunicator(msg.group, msg.rank);
      replica = await DataParallelReplica.create(comm, msg);
      const engine = replica.engine;
      // The tables live in shared memory: rank 0's are read in place by the coordinator.
      const tables = msg.rank === 0 ? cpuDataParallelHooks(engine).access.tables : [];
      self.postMessage({
        type: "ready",
        memoryBytes: engine.memoryBytes(),
        tables,
        kernels: engine.info.details.kernels,
        cpuKernels: engine.info.details.cpuKernels,
      });
    } else if (msg.type === "train") {
      const r = await replica!.trainChunk(msg.chunk, msg.learningRate);
      self.postMessage({ type: "trained", ...r, scales: await replica!.engine.embeddingScales() });
    } else if (msg.type === "predict") {
      self.postMessage({
        type: "predicted",
        probabilities: await replica!.engine.predict(msg.chunk),
      });
    } else if (msg.type === "params") {
      self.postMessage({ type: "params", params: await replica!.engine.readParams() });
    } else if (msg.type === "quantization") {
      replica!.engine.setQuantizationActive(msg.active);
      self.postMessage({ type: "quantization", scales: await replica!.engine.embeddingScales() });
    } else if (msg.type === "quantizeInPlace") {
      replica!.engine.quantizeInPlace(msg.config);
      self.postMessage({
        type: "quantizeInPlace",
        scales: await replica!.engine.embeddingScales(),
      });
    } else if (msg.type === "checksum") {
      self.postMessage({ type: "checksum", checksum: replica!.checksum() });
    }
  } catch (error) {
    // A failing worker must not leave the others blocked in a collective.
    comm?.abort();
    self.postMessage({ type: "error", message: String((error as Error)?.stack ?? error) });
  }
};
