/**
 * The WebGPU engine against the golden fixtures and against the CPU engine, step by step, with
 * explicit tolerances. Needs a WebGPU adapter (in CI: lavapipe, `DENO_WEBGPU_BACKEND=vulkan`);
 * without one every GPU test is reported as ignored, with the reason printed once.
 */
import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import type { Engine } from "../engine/engine.ts";
import { createGpuEngine, planTables } from "../engine/gpu/mod.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import type { QuantConfig } from "../engine/quant.ts";
import { interactionWidth, type ModelSpec } from "../engine/spec.ts";
import {
  assertClose,
  assertMatchesGolden,
  assertParamsClose,
  GOLDEN_FIXTURES,
  ODD,
  randomChunk,
} from "./test_models.ts";

const found = await findTestAdapter();
const ignore = found.adapter === null;
if (ignore) {
  console.warn(
    `SKIPPING the WebGPU engine tests: ${found.reason}. Install a Vulkan driver (CI: ` +
      `apt-get install -y mesa-vulkan-drivers libvulkan1) and set DENO_WEBGPU_BACKEND=vulkan.`,
  );
}

/** Tables forced into 64-byte arenas (4 rows of d = 4), at most 2 bound per dispatch. */
const SPLIT = { arenaBytes: 64, arenasPerGroup: 2 };

for (const file of GOLDEN_FIXTURES) {
  for (const split of [false, true]) {
    Deno.test({
      name: `GPU engine matches golden fixture ${file}${
        split ? " (tables split across arenas)" : ""
      }`,
      ignore,
      sanitizeResources: false,
      fn: () =>
        assertMatchesGolden(
          file,
          (spec, params, maxBatch, quantization) =>
            createGpuEngine({ spec, params, maxBatch, quantization, ...(split ? SPLIT : {}) }),
        ),
    });
  }
}

const DQRM4: QuantConfig = {
  quantizer: "minmax",
  embeddingBits: 4,
  mlpBits: 4,
  mlpGranularity: "channel",
  quantizeBias: false,
  scalePeriod: 3,
  gatheredRowsOnly: true,
};

async function pair(
  spec: ModelSpec,
  maxBatch: number,
  quantization: QuantConfig | null,
  extra: { arenaBytes?: number; arenasPerGroup?: number } = {},
): Promise<[Engine, Engine]> {
  const cpu = await createCpuEngine({ spec, maxBatch, seed: 5, threads: 1, quantization });
  const gpu = await createGpuEngine({ spec, maxBatch, seed: 5, quantization, ...extra });
  return [cpu, gpu];
}

Deno.test({
  name: "GPU engine initialises exactly as the CPU engine for the same seed",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    for (const extra of [{}, { arenaBytes: 80, arenasPerGroup: 3 }]) {
      const [cpu, gpu] = await pair(ODD, 4, null, extra);
      try {
        assertParamsClose("initial", await gpu.readParams(), await cpu.readParams(), {
          atol: 0,
          rtol: 0,
        });
        assert.deepEqual(await gpu.readTable(2), await cpu.readTable(2));
      } finally {
        await cpu.dispose();
        await gpu.dispose();
      }
    }
  },
});

for (const quant of [null, DQRM4]) {
  for (const multiHot of [false, true]) {
    for (const split of [false, true]) {
      const what = `${quant ? "DQRM INT4" : "FP32"}, ${multiHot ? "multi" : "one"}-hot${
        split ? ", split tables" : ""
      }`;
      Deno.test({
        name: `GPU engine trains like the CPU engine, step by step (${what})`,
        ignore,
        sanitizeResources: false,
        fn: async () => {
          const batch = 13;
          const [cpu, gpu] = await pair(
            ODD,
            batch,
            quant,
            split ? { arenaBytes: 60, arenasPerGroup: 2 } : {},
          );
          try {
            // Traced steps: probabilities, loss and every gradient, one step at a time.
            for (let step = 0; step < 4; step++) {
              const chunk = randomChunk(ODD, batch, batch, 100 + step, multiHot);
              const want = await cpu.traceStep(chunk, { learningRate: 0.1 });
              const got = await gpu.traceStep(chunk, { learningRate: 0.1 });
              assertClose(`step ${step} probabilities`, got.probabilities, want.probabilities);
              assertClose(`step ${step} loss`, [got.loss], [want.loss]);
              assertParamsClose(`step ${step} gradients`, got.gradients, want.gradients);
              assertParamsClose(
                `step ${step} params`,
                await gpu.readParams(),
                await cpu.readParams(),
              );
              if (quant) {
                assertClose(
                  `step ${step} scales`,
                  await gpu.embeddingScales(),
                  await cpu.embeddingScales(),
                );
              }
            }
            // A chunk of 7 iterations in one submit.
            const chunk = randomChunk(ODD, batch, 7 * batch, 7, multiHot);
            const want = await cpu.trainChunk(chunk, { learningRate: 0.05 });
            const got = await gpu.trainChunk(chunk, { learningRate: 0.05 });
            assert.equal(got.iterations, 7);
            assertClose("chunk losses", got.loss, want.loss, { atol: 1e-5, rtol: 2e-3 });
            assertParamsClose("after chunk", await gpu.readParams(), await cpu.readParams(), {
              atol: 2e-5,
              rtol: 2e-3,
            });
            // Prediction in batches, the last one short.
            const test = randomChunk(ODD, 5, 23, 8, multiHot);
            assertClose("predict", await gpu.predict(test), await cpu.predict(test));
          } finally {
            await cpu.dispose();
            await gpu.dispose();
          }
        },
      });
    }
  }
}

