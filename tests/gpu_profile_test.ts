/**
 * The per-kernel profile of one GPU training step (`profileGpuStep`): every dispatch timed in a
 * pass of its own, named by its kernel, and the step trained exactly as `trainChunk` trains it,
 * with or without the untimed warm-up before it.
 */
import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { createGpuEngine, profileGpuStep } from "../engine/gpu/mod.ts";

import { dqrm } from "../suites/experiments.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import { assertParamsClose, ODD, randomChunk } from "./test_models.ts";

const found = await findTestAdapter();
const ignore = found.adapter === null;
if (ignore) console.warn(`SKIPPING the GPU profile tests: ${found.reason}.`);

Deno.test({
  name: "profileGpuStep times every kernel of a step and trains it as trainChunk does",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const quantization = dqrm(4, 4, 2);
    const profiled = await createGpuEngine({ spec: ODD, maxBatch: 9, seed: 3, quantization });
    const plain = await createGpuEngine({ spec: ODD, maxBatch: 9, seed: 3, quantization });
    try {
      for (let step = 0; step < 3; step++) {
        const chunk = randomChunk(ODD, 9, 9, 40 + step, step === 1);
        // The last step with the untimed warm-up first: not among the kernels, nothing else moved.
        const warmUp = step === 2 ? 1 : 0;
        const times = await profileGpuStep(profiled, chunk, { learningRate: 0.1 }, warmUp);
        await plain.trainChunk(chunk, { learningRate: 0.1 });
        assert.ok(times, "expected timestamps from the test adapter");
        for (const phase of ["scale", "forward", "backward", "update"]) {
          assert.ok(times.some((t) => t.phase === phase), `expected a kernel in phase ${phase}`);
        }
        for (const t of times) {
          assert.ok(t.kernel.length > 0 && t.ms >= 0, `bad entry ${JSON.stringify(t)}`);
          assert.ok(t.grid.every((g) => Number.isInteger(g) && g >= 1));
        }
        assert.ok(times.some((t) => t.kernel === "sgd"), "expected the SGD kernel by name");
        assert.ok(!times.some((t) => t.kernel === "fma_peak"), "the warm-up is not timed");
        assertParamsClose(`step ${step}`, await profiled.readParams(), await plain.readParams(), {
          atol: 0,
          rtol: 0,
        });
      }
      await assert.rejects(
        profileGpuStep(profiled, randomChunk(ODD, 3, 9, 1), { learningRate: 0.1 }),
        /chunk of one batch/,
      );
      const cpu = await createCpuEngine({ spec: ODD, maxBatch: 9, threads: 1 });
      try {
        await assert.rejects(
          profileGpuStep(cpu, randomChunk(ODD, 9, 9, 1), { learningRate: 0.1 }),
          /createGpuEngine/,
        );
      } finally {
        await cpu.dispose();
      }
    } finally {
      await profiled.dispose();
      await plain.dispose();
    }
  },
});
