/**
 * Prediction by row tiles (`CpuProgram`'s predict: each tile through every layer on the thread
 * that claims it): bit for bit the same at 1, 2 and 3 threads on either kernel path; on the
 * WebAssembly path also the same at any batch size (any tiling) and the same as the training
 * forward pass; timed by phase without changing a probability.
 */
import assert from "node:assert/strict";
import { cpuPredictPhases, createCpuEngine } from "../engine/cpu/mod.ts";
import { predictTileRows } from "../engine/cpu/program.ts";
import { blasLibrariesToTest, type CpuKernelChoice } from "../engine/cpu/blas_library.ts";
import type { BatchChunk } from "../engine/batch.ts";
import { initParams } from "../engine/params.ts";
import { PREDICT_PHASES } from "../engine/cpu/run_request.ts";
import { BARRIER_WORDS, BarrierAbortedError, SpinBarrier } from "../engine/cpu/barrier.ts";
import { TILE_QUEUE_WORDS, TileQueue } from "../engine/cpu/tile_queue.ts";
import { assertClose, ODD, randomChunk, testSpec } from "./test_models.ts";

/** Wide enough layers that BLAS runs real products; odd widths everywhere. */
const WIDE = testSpec([11, 3, 29, 7, 5], 6, [13, 37, 6], [45, 33, 1]);

async function predict(
  chunk: BatchChunk,
  threads: number,
  kernels: CpuKernelChoice,
  spec = ODD,
  blasLibrary?: string,
): Promise<Float32Array> {
  const engine = await createCpuEngine({
    spec,
    params: initParams(spec, 5),
    maxBatch: chunk.batchSize,
    threads,
    kernels,
    blasLibrary,
  });
  try {
    return await engine.predict(chunk);
  } finally {
    await engine.dispose();
  }
}

Deno.test("predict's row tiles depend on the batch size only: 16 to 256 rows, two a batch of 32+", () => {
  for (const batch of [1, 7, 31, 32, 100, 128, 600, 16384]) {
    const tile = predictTileRows(batch);
    assert.ok(tile >= 16 && tile <= 256 && tile % 16 === 0, `batch ${batch}: tile ${tile}`);
    if (batch >= 32 && batch <= 512) assert.ok(Math.ceil(batch / tile) >= 2, `batch ${batch}`);
  }
  assert.equal(predictTileRows(128), 64);
  assert.equal(predictTileRows(16384), 256);
});

for (const multiHot of [false, true]) {
  Deno.test(`wasm predict by tiles (${multiHot ? "multi" : "one"}-hot): any thread count, any batch size, the training forward's probabilities, bit for bit`, async () => {
    const chunk = randomChunk(ODD, 100, 230, 9, multiHot); // tiles of 64: 64 + 36, 3 batches
    const want = await predict(chunk, 1, "wasm");
    for (const threads of [2, 3]) {
      assert.deepEqual(await predict(chunk, threads, "wasm"), want, `${threads} threads`);
    }
    // One sample a batch: one-row tiles, every batch its own run of the layers.
    assert.deepEqual(await predict({ ...chunk, batchSize: 1 }, 2, "wasm"), want, "batch 1");
    // The training forward pass (column shares, a barrier between layers) of the first batch.
    const engine = await createCpuEngine({
      spec: ODD,
      params: initParams(ODD, 5),
      maxBatch: 100,
      threads: 2,
      kernels: "wasm",
    });
    try {
      const trace = await engine.traceStep(chunk, { learningRate: 0 });
      assert.deepEqual(trace.probabilities, want.subarray(0, 100), "trace");
    } finally {
      await engine.dispose();
    }
  });
}

for (const library of blasLibrariesToTest()) {
  Deno.test(`BLAS (${library}) predict by tiles: bit for bit at 1, 2 and 3 threads, close to the wasm path`, async () => {
    for (const batch of [100, 600]) {
      const chunk = randomChunk(WIDE, batch, 1300, 4, true);
      const want = await predict(chunk, 1, "blas", WIDE, library);
      for (const threads of [2, 3]) {
        assert.deepEqual(
          await predict(chunk, threads, "blas", WIDE, library),
          want,
          `${threads} threads`,
        );
      }
      assertClose(`batch ${batch}`, want, await predict(chunk, 2, "wasm", WIDE), {
        atol: 1e-6,
        rtol: 1e-5,
      });
    }
  });
}

Deno.test("cpuPredictPhases times every phase and scores as predict does", async () => {
  const chunk = randomChunk(ODD, 64, 300, 2);
  for (const threads of [1, 2]) {
    const engine = await createCpuEngine({
      spec: ODD,
      params: initParams(ODD, 5),
      maxBatch: 64,
      threads,
      kernels: "wasm",
    });
    try {
      const want = await engine.predict(chunk);
      const { probabilities, wallMs, phases } = await cpuPredictPhases(engine, chunk);
      assert.deepEqual(probabilities, want);
      assert.deepEqual(Object.keys(phases), [...PREDICT_PHASES, "other"]);
      assert.ok(Object.values(phases).every((ms) => ms >= 0), JSON.stringify(phases));
      // Phases are the main thread's: alone it runs every tile; with a helper it may draw none
      // (a loaded machine can leave it waiting while the helper takes every tile).
      if (threads === 1) assert.ok(phases.bottom > 0 && phases.top > 0, JSON.stringify(phases));
      // The phases are timed inside the run, and `other` is what they leave of it.
      const timed = PREDICT_PHASES.reduce((a, p) => a + phases[p], 0);
      assert.ok(timed <= wallMs + 1e-3, `${timed} ms of phases in ${wallMs} ms`);
      assert.ok(Math.abs(timed + phases.other - wallMs) < 1e-3, JSON.stringify(phases));
    } finally {
      await engine.dispose();
    }
  }
});

Deno.test("the tile queue hands out each ticket once, counts tiles done, and stops on an abort", () => {
  const words = new Int32Array(new SharedArrayBuffer((BARRIER_WORDS + TILE_QUEUE_WORDS) * 4));
  const barrier = new SpinBarrier(words.subarray(0, BARRIER_WORDS), 2);
  const queue = new TileQueue(words.subarray(BARRIER_WORDS), barrier);
  assert.deepEqual([queue.draw(), queue.draw(), queue.draw()], [0, 1, 2]);
  queue.done();
  queue.done();
  queue.waitDone(2); // returns at once
  barrier.abort();
  assert.throws(() => queue.waitDone(3), BarrierAbortedError);
  queue.reset();
  assert.equal(queue.draw(), 0);
  assert.throws(
    () => new TileQueue(new Int32Array(new SharedArrayBuffer(4)), barrier),
    /Expected 2 shared words but found 1/,
  );
});
