/**
 * One GPU rank of data parallelism in a Worker: its own GPU engine (on GPU `gpuIndex` of this
 * host, or the default adapter), the group's shared-memory communicator, and its contiguous
 * slice of every global batch it is sent (`sliceChunk`). Messages: `setup`, `train`, `params`,
 * `quantize`, `predict`, `table`, `quantActive`, `scales`, `checksum`, `dispose`; every answer is `{ type, ... }`, or `{ type: "error", message }` (the
 * group is aborted then, so that no rank stays blocked in a collective).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { BatchChunk } from "../engine/batch.ts";
import type { Engine } from "../engine/engine.ts";
import { createGpuEngine, GpuIndexError } from "../engine/gpu/mod.ts";
import type { QuantConfig } from "../engine/quant.ts";
import type { GpuReadback } from "../engine/gpu/grad_exchange.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { sliceChunk } from "./chunk.ts";
import { type SharedGroup, SharedMemoryCommunicator } from "./communicator.ts";
import type { Compression } from "./compression.ts";
import { GpuRankExchange } from "./gpu_replica.ts";
import { paramsChecksum } from "./replicas.ts";

/** Messages a GPU rank accepts. */
export type GpuRankRequest =
  | {
    type: "setup";
    group: SharedGroup;
    rank: number;
    spec: ModelSpec;
    /** This rank's batch (the global batch / ranks). */
    localBatch: number;
    /** The largest batch it predicts (default `localBatch`). */
    predictBatch?: number;
    seed: number;
    quantization?: QuantConfig | null;
    compression: Compression;
    gpuIndex?: number;
    readback?: GpuReadback;
  }
  | {
    type: "train";
    chunk: BatchChunk;
    learningRate: number;
    /** Also answer the parameters' checksum after the chunk (`replicas.ts`). */
    checksum?: boolean;
  }
  | { type: "params" }
  | {
    type: "quantize";
    config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">;
  }
  | { type: "predict"; chunk: BatchChunk }
  | { type: "table"; table: number }
  | { type: "quantActive"; active: boolean }
  | { type: "scales" }
  | { type: "checksum" }
  | { type: "dispose" };

let comm: SharedMemoryCommunicator | undefined;
let engine: Engine | undefined;
let exchange: GpuRankExchange | undefined;

self.onmessage = async (event: MessageEvent<GpuRankRequest>) => {
  const msg = event.data;
  try {
    if (msg.type === "setup") {
      comm = new SharedMemoryCommunicator(msg.group, msg.rank);
      engine = await createGpuEngine({
        spec: msg.spec,
        maxBatch: Math.max(msg.localBatch, msg.predictBatch ?? 0),
        seed: msg.seed,
        quantization: msg.quantization ?? null,
        gpuIndex: msg.gpuIndex,
      });
      exchange = new GpuRankExchange(comm, msg.compression, msg.readback);
      self.postMessage({
        type: "ready",
        device: engine.info.device,
        memoryBytes: engine.memoryBytes(),
      });
    } else if (msg.type === "train") {
      const local = sliceChunk(msg.chunk, comm!.rank, comm!.size);
      const r = await exchange!.trainChunk(engine!, local, msg.learningRate);
      // After the timed chunk, so its wall time does not include the readback.
      const checksum = msg.checksum ? paramsChecksum(await engine!.readParams()) : undefined;
      self.postMessage({ type: "trained", ...r, checksum });
    } else if (msg.type === "params") {
      self.postMessage({ type: "params", params: await engine!.readParams() });
    } else if (msg.type === "quantize") {
      engine!.quantizeInPlace(msg.config);
      self.postMessage({ type: "quantized" });
    } else if (msg.type === "predict") {
      self.postMessage({ type: "predicted", probabilities: await engine!.predict(msg.chunk) });
    } else if (msg.type === "table") {
      self.postMessage({ type: "table", values: await engine!.readTable(msg.table) });
    } else if (msg.type === "quantActive") {
      engine!.setQuantizationActive(msg.active);
      self.postMessage({ type: "quantActive" });
    } else if (msg.type === "scales") {
      self.postMessage({ type: "scales", scales: await engine!.embeddingScales() });
    } else if (msg.type === "checksum") {
      self.postMessage({ type: "checksum", checksum: paramsChecksum(await engine!.readParams()) });
    } else if (msg.type === "dispose") {
      exchange?.destroy();
      await engine?.dispose();
      self.postMessage({ type: "disposed" });
    }
  } catch (error) {
    comm?.abort();
    // A wrong GPU index is one line; anything else comes with its stack.
    const message = error instanceof GpuIndexError
      ? `${error.name}: ${error.message}`
      : String((error as Error)?.stack ?? error);
    self.postMessage({ type: "error", message });
  }
};
