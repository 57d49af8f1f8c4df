/**
 * The communicator of data-parallel training: the few collectives gradient exchange needs, behind
 * one small interface, and its in-process implementation over Workers sharing memory.
 *
 * Every collective is synchronous and blocking, called by every rank in the same order with
 * arrays of the same length (except {@linkcode Communicator.allGather}). This maps one to one onto
 * MPI (`MPI_Allreduce`, `MPI_Allgather` + `MPI_Allgatherv`, `MPI_Barrier`), which an MPI
 * implementation through Deno FFI calls synchronously as well.
 *
 * @module
 */
import { BARRIER_WORDS, SpinBarrier } from "../engine/cpu/barrier.ts";

/** Arrays the communicator moves. */
export type CommArray = Float32Array | Int32Array | Int16Array | Int8Array;

/** The collectives of data-parallel training. */
export interface Communicator {
  /** This worker's rank, in `[0, size)`. */
  readonly rank: number;
  /** Number of workers. */
  readonly size: number;
  /**
   * Replaces `data` by its element-wise sum over every rank, the same on every rank. Float sums
   * are taken in rank order (rank 0 first) in float32; integer sums wrap as Int32.
   */
  allReduceSum(data: Float32Array | Int32Array): void;
  /**
   * The exact element-wise sum of every rank's narrow integers into `out` (Int32): what an
   * INT8/INT16 gradient all-reduce needs. Each rank sends `input.byteLength` bytes.
   */
  allReduceSumWiden(input: Int8Array | Int16Array, out: Int32Array): void;
  /** Replaces `data` by its element-wise mean over every rank (sum in rank order, then / size). */
  allReduceMean(data: Float32Array): void;
  /**
   * Every rank's `data` (lengths may differ), in rank order. The arrays may be views into the
   * communicator's memory, valid only until its next collective.
   */
  allGather<T extends CommArray>(data: T): T[];
  /** Waits until every rank has arrived. */
  barrier(): void;
  /** Breaks the group: every rank blocked or arriving later throws (after a failure). */
  abort(): void;
  /** Payload bytes this rank has sent (written for the others) so far. */
  readonly bytesSent: number;
  /**
   * Ms this rank has spent waiting for the others inside collectives so far, where the
   * communicator can tell (the shared-memory one: its barriers); undefined elsewhere.
   */
  readonly waitMs?: number;
}

/** Element-wise float32 sum of `parts` in order into `out` over `[from, to)`. */
export function sumInOrder(
  parts: readonly ArrayLike<number>[],
  out: Float32Array | Int32Array,
  from = 0,
  to = out.length,
): void {
  // Each element type has a loop of its own, so that every loop's element access stays
  // monomorphic (a shared loop reading Float32Array and Int8Array parts runs several times
  // slower).
  if (out instanceof Float32Array) sumFloat32(parts as Float32Array[], out, from, to);
  else if (parts[0] instanceof Int8Array) sumInt8(parts as Int8Array[], out, from, to);
  else sumIntegers(parts, out, from, to);
}

function sumFloat32(parts: readonly Float32Array[], out: Float32Array, from: number, to: number) {
  const first = parts[0];
  for (let i = from; i < to; i++) out[i] = first[i];
  for (let k = 1; k < parts.length; k++) {
    const p = parts[k];
    for (let i = from; i < to; i++) out[i] += p[i];
  }
}

function sumInt8(parts: readonly Int8Array[], out: Int32Array, from: number, to: number) {
  const first = parts[0];
  for (let i = from; i < to; i++) out[i] = first[i];
  for (let k = 1; k < parts.length; k++) {
    const p = parts[k];
    for (let i = from; i < to; i++) out[i] = (out[i] + p[i]) | 0;
  }
}

function sumIntegers(
  parts: readonly ArrayLike<number>[],
  out: Int32Array,
  from: number,
  to: number,
) {
  const first = parts[0];
  for (let i = from; i < to; i++) out[i] = first[i];
  for (let k = 1; k < parts.length; k++) {
    const p = parts[k];
    for (let i = from; i < to; i++) out[i] = (out[i] + p[i]) | 0;
  }
}

/** The shared memory of an in-process group, posted to every Worker of it. */
export interface SharedGroup {
  /** Number of ranks. */
  size: number;
  /** Bytes each rank can send per collective (larger reductions go in pieces). */
  slotBytes: number;
  /** Barrier words and per-rank lengths. */
  control: SharedArrayBuffer;
  /** One slot of `slotBytes` per rank. */
  data: SharedArrayBuffer;
}

/** Allocates the shared memory of a group of `size` ranks with `slotBytes` per rank. */
export function createSharedGroup(size: number, slotBytes = 8 << 20): SharedGroup {
  if (!Number.isInteger(size) || size < 1 || size > 256) {
    throw new RangeError(`Expected a group size in [1, 256] but found ${size}`);
  }
  if (!Number.isInteger(slotBytes) || slotBytes < 64 || slotBytes % 8 !== 0) {
    throw new RangeError(`Expected slotBytes to be a multiple of 8, at least 64: ${slotBytes}`);
  }
  return {
    size,
    slotBytes,
    control: new SharedArrayBuffer((BARRIER_WORDS + size) * 4),
    data: new SharedArrayBuffer(size * slotBytes),
  };
}

type Ctor<T extends CommArray> = { new (b: ArrayBufferLike, o: number, n: number): T };

