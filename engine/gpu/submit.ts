/**
 * Submission order and readback. Calls take turns to submit (see {@linkcode SubmitQueue.turn});
 * results come back through staging copies mapped after the submit.
 *
 * @module
 */

/** A call's place in the submission order (see {@linkcode SubmitQueue.turn}). */
export interface SubmitTurn {
  /** Null when every earlier call has submitted, else a promise of it (then record). */
  earlierSubmitted(): Promise<void> | null;
  /** Settles once every earlier call has read its work back (or failed). */
  earlierDone(): Promise<void>;
  /**
   * Submits once every earlier call has started its readbacks (see
   * {@linkcode SubmitTurn.mapping}).
   */
  submit(commands: GPUCommandBuffer): Promise<void>;
  /**
   * Whether {@linkcode SubmitTurn.submit} would submit at once (every earlier call has made its
   * readbacks or ended): the GPU is idle or about to be, so the call may send what it has
   * recorded so far ({@linkcode SubmitTurn.submitPart}) and record the rest while it runs.
   */
  ready(): boolean;
  /**
   * Submits the first commands of the call ahead of its last submit (which still ends the turn's
   * submitting); throws unless {@linkcode SubmitTurn.ready}.
   */
  submitPart(commands: GPUCommandBuffer): void;
  /**
   * Says that this call has made all its `mapAsync` calls. Deno's `mapAsync` call returns only
   * once the queue is idle, then sleeps 10 ms before it resolves: a later call submits now, so
   * that the GPU works during that sleep (its staging buffers are its own).
   */
  mapping(): void;
  /** Ends the turn (after the readback, or on failure). */
  end(): void;
  /** Whether no later call has taken a turn (nothing will be queued behind this call yet). */
  last(): boolean;
}

/** What later turns see of one. */
interface TurnState {
  ended: boolean;
  submitted: boolean;
  /** Settles when the turn ends (its work read back, or it failed). */
  done: Promise<void>;
  /** Settles when it has submitted (or ended without). */
  sent: Promise<void>;
  mapped: boolean;
  /** Settles when it has made its mapAsync calls (or ended). */
  readbacks: Promise<void>;
}

/** The order in which one engine's calls submit to its queue. */
export class SubmitQueue {
  readonly #queue: GPUQueue;
  /** The latest call's turn (null before the first). */
  #lastTurn: TurnState | null = null;
  #inFlight = 0;

  constructor(queue: GPUQueue) {
    this.#queue = queue;
  }

  /** Calls between taking a turn and ending it. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * The next turn to submit, taken when a call starts (so turns follow call order). Recording
   * may start once every earlier call has submitted (its commands may use buffers that recording
   * grows); `submit` waits until the call before has made its mapAsync calls (`mapping`, else
   * its end), then submits: Deno's mapAsync call blocks until the queue is idle, so a readback
   * while a later chunk is queued would wait for that chunk too, and it then sleeps 10 ms before
   * it resolves. So a chunk is recorded while the one before trains, and submitted the moment
   * the one before is done on the GPU, to train during that sleep. Both happen at once
   * (synchronously) when no earlier call is in their way.
   */
  turn(): SubmitTurn {
    const previous = this.#lastTurn;
    let ended!: () => void, submitted!: () => void, mapped!: () => void;
    const state: TurnState = {
      ended: false,
      submitted: false,
      mapped: false,
      done: new Promise<void>((r) => (ended = r)),
      sent: new Promise<void>((r) => (submitted = r)),
      readbacks: new Promise<void>((r) => (mapped = r)),
    };
    this.#lastTurn = state;
    this.#inFlight++;
    const submitNow = (commands: GPUCommandBuffer) => {
      this.#queue.submit([commands]);
      state.submitted = true;
      submitted();
    };
    // Whether a submit goes at once: no earlier call, or it has made its readbacks (or ended).
    const ready = () => !previous || previous.mapped;
    return {
      earlierSubmitted: () =>
        !previous || previous.submitted || previous.ended ? null : previous.sent,
      earlierDone: () => (!previous || previous.ended ? Promise.resolve() : previous.done),
      ready,
      submitPart: (commands) => {
        if (state.submitted || state.ended || !ready()) {
          const found = state.ended
            ? "it has ended"
            : state.submitted
            ? "it has made its last submit"
            : "an earlier call has not made its readbacks";
          throw new Error(
            `Expected a turn that may submit at once before submitting a part, but ${found}`,
          );
        }
        this.#queue.submit([commands]);
      },
      submit: (commands) => {
        if (ready()) {
          submitNow(commands);
          return Promise.resolve();
        }
        return previous!.readbacks.then(() => submitNow(commands));
      },
      mapping: () => {
        state.mapped = true;
        mapped();
      },
      end: () => {
        if (state.ended) return;
        state.ended = true;
        state.mapped = true;
        this.#inFlight--;
        submitted();
        mapped();
        ended();
      },
      last: () => this.#lastTurn === state,
    };
  }

  /** Throws unless no call is in flight (for the synchronous methods that submit). */
  assertIdle(what: string): void {
    if (this.#inFlight > 0) {
      throw new Error(
        `Expected no training or prediction in flight before ${what} but found ${this.#inFlight}` +
          " (await them first)",
      );
    }
  }
}

/** Copies `bytes` of `src` from `offset` into a new staging buffer, to map after the submit. */
export function stage(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  src: GPUBuffer,
  offset: number,
  bytes: number,
): GPUBuffer {
  const buffer = device.createBuffer({
    label: "staging",
    size: Math.max(16, Math.ceil(bytes / 16) * 16),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  if (bytes > 0) encoder.copyBufferToBuffer(src, offset, buffer, 0, Math.ceil(bytes / 4) * 4);
  return buffer;
}

/** Maps a staging buffer, copies its contents out and destroys it. */
export async function readStaged(buffer: GPUBuffer): Promise<ArrayBuffer> {
  await buffer.mapAsync(GPUMapMode.READ);
  const copy = buffer.getMappedRange().slice(0);
  buffer.unmap();
  buffer.destroy();
  return copy;
}

/** Resolves on a later task of the event loop (after the caller's synchronous code). */
export function nextTask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
