import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { adviseHugePages, HUGE_PAGE_BYTES } from "../engine/cpu/huge_pages.ts";
import { WASM_PAGE } from "../engine/cpu/wasm.ts";
import { dqrm } from "../suites/experiments.ts";
import { ODD, randomChunk } from "./test_models.ts";

function thpSupported(): boolean {
  try {
    return Deno.statSync("/sys/kernel/mm/transparent_hugepage/enabled").isFile;
  } catch {
    return false;
  }
}

Deno.test("huge pages are asked for whole 2 MiB pages of a memory, or not at all", () => {
  assert.equal(adviseHugePages([]), 0);
  const pages = (3 * HUGE_PAGE_BYTES) / WASM_PAGE;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const advised = adviseHugePages([memory]);
  // Linux with transparent huge pages (and the FFI permission, which tests have) advises it.
  assert.ok(advised === 0 || advised === 1, `advised ${advised}`);
  if (Deno.build.os === "linux" && thpSupported()) assert.equal(advised, 1);
  // A memory too small to hold a whole huge page is left alone.
  const small = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  assert.equal(adviseHugePages([small]), 0);
});

Deno.test("CPU engine results are bit-identical with and without huge pages", async () => {
  const chunk = randomChunk(ODD, 8, 8 * 12, 9, true);
  const results = [];
  for (const hugePages of [true, false]) {
    const engine = await createCpuEngine({
      spec: ODD,
      maxBatch: 8,
      seed: 4,
      threads: 2,
      quantization: dqrm(4, 4, 5),
      hugePages,
    });
    try {
      const { loss } = await engine.trainChunk(chunk, { learningRate: 0.1 });
      results.push({ loss, params: await engine.readParams() });
    } finally {
      await engine.dispose();
    }
  }
  const [a, b] = results;
  assert.deepEqual(a.loss, b.loss);
  assert.deepEqual(a.params, b.params);
});