for (const split of [false, true]) {
  Deno.test({
    name: `GPU scale finding over vec4 work lists equals the CPU's scales${
      split ? " (tables split across arenas)" : ""
    }`,
    ignore,
    sanitizeResources: false,
    fn: async () => {
      // Width 8 takes the vec4 max-|w| kernel; 20,011 rows x 8 floats span several work items.
      const tableRows = [20011, 3, 70001, 5];
      const spec: ModelSpec = {
        ...ODD,
        tableRows,
        embeddingDim: 8,
        bottomMlp: [13, 9, 8],
        topMlp: [interactionWidth({ tableRows, embeddingDim: 8 }), 6, 1],
      };
      const quant = { ...DQRM4, scalePeriod: 1 };
      // Planted maxima in the last float of a table, in a middle block, and negative: a work
      // item skipped or cut short would miss one.
      const seeded = await createCpuEngine({ spec, maxBatch: 9, seed: 5, threads: 1 });
      const params = await seeded.readParams();
      await seeded.dispose();
      params.embeddings[2][70001 * 8 - 1] = 5;
      params.embeddings[0][10_000 * 8 + 3] = -3;
      const cpu = await createCpuEngine({
        spec,
        maxBatch: 9,
        params,
        threads: 1,
        quantization: quant,
      });
      const gpu = await createGpuEngine({
        spec,
        maxBatch: 9,
        params,
        quantization: quant,
        ...(split ? { arenaBytes: 400_000 } : {}),
      });
      try {
        for (let step = 0; step < 3; step++) {
          const chunk = randomChunk(spec, 9, 9, 300 + step);
          await cpu.trainChunk(chunk, { learningRate: 0.5 });
          await gpu.trainChunk(chunk, { learningRate: 0.5 });
          // Scales are max |w| / 7 of every table: equal up to the trained weights' tolerance.
          assertClose(
            `step ${step} scales`,
            await gpu.embeddingScales(),
            await cpu.embeddingScales(),
          );
        }
        const scales = await gpu.embeddingScales();
        assert.ok(Math.abs(scales[2] - 5 / 7) < 1e-3 && Math.abs(scales[0] - 3 / 7) < 1e-3);
      } finally {
        await cpu.dispose();
        await gpu.dispose();
      }
    },
  });
}

Deno.test({
  name:
    "GPU engine's gradients at batch 2048 (split-K products, column-sum bias gradients) match the CPU's",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const batch = 2048;
    const [cpu, gpu] = await pair(ODD, batch, null, {});
    try {
      const chunk = randomChunk(ODD, batch, batch, 31, false);
      const want = await cpu.traceStep(chunk, { learningRate: 0.1 });
      const got = await gpu.traceStep(chunk, { learningRate: 0.1 });
      assertClose("loss", [got.loss], [want.loss]);
      assertParamsClose("gradients", got.gradients, want.gradients);
    } finally {
      await cpu.dispose();
      await gpu.dispose();
    }
  },
});

Deno.test({
  name: "GPU engine: calls in flight together give exactly what awaiting each one gives",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const batch = 7;
    const make = () =>
      createGpuEngine({ spec: ODD, maxBatch: batch, seed: 9, quantization: DQRM4 });
    const chunks = [1, 2, 3].map((k) => randomChunk(ODD, batch, 5 * batch, 40 + k, true));
    const test = randomChunk(ODD, batch, 3 * batch, 50, true);
    const lr = { learningRate: 0.2 };
    const [one, all] = [await make(), await make()];
    try {
      const want: Float32Array[] = [];
      for (const c of chunks) want.push((await one.trainChunk(c, lr)).loss);
      const wantProbabilities = await one.predict(test);
      // Every call started before any is awaited: recorded while the one before trains.
      const pending = chunks.map((c) => all.trainChunk(c, lr));
      const probabilities = all.predict(test);
      const got = await Promise.all(pending);
      got.forEach((r, i) => assert.deepEqual(r.loss, want[i], `chunk ${i} losses`));
      assert.deepEqual(await probabilities, wantProbabilities);
      assert.deepEqual(await all.readParams(), await one.readParams());
      // A synchronous submitter refuses to overtake calls in flight.
      const late = all.trainChunk(chunks[0], lr);
      assert.throws(() => all.quantizeInPlace({ ...DQRM4 }), /in flight/);
      await late;
    } finally {
      await one.dispose();
      await all.dispose();
    }
  },
});

