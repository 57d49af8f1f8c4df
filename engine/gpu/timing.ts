/**
 * GPU time of a chunk's phases, from `timestamp-query`: which iterations are sampled (one
 * compute pass per phase) and which run in one pass per stretch, the query set, and the
 * attribution of the passes' times to iterations and phases.
 *
 * @module
 */
import type { Phase, PhaseSamples } from "../phases.ts";
import type { BufferManager } from "./buffers.ts";

/** Phases of one training iteration that get a pass of their own when sampled. */
export const PASS_PHASES: readonly Phase[] = ["scale", "forward", "backward", "update"];

/** One compute pass of a chunk: one phase of a sampled iteration, or a stretch of iterations. */
export interface ChunkPass {
  /** The phase (sampled iteration), or null (every phase of `count` iterations). */
  phase: Phase | null;
  first: number;
  count: number;
}

/**
 * The passes of a chunk of `iterations`: every `every`th iteration (the first included) gets one
 * pass per phase when `timed`, the stretches between them one pass each; a stretch also ends at
 * each iteration of `breaks` (where the chunk may submit what it has recorded so far).
 */
export function planPasses(
  iterations: number,
  timed: boolean,
  every: number,
  breaks: readonly number[] = [],
): ChunkPass[] {
  const sampled = (i: number) => timed && i % every === 0;
  const passes: ChunkPass[] = [];
  for (let i = 0; i < iterations;) {
    if (sampled(i)) {
      for (const p of PASS_PHASES) passes.push({ phase: p, first: i, count: 1 });
      i++;
      continue;
    }
    let j = i + 1;
    while (j < iterations && !sampled(j) && !breaks.includes(j)) j++;
    passes.push({ phase: null, first: i, count: j - i });
    i = j;
  }
  return passes;
}

/**
 * Where a chunk of `iterations` that may submit at once (the GPU idle) submits what it has
 * recorded: after iterations 1, 3, 7, 15, ... (pieces of 1, 2, 4, 8, ... iterations). The GPU
 * starts after one iteration's recording instead of the whole chunk's, and, while recording an
 * iteration takes less than half its GPU time, each piece is recorded before the GPU finishes the
 * one before.
 */
export function earlySubmitBreaks(iterations: number): number[] {
  const out: number[] = [];
  for (let end = 1; end < iterations; end = 2 * end + 1) out.push(end);
  return out;
}

/**
 * The device-clock ms at the start of the first of `passes` timed passes and at the end of the
 * last (`stamps`: each pass's begin and end, in ns).
 */
export function deviceClockSpan(
  stamps: BigUint64Array,
  passes: number,
): { start: number; end: number } {
  return { start: Number(stamps[0]) / 1e6, end: Number(stamps[2 * passes - 1]) / 1e6 };
}

/** A timestamp query set and its resolve buffer, grown as needed. */
export class TimestampQueries {
  readonly #device: GPUDevice;
  readonly #buffers: BufferManager;
  #querySet: GPUQuerySet | null = null;
  #resolve: GPUBuffer | null = null;

  constructor(device: GPUDevice, buffers: BufferManager) {
    this.#device = device;
    this.#buffers = buffers;
  }

  /** Room for `count` timestamps (at least 256). */
  ensure(count: number): void {
    if (this.#querySet && this.#querySet.count >= count) return;
    this.#querySet?.destroy();
    if (this.#resolve) this.#buffers.destroy(this.#resolve);
    const n = Math.max(count, 256);
    this.#querySet = this.#device.createQuerySet({ type: "timestamp", count: n });
    this.#resolve = this.#buffers.create(
      "timestamps",
      n * 8,
      GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    );
  }

  /** A compute pass writing timestamps `index` and `index + 1` (untimed when null). */
  beginPass(encoder: GPUCommandEncoder, index: number | null): GPUComputePassEncoder {
    if (index === null) return encoder.beginComputePass();
    return encoder.beginComputePass({
      timestampWrites: {
        querySet: this.#querySet!,
        beginningOfPassWriteIndex: index,
        endOfPassWriteIndex: index + 1,
      },
    });
  }

  /** Resolves the first `count` timestamps into the resolve buffer, which it returns. */
  resolve(encoder: GPUCommandEncoder, count: number): GPUBuffer {
    encoder.resolveQuerySet(this.#querySet!, 0, count, this.#resolve!, 0);
    return this.#resolve!;
  }

  /** Frees the query set. */
  destroy(): void {
    this.#querySet?.destroy();
  }
}

/**
 * Per-iteration phase milliseconds from the passes' timestamps: a sampled iteration's phases are
 * its own passes; an unsampled stretch's time is divided evenly over its iterations and split by
 * the mean phase proportions of the chunk's sampled iterations.
 */
export function attributePhases(
  phases: PhaseSamples,
  passes: ChunkPass[],
  stamps: BigUint64Array,
): void {
  const ms = (n: number) => Math.max(0, Number(stamps[2 * n + 1] - stamps[2 * n])) / 1e6;
  const share: Record<string, number> = {};
  let sampledTotal = 0;
  passes.forEach((p, n) => {
    if (!p.phase) return;
    const t = ms(n);
    phases[p.phase][p.first] = t;
    share[p.phase] = (share[p.phase] ?? 0) + t;
    sampledTotal += t;
  });
  passes.forEach((p, n) => {
    if (p.phase) return;
    const per = ms(n) / p.count;
    for (let i = p.first; i < p.first + p.count; i++) {
      for (const phase of PASS_PHASES) {
        phases[phase][i] = sampledTotal > 0
          ? (per * (share[phase] ?? 0)) / sampledTotal
          : phase === "forward"
          ? per
          : 0;
      }
    }
  });
}
