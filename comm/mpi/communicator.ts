/**
 * {@linkcode MpiCommunicator}: the {@linkcode Communicator} of data-parallel training across MPI
 * processes (one rank per process, `MPI_COMM_WORLD`).
 *
 * Determinism: `MPI_Allreduce`'s order of a float sum is the implementation's, so float sums here
 * are an all-gather (`MPI_Allgather`) of every rank's contribution followed by the local
 * in-rank-order float32 sum (as `sumInOrder` of communicator.ts): the same on every rank and
 * bit-identical to the shared-memory communicator's. Integer sums are exact in any order and use
 * `MPI_Allreduce(MPI_INT, MPI_SUM)`. Widened sums gather the narrow integers (each rank sends
 * `input.byteLength` bytes) and widen locally. Variable-length gathers are `MPI_Allgather` of the
 * lengths then `MPI_Allgatherv`. Payload bytes are counted as the shared-memory communicator
 * counts them: what this rank contributes, not what MPI's algorithms forward.
 *
 * @module
 */
import type { CommArray, Communicator } from "../communicator.ts";
import { check, loadMpi, mpiFinalize, mpiInit, type MpiLibrary } from "./ffi.ts";

type Ctor<T extends CommArray> = { new (b: ArrayBufferLike, o: number, n: number): T };

/** Options of {@linkcode MpiCommunicator.create}. */
export interface MpiCommunicatorOptions {
  /** Path of the MPI library (default: `DQRM_MPI_LIB` or `libmpi.so.40`). */
  library?: string;
  /**
   * Bytes each rank contributes per gather of a float sum (default 8 MiB); larger sums go in
   * pieces, so the receive buffer stays at `size × pieceBytes`.
   */
  pieceBytes?: number;
}

