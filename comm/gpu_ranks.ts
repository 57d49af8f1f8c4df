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
import {
  type WorkerThreads,
  workerThreads,
  workerThreadsExited,
  workerThreadsSince,
} from "../engine/gpu/worker_threads.ts";
import { createSharedGroup } from "./communicator.ts";
import type { Compression } from "./compression.ts";
import type { GpuRankRequest } from "./gpu_rank_worker.ts";
import type { GpuRankChunkResult } from "./gpu_replica.ts";
import { ReplicaDivergenceError } from "./replicas.ts";

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
  /** The largest batch rank 0 predicts (default the local batch). */
  predictBatch?: number;
  /** Bytes of a rank's slot in shared memory (the largest message it gathers). */
  slotBytes?: number;
  /** How ranks read their results back (`GpuGradientExchange`'s option and default). */
  readback?: GpuReadback;
  /**
   * Compare every rank's parameter checksum after every chunk (default true), as the MPI runner
   * does at its end: a diverged replica fails the chunk.
   */
  checkReplicas?: boolean;
}

/**
 * The {@linkcode GpuRanksOptions.gpuIndex} of a list of GPU indices, one per rank: a list shorter
 * than the ranks repeats its last index (so one index puts every rank on that GPU). No list, or
 * an empty one, leaves every rank on the default adapter.
 */
export function rankGpuIndex(
  gpus: readonly number[] | null | undefined,
): ((rank: number) => number) | undefined {
  if (!gpus?.length) return undefined;
  return (rank) => gpus[Math.min(rank, gpus.length - 1)];
}

/** N GPU ranks in Workers. */
export class GpuRanks {
  readonly #workers: Worker[];
  /** The adapter of each rank, in words. */
  readonly devices: string[];
  /** Bytes the ranks' engines hold, together. */
  memoryBytes = 0;
  /**
   * The ranks' Worker threads by id (`engine/gpu/worker_threads.ts`), or null where
   * threads cannot be listed: {@linkcode dispose} waits until they have ended.
   */
  readonly threads: WorkerThreads | null;
  readonly #checkReplicas: boolean;
  /** Requests go one at a time (each Worker answers its last request). */
  #queue: Promise<unknown> = Promise.resolve();
  /** Chunks trained so far (named when replicas diverge). */
  #chunks = 0;

