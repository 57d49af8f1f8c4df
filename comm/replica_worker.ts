/**
 * One data-parallel worker: a {@linkcode DataParallelReplica} (a single-threaded CPU engine
 * holding a replica) joined to the group's shared-memory communicator. Messages: `setup`,
 * `train`, `predict`, `params`, `checksum`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { BatchChunk } from "../engine/batch.ts";
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
    seed: number;
    params?: Params;
    quantization: QuantConfig | null;
    compression: Compression;
  }
  | { type: "train"; chunk: BatchChunk; learningRate: number }
  | { type: "predict"; chunk: BatchChunk }
  | { type: "params" }
  | { type: "checksum" };

let comm: SharedMemoryCommunicator | undefined;
let replica: DataParallelReplica | undefined;

self.onmessage = async (event: MessageEvent<ReplicaRequest>) => {
  const msg = event.data;
  try {
    if (msg.type === "setup") {
      comm = new SharedMemoryCommunicator(msg.group, msg.rank);
      replica = await DataParallelReplica.create(comm, msg);
      self.postMessage({ type: "ready" });
    } else if (msg.type === "train") {
      const r = await replica!.trainChunk(msg.chunk, msg.learningRate);
      self.postMessage({ type: "trained", ...r });
    } else if (msg.type === "predict") {
      self.postMessage({
        type: "predicted",
        probabilities: await replica!.engine.predict(msg.chunk),
      });
    } else if (msg.type === "params") {
      self.postMessage({ type: "params", params: await replica!.engine.readParams() });
    } else if (msg.type === "checksum") {
      self.postMessage({ type: "checksum", checksum: replica!.checksum() });
    }
  } catch (error) {
    // A failing worker must not leave the others blocked in a collective.
    comm?.abort();
    self.postMessage({ type: "error", message: String((error as Error)?.stack ?? error) });
  }
};