/**
 * The in-process communicator: each rank (a Worker, or the main thread) writes its contribution
 * into its own slot of shared memory, waits at a barrier, and reads every slot. Every collective
 * opens with a barrier, so a slot is never rewritten while another rank still reads it.
 */
export class SharedMemoryCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  readonly #group: SharedGroup;
  readonly #barrier: SpinBarrier;
  readonly #lengths: Int32Array;
  #bytesSent = 0;
  #waitMs = 0;

  /** Joins `group` as `rank` (every rank constructs one over the same group). */
  constructor(group: SharedGroup, rank: number) {
    if (!Number.isInteger(rank) || rank < 0 || rank >= group.size) {
      throw new RangeError(`Expected a rank in [0, ${group.size}) but found ${rank}`);
    }
    this.rank = rank;
    this.size = group.size;
    this.#group = group;
    this.#barrier = new SpinBarrier(new Int32Array(group.control, 0, BARRIER_WORDS), group.size);
    this.#lengths = new Int32Array(group.control, BARRIER_WORDS * 4, group.size);
  }

  get bytesSent(): number {
    return this.#bytesSent;
  }

  get waitMs(): number {
    return this.#waitMs;
  }

  barrier(): void {
    this.#wait();
  }

  /** The barrier, timed. */
  #wait(): void {
    const t0 = performance.now();
    try {
      this.#barrier.wait();
    } finally {
      this.#waitMs += performance.now() - t0;
    }
  }

  abort(): void {
    this.#barrier.abort();
  }

  /** Rank `rank`'s slot as `length` elements of `ctor`. */
  #slot<T extends CommArray>(ctor: Ctor<T>, rank: number, length: number): T {
    return new ctor(this.#group.data, rank * this.#group.slotBytes, length);
  }

  allReduceSum(data: Float32Array | Int32Array): void {
    const ctor = data.constructor as Ctor<Float32Array | Int32Array>;
    const piece = this.#group.slotBytes / 4, size = this.size, rank = this.rank;
    for (let at = 0; at < data.length; at += piece) {
      const n = Math.min(piece, data.length - at);
      const chunk = data.subarray(at, at + n);
      this.#wait();
      this.#slot(ctor, rank, n).set(chunk);
      this.#bytesSent += n * 4;
      this.#wait();
      // Reduce-scatter, then gather: each rank sums its share of the elements (every rank's
      // values in rank order, as a whole sum would) and leaves it in its own slot, where no other
      // rank reads that share; after the barrier every rank copies the other shares.
      const parts = Array.from({ length: size }, (_, k) => this.#slot(ctor, k, n));
      const share = (k: number) => Math.floor((n * k) / size);
      const from = share(rank), to = share(rank + 1);
      sumInOrder(parts, chunk, from, to);
      parts[rank].set(chunk.subarray(from, to), from);
      this.#wait();
      for (let k = 0; k < size; k++) {
        if (k !== rank) chunk.set(parts[k].subarray(share(k), share(k + 1)), share(k));
      }
    }
  }

  allReduceSumWiden(input: Int8Array | Int16Array, out: Int32Array): void {
    if (out.length !== input.length) {
      throw new RangeError(`Expected an output of ${input.length} values but found ${out.length}`);
    }
    const ctor = input.constructor as Ctor<Int8Array | Int16Array>;
    const piece = this.#group.slotBytes / input.BYTES_PER_ELEMENT;
    for (let at = 0; at < input.length; at += piece) {
      const n = Math.min(piece, input.length - at);
      this.#wait();
      this.#slot(ctor, this.rank, n).set(input.subarray(at, at + n));
      this.#bytesSent += n * input.BYTES_PER_ELEMENT;
      this.#wait();
      const parts = Array.from({ length: this.size }, (_, k) => this.#slot(ctor, k, n));
      sumInOrder(parts, out.subarray(at, at + n));
    }
  }

  allReduceMean(data: Float32Array): void {
    this.allReduceSum(data);
    for (let i = 0; i < data.length; i++) data[i] /= this.size;
  }

  allGather<T extends CommArray>(data: T): T[] {
    if (data.byteLength > this.#group.slotBytes) {
      throw new RangeError(
        `Expected at most ${this.#group.slotBytes} bytes per rank to gather but found ${data.byteLength}; raise slotBytes`,
      );
    }
    const ctor = data.constructor as Ctor<T>;
    this.#wait();
    this.#slot(ctor, this.rank, data.length).set(data as never);
    Atomics.store(this.#lengths, this.rank, data.length);
    this.#bytesSent += data.byteLength;
    this.#wait();
    return Array.from(
      { length: this.size },
      (_, k) => this.#slot(ctor, k, Atomics.load(this.#lengths, k)),
    );
  }
}

/** A communicator of one rank: every collective is the identity (no bytes sent). */
export class SoloCommunicator implements Communicator {
  readonly rank = 0;
  readonly size = 1;
  readonly bytesSent = 0;
  allReduceSum(_data: Float32Array | Int32Array): void {}
  allReduceSumWiden(input: Int8Array | Int16Array, out: Int32Array): void {
    out.set(input);
  }
  allReduceMean(_data: Float32Array): void {}
  allGather<T extends CommArray>(data: T): T[] {
    return [data];
  }
  barrier(): void {}
  abort(): void {}
}
