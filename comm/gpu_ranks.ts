/**
 * N GPU ranks of data parallelism on one host, each a Worker with its own GPU engine
 * (`gpu_rank_worker.ts`), exchanging through shared memory: the coordinator side.
 *
 * @module
 */
import type { BatchChunk } from "../engine/batch.ts";
import type { Params } from "../engine/params.ts";
import type { QuantConfig } from "../engine/quant.ts";
import type { GpuReadback } from "../engine/gpu/grad_exchange.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { createSharedGroup } from "./communicator.ts";
import type { Compression } from "./compression.ts";
import type { GpuRankRequest } from "./gpu_rank_worker.ts";
import type { GpuRankChunkResult } from "./gpu_replica.ts";

/** Options of {@linkcode GpuRanks.create}. */
export interface GpuRanksOptions {
  ranks: number;
  spec: ModelSpec;
  /** The global batch (a multiple of the ranks). */
  batchSize: number;
  seed: number;
  quantization?: QuantConfig | null;
  compression: Compression;
  /** GPU of each rank (default: every rank on the default adapter). */
  gpuIndex?: (rank: number) => number | undefined;
  /** Bytes of a rank's slot in shared memory (the largest message it gathers). */
  slotBytes?: number;
  /** How ranks read their results back (`GpuGradientExchange`'s option; default `map`). */
  readback?: GpuReadback;
}

/** N GPU ranks in Workers. */
export class GpuRanks {
  readonly #workers: Worker[];
  /** The adapter of each rank, in words. */
  readonly devices: string[];

  private constructor(workers: Worker[], devices: string[]) {
    this.#workers = workers;
    this.devices = devices;
  }

  /** Starts the ranks and their engines. */
  static async create(o: GpuRanksOptions): Promise<GpuRanks> {
    if (o.batchSize % o.ranks !== 0) {
      throw new RangeError(
        `Expected a global batch that is a multiple of ${o.ranks} ranks but ` +
          `found ${o.batchSize}`,
      );
    }
    const group = createSharedGroup(o.ranks, o.slotBytes ?? 16 << 20);
    const url = new URL("./gpu_rank_worker.ts", import.meta.url).href;
    const workers = Array.from({ length: o.ranks }, () => new Worker(url, { type: "module" }));
    const ranks = new GpuRanks(workers, []);
    // A GPU is chosen through process-wide environment variables read when a Worker first asks
    // for an adapter: ranks choosing GPUs start one after another.
    const one = o.gpuIndex !== undefined;
    const ready = await ranks.#all((rank) => ({
      type: "setup",
      group,
      rank,
      spec: o.spec,
      localBatch: o.batchSize / o.ranks,
      seed: o.seed,
      quantization: o.quantization ?? null,
      compression: o.compression,
      gpuIndex: o.gpuIndex?.(rank),
      readback: o.readback,
    }), one);
    ranks.devices.push(...ready.map((r) => String(r.device)));
    return ranks;
  }

  /** Trains every rank on its slice of every global batch of `chunk`; rank 0's result first. */
  async trainChunk(chunk: BatchChunk, learningRate: number): Promise<GpuRankChunkResult[]> {
    return (await this.#all(() => ({
      type: "train",
      chunk,
      learningRate,
    }))) as unknown as GpuRankChunkResult[];
  }

  /** Every rank's parameters (equal, bit for bit, unless a replica diverged). */
  async params(): Promise<Params[]> {
    return (await this.#all(() => ({ type: "params" }))).map((r) => r.params as Params);
  }

  /** Frees the engines and ends the Workers. */
  async dispose(): Promise<void> {
    try {
      await this.#all(() => ({ type: "dispose" }));
    } finally {
      for (const w of this.#workers) w.terminate();
    }
  }

  /**
   * Sends each rank its request and waits for every answer (the first error throws); with
   * `inTurn`, each rank's request only after the previous rank answered.
   */
  async #all(
    request: (rank: number) => GpuRankRequest,
    inTurn = false,
  ): Promise<Record<string, unknown>[]> {
    const ask = (w: Worker, rank: number) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        w.onmessage = (e) => {
          if (e.data.type === "error") reject(new Error(`GPU rank ${rank}: ${e.data.message}`));
          else resolve(e.data);
        };
        w.postMessage(request(rank));
      });
    if (!inTurn) return await Promise.all(this.#workers.map(ask));
    const out = [];
    for (const [rank, w] of this.#workers.entries()) out.push(await ask(w, rank));
    return out;
  }
}
