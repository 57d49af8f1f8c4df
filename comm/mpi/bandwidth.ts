/**
 * Bandwidth measurements across MPI ranks: point-to-point ping-pong (`MPI_Send`/`MPI_Recv`),
 * Open MPI's own `MPI_Allreduce`, and the collectives of {@linkcode MpiCommunicator}, on the same
 * message sizes in the same run.
 *
 * Bandwidths are bytes of one rank's message over the time of one operation: ping-pong counts a
 * one-way transfer (half a round trip); a collective counts its input (`n` bytes per rank).
 *
 * @module
 */
import { upperMedian } from "../../record/stats.ts";
import { check } from "./ffi.ts";
import type { MpiCommunicator } from "./communicator.ts";

/** Methods measured per message size. */
export const BANDWIDTH_METHODS = [
  "pingPong",
  "mpiAllreduceFloat",
  "allReduceSum",
  "allReduceSumWiden",
] as const;
/** One of {@linkcode BANDWIDTH_METHODS}. */
export type BandwidthMethod = typeof BANDWIDTH_METHODS[number];

/** One message size's figures (median seconds over the repetitions, on rank 0's clock). */
export interface BandwidthRow {
  bytes: number;
  repetitions: number;
  /** Median seconds per operation, by method. */
  seconds: Record<BandwidthMethod, number>;
  /** Bytes per second, by method. */
  bytesPerS: Record<BandwidthMethod, number>;
  /** Each collective's bandwidth over the ping-pong bandwidth. */
  ratioToPingPong: Record<Exclude<BandwidthMethod, "pingPong">, number>;
}

/** Repetitions of a message of `bytes`: about 32 MiB moved per method, 20 to 200. */
export function repetitionsFor(bytes: number): number {
  return Math.max(20, Math.min(200, Math.ceil((32 << 20) / bytes)));
}

/**
 * Measures every method at `bytes` (every rank calls it; ranks beyond 1 take part in the
 * collectives only). Methods alternate within each repetition, so background load hits all
 * alike; a barrier precedes every timed operation.
 */
export function measureBandwidth(
  comm: MpiCommunicator,
  bytes: number,
  repetitions = repetitionsFor(bytes),
): BandwidthRow {
  if (comm.size < 2) throw new RangeError(`Expected at least 2 MPI ranks but found ${comm.size}`);
  if (bytes % 4 !== 0 || bytes < 4) {
    throw new RangeError(`Expected a message size that is a positive multiple of 4: ${bytes}`);
  }
  const { fn, handles: h } = comm.mpi;
  const buf = new Uint8Array(bytes).fill(1);
  const floats = new Float32Array(bytes / 4);
  const widen = new Int8Array(bytes), wide = new Int32Array(bytes);
  const times: Record<BandwidthMethod, number[]> = {
    pingPong: [],
    mpiAllreduceFloat: [],
    allReduceSum: [],
    allReduceSumWiden: [],
  };
  const timed = (method: BandwidthMethod, op: () => void) => {
    comm.barrier();
    const t = comm.wtime();
    op();
    times[method].push(comm.wtime() - t);
  };
  const pingPong = () => {
    if (comm.rank === 0) {
      check("MPI_Send", fn.MPI_Send(buf, bytes, h.byte, 1, 7, h.commWorld));
      check("MPI_Recv", fn.MPI_Recv(buf, bytes, h.byte, 1, 7, h.commWorld, h.statusIgnore));
    } else if (comm.rank === 1) {
      check("MPI_Recv", fn.MPI_Recv(buf, bytes, h.byte, 0, 7, h.commWorld, h.statusIgnore));
      check("MPI_Send", fn.MPI_Send(buf, bytes, h.byte, 0, 7, h.commWorld));
    }
  };
  for (let r = -1; r < repetitions; r++) {
    // Repetition -1 warms up (buffers, connections) and is dropped.
    floats.fill(0.5);
    timed("pingPong", pingPong);
    timed("mpiAllreduceFloat", () =>
      check(
        "MPI_Allreduce",
        fn.MPI_Allreduce(h.inPlace, floats, floats.length, h.float, h.sum, h.commWorld),
      ));
    floats.fill(0.5);
    timed("allReduceSum", () => comm.allReduceSum(floats));
    timed("allReduceSumWiden", () => comm.allReduceSumWiden(widen, wide));
    if (r < 0) { for (const m of BANDWIDTH_METHODS) times[m].length = 0; }
  }
  const seconds = Object.fromEntries(
    BANDWIDTH_METHODS.map((m) => [m, upperMedian(times[m]) / (m === "pingPong" ? 2 : 1)]),
  ) as Record<BandwidthMethod, number>;
  const bytesPerS = Object.fromEntries(
    BANDWIDTH_METHODS.map((m) => [m, bytes / seconds[m]]),
  ) as Record<BandwidthMethod, number>;
  const ratioToPingPong = Object.fromEntries(
    BANDWIDTH_METHODS.slice(1).map((m) => [m, +(bytesPerS[m] / bytesPerS.pingPong).toFixed(3)]),
  ) as BandwidthRow["ratioToPingPong"];
  return { bytes, repetitions, seconds, bytesPerS, ratioToPingPong };
}

/** The collectives of one compressed gradient exchange, timed without its compute. */
export interface ExchangeCollectivesTiming {
  /** Median milliseconds of the scale all-reduce, the MLP all-reduce and the embedding gather. */
  medianMs: { scales: number; mlp: number; embedding: number; total: number };
  repetitions: number;
}

/**
 * Times the collectives an exchange of `bytes` (one rank's message, by part) makes, with
 * `mlpBits`-bit MLP gradients (null: FP32 sum), on arrays of those sizes: what the transport
 * costs apart from collecting, quantizing and applying gradients.
 */
export function measureExchangeCollectives(
  comm: MpiCommunicator,
  bytes: { embedding: number; mlp: number; scales: number },
  mlpBits: 8 | 16 | null,
  repetitions = 30,
): ExchangeCollectivesTiming {
  const scales = new Float32Array(bytes.scales / 4).fill(1);
  const mlpQ = mlpBits === 16 ? new Int16Array(bytes.mlp / 2) : new Int8Array(bytes.mlp);
  const mlpF = new Float32Array(bytes.mlp / 4), wide = new Int32Array(mlpQ.length);
  const message = new Int8Array(Math.round(bytes.embedding));
  const t = { scales: [] as number[], mlp: [] as number[], embedding: [] as number[] };
  const total: number[] = [];
  for (let r = -1; r < repetitions; r++) {
    comm.barrier();
    const t0 = comm.wtime();
    if (scales.length) comm.allReduceMean(scales);
    const t1 = comm.wtime();
    if (mlpBits) comm.allReduceSumWiden(mlpQ, wide);
    else comm.allReduceSum(mlpF);
    const t2 = comm.wtime();
    comm.allGather(message);
    const t3 = comm.wtime();
    if (r < 0) continue;
    t.scales.push(t1 - t0);
    t.mlp.push(t2 - t1);
    t.embedding.push(t3 - t2);
    total.push(t3 - t0);
  }
  const ms = (a: number[]) => +(upperMedian(a) * 1000).toFixed(4);
  return {
    medianMs: {
      scales: ms(t.scales),
      mlp: ms(t.mlp),
      embedding: ms(t.embedding),
      total: ms(total),
    },
    repetitions,
  };
}
