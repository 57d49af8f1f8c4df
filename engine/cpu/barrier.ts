/**
 * A spinning barrier for the CPU engine's threads, on shared memory. Threads own a core each
 * while training, so a short spin beats a futex wait; after a while it falls back to
 * `Atomics.wait` so that a stalled peer does not burn the core.
 *
 * @module
 */

const COUNT = 0;
const GENERATION = 1;
const ABORT = 2;

/** Words of shared `Int32Array` a barrier needs. */
export const BARRIER_WORDS = 4;

/** Thrown in every thread once one thread has aborted the barrier. */
export class BarrierAbortedError extends Error {
  constructor() {
    super("Another engine thread failed; see its error");
    this.name = "BarrierAbortedError";
  }
}

/** A reusable barrier of `threads` threads over `words` (shared). */
export class SpinBarrier {
  readonly #words: Int32Array;
  readonly #threads: number;

  /** Wraps shared words; every thread constructs one over the same memory. */
  constructor(words: Int32Array, threads: number) {
    this.#words = words;
    this.#threads = threads;
  }

  /** Waits until every thread has arrived; throws if the barrier was aborted. */
  wait(): void {
    const w = this.#words;
    if (this.#threads === 1) {
      if (Atomics.load(w, ABORT)) throw new BarrierAbortedError();
      return;
    }
    const generation = Atomics.load(w, GENERATION);
    if (Atomics.add(w, COUNT, 1) === this.#threads - 1) {
      Atomics.store(w, COUNT, 0);
      Atomics.add(w, GENERATION, 1);
      Atomics.notify(w, GENERATION);
    } else {
      let spins = 0;
      while (Atomics.load(w, GENERATION) === generation) {
        if (++spins > 50_000) Atomics.wait(w, GENERATION, generation, 2);
      }
    }
    if (Atomics.load(w, ABORT)) throw new BarrierAbortedError();
  }

  /** Marks the barrier aborted and wakes every waiting thread. */
  abort(): void {
    const w = this.#words;
    Atomics.store(w, ABORT, 1);
    Atomics.add(w, GENERATION, 1);
    Atomics.notify(w, GENERATION);
  }

  /** Clears an abort and the arrival count (only while no thread is waiting). */
  reset(): void {
    Atomics.store(this.#words, ABORT, 0);
    Atomics.store(this.#words, COUNT, 0);
  }

  /** Whether the barrier was aborted. */
  get aborted(): boolean {
    return Atomics.load(this.#words, ABORT) !== 0;
  }
}
