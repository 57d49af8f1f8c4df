/**
 * The chunk loop of a training run: fills the training data a chunk at a time, trains it
 * (starting the next chunk early when the trainer allows), keeps the timing samples, projects
 * the time budget, and calls for evaluations where the curve is sampled and at every epoch's
 * end. What it measured is kept in a {@linkcode TrainingTally} that outlives a failure.
 *
 * @module
 */
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import type { ByteCount, Engine, TrainChunkResult } from "../engine/engine.ts";
import { type Phase, PHASES } from "../engine/phases.ts";
import { quantileSorted } from "../record/stats.ts";
import { meanBytesPerIteration } from "../comm/accounting.ts";
import { byteCount } from "../comm/compression.ts";
import type { ModelSpec } from "../engine/spec.ts";
import type { RunConfig } from "../record/schema.ts";
import type { ChunkTrainer } from "./engines.ts";

/**
 * Chunk buffers of an engine that records ahead: the one training, the next (submitted) and the
 * chunk after next (being filled). The benches that time chunks keep as many (`timeChunks`).
 */
export const LOOKAHEAD_CHUNK_BUFFERS = 3;

/** Progress of a run, reported after every chunk and evaluation. */
export interface RunProgress {
  run: string;
  stage: "init" | "train" | "eval" | "done";
  epoch: number;
  iteration: number;
  totalIterations: number;
  /** Mean training loss of the last chunk. */
  trainLoss?: number;
  /** Median ms per iteration so far. */
  msPerIteration?: number;
  /** Latest test metrics. */
  accuracy?: number;
  auc?: number;
}

/** Where the training batches come from (synthetic or Criteo data). */
export interface TrainData {
  /** Fills `chunk` with the training samples from `firstSample` on. */
  fill(chunk: BatchChunk, stream: "train", firstSample: number): void;
}

/**
 * What the chunk loop fills its chunks from: a {@linkcode TrainData}, or one that fills
 * asynchronously (a pool of Workers, `data/fill_pool.ts`), which the loop awaits while the engine
 * trains the chunk before.
 */
export interface ChunkSource {
  /** Fills `chunk` with the training samples from `firstSample` on (settled when written). */
  fill(chunk: BatchChunk, stream: "train", firstSample: number): void | Promise<void>;
}

/** Adds a chunk's mean bytes per iteration, weighted by its iterations, to `sum`. */
function addChunkBytes(sum: ByteCount, perIteration: ByteCount, iterations: number): void {
  for (const k of ["embedding", "mlp", "scales", "total"] as const) {
    sum[k] += perIteration[k] * iterations;
  }
}

/** The mean bytes per iteration of `sum` over `iterations`, total first as results record it. */
function meanChunkBytes(sum: ByteCount, iterations: number): ByteCount {
  const { total, embedding, mlp, scales } = meanBytesPerIteration([sum], iterations);
  return { total, embedding, mlp, scales };
}

/**
 * What the chunk loop has measured so far. The caller keeps it, so that a run that fails
 * mid-training still records its iterations, timings and curve.
 */
export class TrainingTally {
  /** Iterations trained. */
  iteration = 0;
  /** Wall-clock ms of the chunk loop (filling data included). */
  trainWallMs = 0;
  /** Peak resident set size seen. */
  peakRss: number = Deno.memoryUsage().rss;
  /** Per-phase ms of every warmed-up iteration. */
  readonly phaseSamples: Record<Phase, number[]> = phaseArrays();
  /** Every iteration's phases, warm-up included (the report marks it), to 0.1 us. */
  readonly rawPhases: Record<Phase, number[]> = phaseArrays();
  /** Sum of the phases of every warmed-up iteration. */
  readonly total: number[] = [];
  /** Bytes sent, summed over iterations (data-parallel trainers only). */
  readonly #bytes: ByteCount = byteCount(0, 0, 0);
  #lossSum = 0;
  #lossCount = 0;

  /** Records the rss now into the peak. */
  sampleRss(): void {
    this.peakRss = Math.max(this.peakRss, Deno.memoryUsage().rss);
  }

  /** Mean training loss since the last call (null when no iteration trained since). */
  takeMeanLoss(): number | null {
    const mean = this.#lossCount ? this.#lossSum / this.#lossCount : null;
    this.#lossSum = 0, this.#lossCount = 0;
    return mean;
  }

