/**
 * A GPU engine call whose commands the device rejects (a validation error outside any error
 * scope makes the whole command buffer invalid: nothing of it runs) fails with the device's
 * message instead of returning results that no command computed; the next call runs normally.
 */
import assert from "node:assert/strict";
import { createGpuEngine, gpuDataParallelHooks, type GpuExchange } from "../engine/gpu/mod.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import { ODD, randomChunk } from "./test_models.ts";

const ignore = (await findTestAdapter()).adapter === null;

Deno.test({
  name: "GPU engine: an error the device reports fails the call that caused it, with its message",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const engine = await createGpuEngine({ spec: ODD, maxBatch: 9, seed: 3 });
    try {
      const hooks = gpuDataParallelHooks(engine);
      let device: GPUDevice | null = null;
      // An exchange that submits an invalid command buffer (a dispatch with no pipeline).
      const broken: GpuExchange = {
        prepare: (buffers) => (device = buffers.device),
        step: () => {
          const encoder = device!.createCommandEncoder();
          const pass = encoder.beginComputePass();
          pass.dispatchWorkgroups(1);
          pass.end();
          device!.queue.submit([encoder.finish()]);
          return Promise.resolve({ recordTables: () => {} });
        },
        finish: () => {},
      };
      const chunk = randomChunk(ODD, 9, 9, 5);
      await assert.rejects(
        hooks.trainChunk(chunk, { learningRate: 0.1 }, broken),
        /reported an error: .*pipeline/i,
      );
      const r = await engine.trainChunk(chunk, { learningRate: 0.1 });
      assert.ok(Number.isFinite(r.loss[0]), "the next call trains");
    } finally {
      await engine.dispose();
    }
  },
});
