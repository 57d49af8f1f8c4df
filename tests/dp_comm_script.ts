// The fixed script of collectives every communicator test runs on each rank
// (tests/dp_comm_test.ts for shared memory, tests/dp_mpi_test.ts for MPI), and its expected result.
import { type Communicator, sumInOrder } from "../comm/communicator.ts";

/** What {@linkcode runCommScript} returns on one rank. */
export interface CommScriptResult {
  f: number[];
  order: number[];
  i32: number[];
  wide: number[];
  wide16: number[];
  scales: number[];
  gathered: number[][];
  bytesSent: number;
}

/** Runs the script on `comm` (every rank calls it, in the same order). */
export function runCommScript(comm: Communicator): CommScriptResult {
  const r = comm.rank;
  // Larger than a 256-byte slot (64 floats): reduced in pieces.
  const f = Float32Array.from({ length: 150 }, (_, i) => (r + 1) * 0.1 + i);
  comm.allReduceSum(f);
  // Float addition does not associate: each element's sum differs under some other order.
  const order = orderValues(r);
  comm.allReduceSum(order);
  const i32 = Int32Array.from({ length: 5 }, (_, i) => r * 1000 + i);
  comm.allReduceSum(i32);
  const q = Int8Array.from({ length: 300 }, (_, i) => (i % 2 ? 127 : -128));
  const wide = new Int32Array(300);
  comm.allReduceSumWiden(q, wide);
  const q16 = Int16Array.from({ length: 3 }, (_, i) => (i - 1) * 32767);
  const wide16 = new Int32Array(3);
  comm.allReduceSumWiden(q16, wide16);
  const scales = Float32Array.of(r + 1, 2 * (r + 1));
  comm.allReduceMean(scales);
  const gathered = comm.allGather(Int32Array.from({ length: r + 1 }, () => r)).map((a) =>
    Array.from(a)
  );
  comm.barrier();
  return {
    f: Array.from(f),
    order: Array.from(order),
    i32: Array.from(i32),
    wide: Array.from(wide),
    wide16: Array.from(wide16),
    scales: Array.from(scales),
    gathered,
    bytesSent: comm.bytesSent,
  };
}

/** The result every rank of a group of `size` must return. */
export function expectedCommScript(size: number): Omit<CommScriptResult, "bytesSent"> {
  const ranks = Array.from({ length: size }, (_, r) => r);
  const f = Array.from({ length: 150 }, (_, i) => {
    const parts = ranks.map((r) => Float32Array.of((r + 1) * 0.1 + i));
    const out = new Float32Array(1);
    sumInOrder(parts, out);
    return out[0];
  });
  const order = new Float32Array(3);
  sumInOrder(ranks.map(orderValues), order);
  const rankSum = ranks.reduce((a, r) => a + r, 0);
  return {
    f, // bit-identical on every rank, in rank order
    order: Array.from(order),
    i32: Array.from({ length: 5 }, (_, i) => rankSum * 1000 + size * i),
    // size × 127 and size × -128: beyond INT8, exact in Int32.
    wide: Array.from({ length: 300 }, (_, i) => (i % 2 ? 127 * size : -128 * size)),
    wide16: [-32767 * size, 0, 32767 * size],
    scales: [(size + 1) / 2, size + 1],
    gathered: ranks.map((r) => Array.from({ length: r + 1 }, () => r)),
  };
}

/**
 * Rank `r`'s contribution to the order-sensitive sums: of 3 ranks, element 0 sums to 1 only if
 * ranks 0 and 2 are added first, element 1 only if ranks 1 and 2 are, element 2 to 1 only in
 * rank order.
 */
function orderValues(r: number): Float32Array {
  return Float32Array.of([1e8, 1, -1e8][r] ?? 0, [1, 1e8, -1e8][r] ?? 0, [1e8, -1e8, 1][r] ?? 0);
}

/** Payload bytes rank `rank` sends in the script. */
export function expectedCommBytes(rank: number): number {
  // 150 + 3 floats + 5 ints + 300 int8 + 3 int16 + 2 floats + the gathered ints.
  return 600 + 12 + 20 + 300 + 6 + 8 + 4 * (rank + 1);
}