  /** Mean bytes a worker sent per iteration over the iterations trained so far. */
  bytesPerIteration(): ByteCount {
    return meanChunkBytes(this.#bytes, this.iteration);
  }

  /** Adds a trained chunk; returns its mean loss. */
  addChunk(r: TrainChunkResult, warmupIterations: number): number {
    if (r.bytesPerIteration) addChunkBytes(this.#bytes, r.bytesPerIteration, r.iterations);
    let chunkLoss = 0;
    for (let i = 0; i < r.iterations; i++) {
      chunkLoss += r.loss[i];
      for (const p of PHASES) this.rawPhases[p].push(Math.round(r.phases[p][i] * 1e4) / 1e4);
      if (this.iteration + i < warmupIterations) continue;
      let sum = 0;
      for (const p of PHASES) {
        this.phaseSamples[p].push(r.phases[p][i]);
        sum += r.phases[p][i];
      }
      this.total.push(sum);
    }
    this.#lossSum += chunkLoss;
    this.#lossCount += r.iterations;
    return chunkLoss;
  }
}

function phaseArrays(): Record<Phase, number[]> {
  return Object.fromEntries(PHASES.map((p) => [p, [] as number[]])) as Record<Phase, number[]>;
}

/** What the chunk loop trains, and whom it tells. */
export interface ChunkLoopSettings {
  config: RunConfig;
  spec: ModelSpec;
  /** The engine (switched in and out of QAT at each epoch). */
  engine: Engine;
  /** What trains the chunks: the engine, or simulated workers over it. */
  trainer: ChunkTrainer;
  data: ChunkSource;
  itersPerEpoch: number;
  totalIterations: number;
  report(progress: RunProgress): void;
  /** Evaluates on the test set at `epoch` (fractional between epoch ends). */
  evaluate(epoch: number): Promise<void>;
  /** Called after the evaluation that ends epoch `epoch` (0-based). */
  endEpoch(epoch: number): Promise<void>;
}

/**
 * Trains every epoch of the run a chunk at a time, adding each chunk to `tally`. A run projected
 * past its time budget trains until the budget is spent (its last chunk cut to what fits), then
 * stops: returns why (the projection), or undefined when it finished; a failure of the engine is
 * thrown. The caller evaluates the partly trained model.
 */
export async function trainChunks(
  settings: ChunkLoopSettings,
  tally: TrainingTally,
): Promise<string | undefined> {
  const { config, spec, engine, trainer, data, itersPerEpoch, totalIterations, report } = settings;
  // Chunk lengths: chunks end at evaluation points, so the curve is sampled where asked, and the
  // first chunk is short (the warm-up and a few timed iterations), so that a run over its time
  // budget is found out quickly.
  // Iterations the time budget has left (measured after each chunk): a chunk never goes past it.
  let budgetIterations = Infinity;
  const chunkLength = (globalIteration: number, epochIteration: number) => {
    const toEval = config.evalEvery > 0
      ? config.evalEvery - (globalIteration % config.evalEvery)
      : Infinity;
    const limit = globalIteration === 0
      ? Math.min(config.warmupIterations + 10, config.chunkIterations)
      : config.chunkIterations;
    return Math.min(limit, itersPerEpoch - epochIteration, toEval, budgetIterations);
  };
  // The chunk after one of `n` iterations from epoch iteration `it` (global iteration `global`):
  // where it starts in the epoch (every epoch restarts at sample 0) and its length (0: none).
  const following = (global: number, it: number, n: number): { it: number; n: number } => {
    const next = it + n < itersPerEpoch ? it + n : 0;
    return { it: next, n: global + n < totalIterations ? chunkLength(global + n, next) : 0 };
  };
  const budgetMs = config.budget.seconds * 1000;
  let overBudget: string | undefined;
  // An engine that copies a chunk's input when it records it (the GPU engine) lets the next chunk
  // be recorded and submitted while this one trains: the device never idles while the host
  // encodes. Only within an epoch and not across an evaluation (a prediction must see exactly the
  // chunks before it).
  const lookahead = trainer.overlapsChunks;
  let ahead: { it: number; n: number; pending: Promise<TrainChunkResult> } | null = null;
  // Chunk buffers: the engine trains on one while the next is filled into another; with an engine
  // that records ahead, a third takes the chunk after next, filled while the engine trains both.
  const chunkSamples = config.chunkIterations * config.batchSize;
  const buffers = Array.from(
    { length: lookahead ? LOOKAHEAD_CHUNK_BUFFERS : 2 },
    () => allocateOneHotChunk(spec, config.batchSize, chunkSamples, true),
  );
  const viewOf = (buffer: BatchChunk, n: number) =>
    n === config.chunkIterations ? buffer : { ...buffer, samples: n * config.batchSize };
  // The chunk each buffer holds or is being filled with (`done` settles when it is written).
  const holds: ({ it: number; n: number; done: Promise<void> } | null)[] = buffers.map(() => null);
  const startFill = (slot: number, it: number, n: number) => {
    const before = holds[slot]?.done.catch(() => {}); // one fill at a time into a buffer
    const done = Promise.resolve(before).then(() =>
      data.fill(viewOf(buffers[slot], n), "train", it * config.batchSize)
    );
    done.catch(() => {}); // awaited by filled(), which reports its error
    holds[slot] = { it, n, done };
  };
  const filled = (slot: number, it: number, n: number): Promise<void> => {
    if (holds[slot]?.it !== it || holds[slot]?.n !== n) startFill(slot, it, n);
    return holds[slot]!.done;
  };
  let current = 0;
  for (let epoch = 0; epoch < config.epochs; epoch++) {
    engine.setQuantizationActive(epoch >= config.qatFromEpoch);
    // Every epoch sees the same training samples in the same order, as DLRM's loader does.
    for (let it = 0; it < itersPerEpoch;) {
      // A chunk submitted ahead trains as submitted (its length was fixed then).
      const n: number = ahead && ahead.it === it ? ahead.n : chunkLength(tally.iteration, it);
      const t0 = performance.now();
      const view = viewOf(buffers[current], n);
      let pending: Promise<TrainChunkResult>;
      if (ahead) {
        if (ahead.it !== it || ahead.n !== n) {
          throw new Error("Expected the chunk submitted ahead");
        }
        pending = ahead.pending;
        ahead = null;
      } else {
        await filled(current, it, n);
        pending = trainer.trainChunk(view, { learningRate: config.learningRate });
      }
      // Fill the next chunk into the next buffer while the engine works (a GPU engine is busy
      // until its promise settles; the CPU engine has finished by the time it returns one).
      const { it: nextIt, n: nextN } = following(tally.iteration, it, n);
      if (nextN > 0) {
        const nextSlot = (current + 1) % buffers.length;
        // An asynchronous source fills while the engine records, submits and trains `pending`.
        try {
          await filled(nextSlot, nextIt, nextN);
        } catch (e) {
          pending.catch(() => {}); // the fill's error is the one to report
          throw e;
        }
        const evaluatesAfter = config.evalEvery > 0 &&
          (tally.iteration + n) % config.evalEvery === 0;
        if (lookahead && nextIt !== 0 && !evaluatesAfter) {
          const next = viewOf(buffers[nextSlot], nextN);
          ahead = {
            it: nextIt,
            n: nextN,
            pending: trainer.trainChunk(next, { learningRate: config.learningRate }),
          };
          // Settled by the next turn of the loop, or by the cleanup when this one fails.
          ahead.pending.catch(() => {});
        }
        if (lookahead) {
          // The chunk after next goes into the buffer of the chunk before this one (settled last
          // turn) while the engine trains this one and the next (or evaluates); a length the
          // time budget cuts later is filled again.
          const after = following(tally.iteration + n, nextIt, nextN);
          if (after.n > 0) startFill((current + 2) % buffers.length, after.it, after.n);
        }
      }
      const r = await pending;
      current = (current + 1) % buffers.length;
      const chunkWallMs = performance.now() - t0;
      tally.trainWallMs += chunkWallMs;
      const chunkLoss = tally.addChunk(r, config.warmupIterations);
      it += n;
      tally.iteration += n;
      // Projected from warmed-up iterations only (cold ones run the JIT and fault in pages),
      // unless the time spent alone is already over the budget. The median as summarize takes
      // it, without the rest of the summary (a second sort for the MAD) every chunk.
      const total = tally.total;
      const perIteration = total.length
        ? quantileSorted(Float64Array.from(total).sort(), 0.5)
        : r.wallMs / r.iterations;
      const projected = tally.trainWallMs + perIteration * (totalIterations - tally.iteration);
      if (
        overBudget === undefined && (total.length > 0 || tally.trainWallMs > budgetMs) &&
        projected > budgetMs
      ) {
        overBudget = `projected ${(projected / 1000).toFixed(0)} s of training at ${
          perIteration.toFixed(1)
        } ms/it, over the budget of ${config.budget.seconds} s`;
      }
      if (overBudget !== undefined) {
        // Train on until the budget is spent: the chunks left are cut to the iterations that
        // fit at the last chunk's wall-clock pace (data filling included).
        const pace = chunkWallMs / n;
        budgetIterations = Math.floor((budgetMs - tally.trainWallMs) / pace);
        if (budgetIterations < 1 && tally.iteration < totalIterations) {
          // A chunk submitted ahead still trains; let it finish before the engine is disposed.
          if (ahead) {
            const extra = await ahead.pending.catch(() => undefined);
            ahead = null;
            if (extra) {
              tally.addChunk(extra, config.warmupIterations);
              tally.iteration += extra.iterations;
            }
          }
          return overBudget;
        }
      }
      tally.sampleRss();
      report({
        run: config.name,
        stage: "train",
        epoch: epoch + it / itersPerEpoch,
        iteration: tally.iteration,
        totalIterations,
        trainLoss: chunkLoss / r.iterations,
        msPerIteration: perIteration,
      });
      if (config.evalEvery > 0 && tally.iteration % config.evalEvery === 0 && it < itersPerEpoch) {
        await settings.evaluate(epoch + it / itersPerEpoch);
      }
    }
    await settings.evaluate(epoch + 1);
    await settings.endEpoch(epoch);
  }
  return undefined;
}
