/**
 * The queue that hands a predict run's row tiles to the CPU engine's threads, over two shared
 * words: tickets drawn and tiles done. Tickets number the run's tiles batch by batch; a thread
 * runs the tile of each ticket it draws, after every tile of the batches before it is done (so
 * a batch is finished before the next one starts, as a framework scoring batch after batch
 * would). An idle thread blocks nobody: batches wait for tiles being run, not for threads.
 *
 * @module
 */
import { BarrierAbortedError, type SpinBarrier } from "./barrier.ts";

/** Shared words a tile queue needs. */
export const TILE_QUEUE_WORDS = 2;

const DRAWN = 0;
const DONE = 1;

/** A tile queue over shared words; every thread constructs one over the same words. */
export class TileQueue {
  readonly #words: Int32Array;
  readonly #barrier: SpinBarrier;

  /** Wraps `TILE_QUEUE_WORDS` shared words; `barrier` tells when another thread failed. */
  constructor(words: Int32Array, barrier: SpinBarrier) {
    if (words.length !== TILE_QUEUE_WORDS) {
      throw new RangeError(`Expected ${TILE_QUEUE_WORDS} shared words but found ${words.length}`);
    }
    this.#words = words;
    this.#barrier = barrier;
  }

  /** Empties the queue: only while no thread runs (before a run is handed out). */
  reset(): void {
    Atomics.store(this.#words, DRAWN, 0);
    Atomics.store(this.#words, DONE, 0);
  }

  /** The next ticket (0, 1, ...): each is drawn by exactly one thread. */
  draw(): number {
    return Atomics.add(this.#words, DRAWN, 1);
  }

  /** Counts a tile done and wakes the threads waiting for it. */
  done(): void {
    Atomics.add(this.#words, DONE, 1);
    Atomics.notify(this.#words, DONE);
  }

  /**
   * Waits until at least `tiles` tiles are done: spins a while, then sleeps on the word; throws
   * when another thread has aborted the engine's barrier.
   */
  waitDone(tiles: number): void {
    const w = this.#words;
    for (let spins = 0;; spins++) {
      const done = Atomics.load(w, DONE);
      if (done >= tiles) return;
      if (spins > 20_000) {
        if (this.#barrier.aborted) throw new BarrierAbortedError();
        Atomics.wait(w, DONE, done, 2);
      }
    }
  }
}
