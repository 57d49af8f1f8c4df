import assert from "node:assert/strict";
import { createSharedGroup, sumInOrder } from "../comm/communicator.ts";

Deno.test("shared-memory communicator: sums, exact widened sums, means, gathers", async () => {
  const size = 3;
  const group = createSharedGroup(size, 256); // 64 floats a slot: larger arrays go in pieces
  const results = await Promise.all(Array.from({ length: size }, (_, rank) => {
    const w = new Worker(new URL("./dp_comm_worker.ts", import.meta.url).href, { type: "module" });
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      w.onmessage = (e) => {
        w.terminate();
        resolve(e.data);
      };
      w.onerror = (e) => {
        e.preventDefault();
        w.terminate();
        reject(new Error(e.message));
      };
      w.postMessage({ group, rank });
    });
  }));
  const f = Array.from({ length: 150 }, (_, i) => {
    const parts = [0, 1, 2].map((r) => Float32Array.of((r + 1) * 0.1 + i));
    const out = new Float32Array(1);
    sumInOrder(parts, out);
    return out[0];
  });
  for (const r of results) {
    assert.deepEqual(r.f, f); // bit-identical on every rank, in rank order
    assert.deepEqual(r.i32, [3000, 3003, 3006, 3009, 3012]);
    // 3 × 127 = 381 and 3 × -128 = -384: beyond INT8, exact in Int32.
    assert.deepEqual(r.wide, Array.from({ length: 300 }, (_, i) => (i % 2 ? 381 : -384)));
    assert.deepEqual(r.scales, [2, 4]);
    assert.deepEqual(r.gathered, [[0], [1, 1], [2, 2, 2]]);
  }
  // Payload bytes: 150 floats + 5 ints + 300 int8 + 2 floats + the gathered ints.
  assert.deepEqual(
    results.map((r) => r.bytesSent),
    [0, 1, 2].map((r) => 600 + 20 + 300 + 8 + 4 * (r + 1)),
  );
});