Deno.test({
  name: "GPU engine's post-training quantization matches the CPU engine's",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const [cpu, gpu] = await pair(ODD, 8, null, { arenaBytes: 100, arenasPerGroup: 2 });
    try {
      const chunk = randomChunk(ODD, 8, 24, 3, false);
      await cpu.trainChunk(chunk, { learningRate: 0.1 });
      await gpu.trainChunk(chunk, { learningRate: 0.1 });
      const config = { embeddingBits: 4 as const, mlpBits: 4 as const, quantizeBias: true };
      cpu.quantizeInPlace(config);
      gpu.quantizeInPlace(config);
      // The scales changed on the GPU: read back in turn, with no other call first.
      assertClose("scales", await gpu.embeddingScales(), await cpu.embeddingScales());
      assertParamsClose("quantized", await gpu.readParams(), await cpu.readParams());
      const test = randomChunk(ODD, 8, 16, 4, false);
      assertClose("predict", await gpu.predict(test), await cpu.predict(test));
    } finally {
      await cpu.dispose();
      await gpu.dispose();
    }
  },
});

Deno.test({
  name: "GPU engine reads any table back in call order and times phases",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const options = { spec: ODD, maxBatch: 4, seed: 1, timingEvery: 3 };
    const gpu = await createGpuEngine({ ...options, arenaBytes: 100, arenasPerGroup: 2 });
    const cpu = await createCpuEngine({ spec: ODD, maxBatch: 4, seed: 1, threads: 1 });
    try {
      const initial = await cpu.readParams();
      const first = await gpu.readTable(1);
      assert.deepEqual(first, initial.embeddings[1]);
      const chunk = randomChunk(ODD, 4, 40, 9, false);
      // Not awaited: readTable takes its turn after the training call.
      const training = gpu.trainChunk(chunk, { learningRate: 0.1 });
      const reading = gpu.readTable(1);
      const r = await training;
      assert.equal(r.iterations, 10);
      assert.ok(r.loss.every(Number.isFinite));
      const after = await reading;
      const params = await gpu.readParams();
      assert.deepEqual(after, params.embeddings[1]);
      assert.notDeepEqual(after, first);
      for (let t = 0; t < ODD.tableRows.length; t++) {
        assert.deepEqual(await gpu.readTable(t), params.embeddings[t], `table ${t}`);
      }
      await assert.rejects(() => gpu.readTable(ODD.tableRows.length), RangeError);
      await assert.rejects(() => gpu.readTable(-1), RangeError);
      if (gpu.info.details.timing?.toString().startsWith("timestamp")) {
        for (let i = 0; i < r.iterations; i++) {
          const total = r.phases.forward[i] + r.phases.backward[i] + r.phases.update[i];
          assert.ok(total > 0, `iteration ${i} has no GPU time`);
        }
      }
      assert.ok(gpu.memoryBytes() > 0);
    } finally {
      await cpu.dispose();
      await gpu.dispose();
    }
  },
});

Deno.test("GPU table plan splits tables across arenas at row boundaries", () => {
  const plan = planTables([10, 3, 7], 4, 64, 2); // 4 rows per arena
  assert.deepEqual(plan.arenaFloats, [16, 16, 16, 16, 16]);
  assert.equal(plan.groups, 3);
  assert.deepEqual(
    plan.segments.map((s) => [s.table, s.rowStart, s.rowEnd, s.arena, s.offset]),
    [
      [0, 0, 4, 0, 0],
      [0, 4, 8, 1, 0],
      [0, 8, 10, 2, 0],
      [1, 0, 2, 2, 8],
      [1, 2, 3, 3, 0],
      [2, 0, 3, 3, 4],
      [2, 3, 7, 4, 0],
    ],
  );
  assert.deepEqual(plan.segmentCount, [3, 2, 2]);
  const whole = planTables([10, 3, 7], 4, 1 << 20, 8);
  assert.equal(whole.arenaFloats.length, 1);
  assert.equal(whole.groups, 1);
  assert.throws(() => planTables([1], 16, 32, 1), /at least one row/);
});
