import assert from "node:assert/strict";
import { createSharedGroup } from "../comm/communicator.ts";
import { expectedCommBytes, expectedCommScript } from "./dp_comm_script.ts";

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
  const want = expectedCommScript(size);
  for (const { bytesSent: _, ...r } of results) assert.deepEqual(r, want);
  assert.deepEqual(results.map((r) => r.bytesSent), [0, 1, 2].map(expectedCommBytes));
});