/** The data-parallel communicator over MPI: every process of `MPI_COMM_WORLD` is one rank. */
export class MpiCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  readonly mpi: MpiLibrary;
  readonly #pieceBytes: number;
  #bytesSent = 0;
  #recv = new Uint8Array(0);
  readonly #counts: Int32Array<ArrayBuffer>;
  readonly #displs: Int32Array<ArrayBuffer>;
  readonly #one = new Int32Array(1);

  private constructor(mpi: MpiLibrary, rank: number, size: number, pieceBytes: number) {
    this.mpi = mpi;
    this.rank = rank;
    this.size = size;
    this.#pieceBytes = pieceBytes;
    this.#counts = new Int32Array(size);
    this.#displs = new Int32Array(size);
  }

  /** Initialises MPI (if not yet) and joins `MPI_COMM_WORLD`. */
  static create(options: MpiCommunicatorOptions = {}): MpiCommunicator {
    const pieceBytes = options.pieceBytes ?? 8 << 20;
    if (!Number.isInteger(pieceBytes) || pieceBytes < 64 || pieceBytes % 8 !== 0) {
      throw new RangeError(`Expected pieceBytes to be a multiple of 8, at least 64: ${pieceBytes}`);
    }
    const mpi = loadMpi(options.library);
    mpiInit(mpi);
    const rank = new Int32Array(1), size = new Int32Array(1);
    check("MPI_Comm_rank", mpi.fn.MPI_Comm_rank(mpi.handles.commWorld, rank));
    check("MPI_Comm_size", mpi.fn.MPI_Comm_size(mpi.handles.commWorld, size));
    return new MpiCommunicator(mpi, rank[0], size[0], pieceBytes);
  }

  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Seconds on MPI's clock (`MPI_Wtime`). */
  wtime(): number {
    return this.mpi.fn.MPI_Wtime();
  }

  barrier(): void {
    check("MPI_Barrier", this.mpi.fn.MPI_Barrier(this.mpi.handles.commWorld));
  }

  /**
   * `MPI_Abort`: Open MPI ends every process of the job (a rank blocked in a collective cannot
   * be woken otherwise), so this does not return.
   */
  abort(): void {
    this.mpi.fn.MPI_Abort(this.mpi.handles.commWorld, 1);
  }

  /** Ends MPI in this process (`MPI_Finalize`); no collective may follow. */
  finalize(): void {
    mpiFinalize(this.mpi);
  }

  /** A receive buffer of at least `bytes`, 8-aligned. */
  #buffer(bytes: number): Uint8Array<ArrayBuffer> {
    if (this.#recv.byteLength < bytes) this.#recv = new Uint8Array(Math.max(bytes, 64));
    return this.#recv as Uint8Array<ArrayBuffer>;
  }

  /** Every rank's `bytes` equal-sized bytes into the receive buffer, in rank order. */
  #gatherEqual(data: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
    const n = data.byteLength, recv = this.#buffer(n * this.size);
    const h = this.mpi.handles;
    check(
      "MPI_Allgather",
      this.mpi.fn.MPI_Allgather(data, n, h.byte, recv, n, h.byte, h.commWorld),
    );
    this.#bytesSent += n;
    return recv;
  }

  allReduceSum(data: Float32Array | Int32Array): void {
    if (data instanceof Int32Array) {
      const h = this.mpi.handles;
      check(
        "MPI_Allreduce",
        this.mpi.fn.MPI_Allreduce(
          h.inPlace,
          data as Int32Array<ArrayBuffer>,
          data.length,
          h.int,
          h.sum,
          h.commWorld,
        ),
      );
      this.#bytesSent += data.byteLength;
      return;
    }
    const piece = this.#pieceBytes / 4;
    for (let at = 0; at < data.length; at += piece) {
      const n = Math.min(piece, data.length - at);
      const chunk = data.subarray(at, at + n);
      const recv = this.#gatherEqual(bytesOf(chunk));
      const parts = Array.from(
        { length: this.size },
        (_, k) => new Float32Array(recv.buffer, k * n * 4, n),
      );
      sumFloat32InOrder(parts, chunk);
    }
  }

  allReduceSumWiden(input: Int8Array | Int16Array, out: Int32Array): void {
    if (out.length !== input.length) {
      throw new RangeError(`Expected an output of ${input.length} values but found ${out.length}`);
    }
    const ctor = input.constructor as Ctor<Int8Array | Int16Array>;
    const piece = this.#pieceBytes / input.BYTES_PER_ELEMENT;
    for (let at = 0; at < input.length; at += piece) {
      const n = Math.min(piece, input.length - at);
      const recv = this.#gatherEqual(bytesOf(input.subarray(at, at + n)));
      const parts = Array.from(
        { length: this.size },
        (_, k) => new ctor(recv.buffer, k * n * input.BYTES_PER_ELEMENT, n),
      );
      sumWidened(parts, out.subarray(at, at + n));
    }
  }

  allReduceMean(data: Float32Array): void {
    this.allReduceSum(data);
    for (let i = 0; i < data.length; i++) data[i] /= this.size;
  }

  /**
   * Every rank's `data`, in rank order: `MPI_Allgather` of the byte lengths, then
   * `MPI_Allgatherv` of the bytes. The arrays are views into the communicator's receive buffer,
   * valid until its next collective.
   */
  allGather<T extends CommArray>(data: T): T[] {
    const h = this.mpi.handles, size = this.size;
    this.#one[0] = data.byteLength;
    check(
      "MPI_Allgather",
      this.mpi.fn.MPI_Allgather(this.#one, 1, h.int, this.#counts, 1, h.int, h.commWorld),
    );
    // Each rank's part starts 8-aligned, so any element type can view it.
    let total = 0;
    for (let k = 0; k < size; k++) {
      this.#displs[k] = total;
      total += (this.#counts[k] + 7) & ~7;
    }
    const recv = this.#buffer(total);
    check(
      "MPI_Allgatherv",
      this.mpi.fn.MPI_Allgatherv(
        bytesOf(data),
        data.byteLength,
        h.byte,
        recv,
        this.#counts,
        this.#displs,
        h.byte,
        h.commWorld,
      ),
    );
    this.#bytesSent += data.byteLength;
    const ctor = data.constructor as Ctor<T>;
    return Array.from(
      { length: size },
      (_, k) => new ctor(recv.buffer, this.#displs[k], this.#counts[k] / data.BYTES_PER_ELEMENT),
    );
  }
}

/** The bytes of a typed array (a view, no copy). */
export function bytesOf(a: CommArray | Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(a.buffer as ArrayBuffer, a.byteOffset, a.byteLength);
}

/**
 * `sumInOrder` (communicator.ts) for float32 parts: `out = parts[0] + parts[1] + ...`, each
 * addition rounded to float32, so bit-identical to it. A loop of one element type of its own
 * stays monomorphic (fast) whatever else the process sums.
 */
export function sumFloat32InOrder(parts: readonly Float32Array[], out: Float32Array): void {
  out.set(parts[0]);
  for (let k = 1; k < parts.length; k++) {
    const p = parts[k];
    for (let i = 0; i < out.length; i++) out[i] += p[i];
  }
}

/** The exact Int32 sum of narrow integer parts (one loop per element type, kept monomorphic). */
export function sumWidened(parts: readonly (Int8Array | Int16Array)[], out: Int32Array): void {
  if (parts[0] instanceof Int8Array) sumInt8(parts as Int8Array[], out);
  else sumInt16(parts as Int16Array[], out);
}

function sumInt8(parts: readonly Int8Array[], out: Int32Array): void {
  out.set(parts[0]);
  for (let k = 1; k < parts.length; k++) {
    const p = parts[k];
    for (let i = 0; i < out.length; i++) out[i] = (out[i] + p[i]) | 0;
  }
}

function sumInt16(parts: readonly Int16Array[], out: Int32Array): void {
  out.set(parts[0]);
  for (let k = 1; k < parts.length; k++) {
    const p = parts[k];
    for (let i = 0; i < out.length; i++) out[i] = (out[i] + p[i]) | 0;
  }
}

/** Every rank's JSON-able `value`, in rank order, through the communicator's all-gather. */
export function gatherJson<T>(comm: MpiCommunicator, value: T): T[] {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  const parts = comm.allGather(new Int8Array(bytes.buffer, 0, bytes.length));
  return parts.map((p) =>
    JSON.parse(new TextDecoder().decode(new Uint8Array(p.buffer, p.byteOffset, p.byteLength)))
  );
}