  private constructor(
    workers: Worker[],
    devices: string[],
    checkReplicas: boolean,
    threads: WorkerThreads | null,
  ) {
    this.#workers = workers;
    this.threads = threads;
    this.devices = devices;
    this.#checkReplicas = checkReplicas;
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
    const before = workerThreads();
    const workers = Array.from({ length: o.ranks }, () => new Worker(url, { type: "module" }));
    const threads = workerThreadsSince(before);
    const ranks = new GpuRanks(workers, [], o.checkReplicas ?? true, threads);
    // A GPU is chosen through process-wide environment variables read when a Worker first asks
    // for an adapter: ranks choosing GPUs start one after another.
    const one = o.gpuIndex !== undefined;
    const ready = await ranks.#all((rank) => ({
      type: "setup",
      group,
      rank,
      spec: o.spec,
      localBatch: o.batchSize / o.ranks,
      predictBatch: o.predictBatch,
      seed: o.seed,
      quantization: o.quantization ?? null,
      compression: o.compression,
      gpuIndex: o.gpuIndex?.(rank),
      readback: o.readback,
    }), one);
    ranks.devices.push(...ready.map((r) => String(r.device)));
    ranks.memoryBytes = ready.reduce((a, r) => a + (r.memoryBytes as number), 0);
    return ranks;
  }

  /**
   * Trains every rank on its slice of every global batch of `chunk`; rank 0's result first.
   * Unless made with `checkReplicas: false`, then compares the ranks' parameter checksums and
   * throws {@linkcode ReplicaDivergenceError} naming the chunk and the ranks that differ from
   * rank 0.
   */
  async trainChunk(chunk: BatchChunk, learningRate: number): Promise<GpuRankChunkResult[]> {
    const checksum = this.#checkReplicas;
    const results = await this.#all(() => ({ type: "train", chunk, learningRate, checksum }));
    const chunkIndex = this.#chunks++;
    if (checksum) {
      const sums = results.map((r) => String(r.checksum));
      const differ = sums.flatMap((s, rank) => s === sums[0] ? [] : [rank]);
      if (differ.length) {
        throw new ReplicaDivergenceError(
          sums,
          `after chunk ${chunkIndex} (ranks ${differ.join(", ")} differ from rank 0)`,
        );
      }
    }
    return results as unknown as GpuRankChunkResult[];
  }

  /**
   * Post-training quantization of the parameters in place (the engine's `quantizeInPlace`), on
   * every rank or only on rank `only`.
   */
  async quantizeInPlace(
    config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">,
    only?: number,
  ): Promise<void> {
    if (only === undefined) await this.#all(() => ({ type: "quantize", config }));
    else await this.#one(only, { type: "quantize", config });
  }

  /** Every rank's parameters (equal, bit for bit, unless a replica diverged). */
  async params(): Promise<Params[]> {
    return (await this.#all(() => ({ type: "params" }))).map((r) => r.params as Params);
  }

  /** The parameters of rank `rank`'s replica. */
  async rankParams(rank: number): Promise<Params> {
    return (await this.#one(rank, { type: "params" })).params as Params;
  }

  /**
   * Click probabilities of `chunk`, from rank 0's replica alone: a prediction leaves no state
   * that training reads (`tests/gpu_eval_state_test.ts`), and a rank it set apart would fail the
   * next chunk's checksum comparison.
   */
  async predict(chunk: BatchChunk): Promise<Float32Array> {
    return (await this.#one(0, { type: "predict", chunk })).probabilities as Float32Array;
  }

  /** Table `table` of rank 0's replica. */
  async readTable(table: number): Promise<Float32Array> {
    return (await this.#one(0, { type: "table", table })).values as Float32Array;
  }

  /** Switches QAT on or off on every rank. */
  async setQuantizationActive(active: boolean): Promise<void> {
    await this.#all(() => ({ type: "quantActive", active }));
  }

  /** Rank 0's embedding scales. */
  async embeddingScales(): Promise<Float32Array> {
    return (await this.#one(0, { type: "scales" })).scales as Float32Array;
  }

  /** Every rank's parameter checksum (`replicas.ts`), by rank. */
  async checksums(): Promise<string[]> {
    return (await this.#all(() => ({ type: "checksum" }))).map((r) => String(r.checksum));
  }

  /**
   * Frees the engines, ends the Workers and waits until their threads have ended: a thread still
   * dropping its WebGPU instance when the process exits crashes NVIDIA's Vulkan driver.
   */
  async dispose(): Promise<void> {
    try {
      await this.#all(() => ({ type: "dispose" }));
    } finally {
      for (const w of this.#workers) w.terminate();
      if (!await workerThreadsExited(this.threads)) {
        console.warn(
          `warning: the GPU ranks' Worker threads (${
            [...this.threads!.values()].join(", ")
          }) were still ` +
            `running 5 s after they were ended; exiting now may crash in the GPU driver`,
        );
      }
    }
  }

  /**
   * Sends each rank its request and waits for every answer (the first error throws); with
   * `inTurn`, each rank's request only after the previous rank answered.
   */
  #all(
    request: (rank: number) => GpuRankRequest,
    inTurn = false,
  ): Promise<Record<string, unknown>[]> {
    const ask = (w: Worker, rank: number) => this.#ask(w, rank, request(rank));
    return this.#inQueue(async () => {
      if (!inTurn) return await Promise.all(this.#workers.map(ask));
      const out = [];
      for (const [rank, w] of this.#workers.entries()) out.push(await ask(w, rank));
      return out;
    });
  }

  /** Sends rank `rank` alone its request, in turn with every other request. */
  #one(rank: number, request: GpuRankRequest): Promise<Record<string, unknown>> {
    const w = this.#workers[rank];
    if (!w) {
      throw new RangeError(`Expected a rank in [0, ${this.#workers.length}) but found ${rank}`);
    }
    return this.#inQueue(() => this.#ask(w, rank, request));
  }

  /** Runs `task` after every request sent before it settled. */
  #inQueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Sends rank `rank` its request and waits for its answer (an error answer throws). */
  #ask(w: Worker, rank: number, request: GpuRankRequest): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      w.onmessage = (e) => {
        if (e.data.type === "error") reject(new Error(`GPU rank ${rank}: ${e.data.message}`));
        else resolve(e.data);
      };
      // A failure outside the rank's handler (its module failing to load): an error, not a hang.
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`GPU rank ${rank}: ${e.message}`));
      };
      w.postMessage(request);
    });
  }
}
