/// <reference lib="deno.worker" />
// A rank of the communicator tests (tests/dp_comm_test.ts): runs a fixed script of collectives.
import { type SharedGroup, SharedMemoryCommunicator } from "../comm/communicator.ts";

self.onmessage = (e: MessageEvent<{ group: SharedGroup; rank: number }>) => {
  const comm = new SharedMemoryCommunicator(e.data.group, e.data.rank);
  const r = comm.rank;
  // Larger than a slot (64 floats): reduced in pieces.
  const f = Float32Array.from({ length: 150 }, (_, i) => (r + 1) * 0.1 + i);
  comm.allReduceSum(f);
  const i32 = Int32Array.from({ length: 5 }, (_, i) => r * 1000 + i);
  comm.allReduceSum(i32);
  const q = Int8Array.from({ length: 300 }, (_, i) => (i % 2 ? 127 : -128));
  const wide = new Int32Array(300);
  comm.allReduceSumWiden(q, wide);
  const scales = Float32Array.of(r + 1, 2 * (r + 1));
  comm.allReduceMean(scales);
  const gathered = comm.allGather(Int32Array.from({ length: r + 1 }, () => r)).map((a) =>
    Array.from(a)
  );
  comm.barrier();
  self.postMessage({
    f: Array.from(f),
    i32: Array.from(i32),
    wide: Array.from(wide),
    scales: Array.from(scales),
    gathered,
    bytesSent: comm.bytesSent,
  });
};
