/**
 * Every QAT method on the WebGPU engine against the CPU engine (the reference), step by step on
 * the shared odd-width model: LSQ, PACT (DoReFa weights and the learned activation clip), HAWQ
 * (whole-table copies) and DQRM with matrix-wise MLP scales and quantized biases. Needs a WebGPU
 * adapter (in CI: lavapipe, `DENO_WEBGPU_BACKEND=vulkan`); without one every test is reported as
 * ignored, with the reason printed once.
 */
import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import type { Engine } from "../engine/engine.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import { initParams } from "../engine/params.ts";
import type { QuantConfig } from "../engine/quant.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { dqrm, hawq, lsq, pact } from "../suites/experiments.ts";
import {
  assertClose,
  assertParamsClose,
  ODD,
  randomChunk,
  testSpec,
  type Tolerance,
} from "./test_models.ts";

const found = await findTestAdapter();
const ignore = found.adapter === null;
if (ignore) {
  console.warn(
    `SKIPPING the WebGPU QAT tests: ${found.reason}. Install a Vulkan driver (CI: ` +
      `apt-get install -y mesa-vulkan-drivers libvulkan1) and set DENO_WEBGPU_BACKEND=vulkan.`,
  );
}

/** Traced single steps: the golden fixtures' tolerance. */
const STEP: Tolerance = { atol: 1e-5, rtol: 1e-3 };
/** After a chunk of several steps (summation orders differ a little more). */
const CHUNK: Tolerance = { atol: 2e-5, rtol: 2e-3 };

interface Case {
  name: string;
  quant: QuantConfig;
  multiHot: boolean;
  /** Tables forced into small arenas, 2 bound per dispatch. */
  split?: boolean;
  /**
   * MLP weights scaled by this from the seeded initialisation, so that hidden activations pass
   * PACT's initial clip (10) and the clip's gradient and masks run.
   */
  gain?: number;
  /**
   * Every 7th weight and embedding value scaled by this, so that LSQ's clipping range leaves some
   * out (its masks run).
   */
  outlier?: number;
  /** Samples per step (11 unless said): above 256, PACT's backward stages rows in tiles. */
  batch?: number;
  /** The model (`ODD` unless said). */
  spec?: ModelSpec;
  /** Bytes per arena of a split plan (60 unless said). */
  arenaBytes?: number;
}

/**
 * Embedding width 8 (whole-table kernels read vec4s) and a table of 9000 rows, over 65,536
 * floats: its work list has two blocks, the second one short.
 */
const VEC4: ModelSpec = testSpec([9000, 3, 29, 12, 5], 8, [13, 9, 7, 8], [10, 6, 1]);

/** A hidden layer of 300 inputs: LSQ's row backward stages a row's columns in two tiles. */
const WIDE: ModelSpec = testSpec([11, 3, 29, 7, 5], 8, [13, 300, 8], [10, 6, 1]);

const CASES: Case[] = [
  { name: "LSQ INT4", quant: lsq(4, 4), multiHot: false },
  { name: "LSQ INT4, multi-hot, split tables", quant: lsq(4, 4), multiHot: true, split: true },
  { name: "LSQ embeddings INT4", quant: lsq(4, null), multiHot: true },
  {
    name: "LSQ INT4, values outside the clipping range",
    quant: lsq(4, 4),
    multiHot: true,
    outlier: 12,
  },
  {
    name: "LSQ INT4, a row of 300 columns",
    quant: lsq(4, 4),
    multiHot: false,
    spec: WIDE,
  },
  {
    name: "LSQ INT8, HAWQ copies, matrix",
    quant: { ...lsq(8, 8), gatheredRowsOnly: false },
    multiHot: true,
  },
  { name: "PACT INT4", quant: pact(4, 4), multiHot: false },
  { name: "PACT INT4, multi-hot, split tables", quant: pact(4, 4), multiHot: true, split: true },
  { name: "PACT INT8, activations clipped", quant: pact(8, 8), multiHot: true, gain: 6 },
  {
    name: "PACT INT8, activations clipped, rows over two tiles",
    quant: pact(8, 8),
    multiHot: false,
    gain: 6,
    batch: 300,
  },
  { name: "PACT embeddings INT4", quant: pact(4, null), multiHot: true },
  { name: "HAWQ INT4", quant: hawq(4, 4), multiHot: false },
  { name: "HAWQ INT4, multi-hot, split tables", quant: hawq(4, 4), multiHot: true, split: true },
  { name: "HAWQ embeddings INT8", quant: hawq(8, null), multiHot: true },
  {
    name: "HAWQ INT4, embedding width 8 (vec4 copies)",
    quant: hawq(4, 4),
    multiHot: true,
    spec: VEC4,
  },
  {
    name: "HAWQ INT4, embedding width 8, split tables",
    quant: hawq(4, 4),
    multiHot: false,
    spec: VEC4,
    split: true,
    arenaBytes: 4096 * 32,
  },
  {
    name: "DQRM INT4, matrix scales, quantized biases",
    quant: { ...dqrm(4, 4, 2), mlpGranularity: "matrix", quantizeBias: true },
    multiHot: true,
  },
  {
    name: "DQRM INT8, channel scales, quantized biases",
    quant: { ...dqrm(8, 8, 3), quantizeBias: true },
    multiHot: false,
  },
];

async function pair(c: Case, maxBatch: number): Promise<[Engine, Engine]> {
  const quantization = c.quant;
  const spec = c.spec ?? ODD;
  const params = initParams(spec, 5);
  const outlier = (v: number, i: number) => (i % 7 === 3 ? v * (c.outlier ?? 1) : v);
  for (const l of [...params.bottom, ...params.top]) {
    l.weight.forEach((w, i) => l.weight[i] = outlier(w * (c.gain ?? 1), i));
  }
  for (const e of params.embeddings) e.forEach((v, i) => e[i] = outlier(v, i));
  const base = { spec, maxBatch, params, quantization };
  const cpu = await createCpuEngine({ ...base, threads: 1 });
  const extra = c.split ? { arenaBytes: c.arenaBytes ?? 60, arenasPerGroup: 2 } : {};
  const gpu = await createGpuEngine({ ...base, ...extra });
  return [cpu, gpu];
}

for (const c of CASES) {
  Deno.test({
    name: `GPU engine trains like the CPU engine, step by step (${c.name})`,
    ignore,
    sanitizeResources: false,
    fn: async () => {
      const batch = c.batch ?? 11;
      const spec = c.spec ?? ODD;
      const [cpu, gpu] = await pair(c, batch);
      try {
        for (let step = 0; step < 4; step++) {
          const chunk = randomChunk(spec, batch, batch, 200 + step, c.multiHot);
          const want = await cpu.traceStep(chunk, { learningRate: 0.1 });
          const got = await gpu.traceStep(chunk, { learningRate: 0.1 });
          assertClose(`step ${step} probabilities`, got.probabilities, want.probabilities, STEP);
          assertClose(`step ${step} loss`, [got.loss], [want.loss], STEP);
          assertParamsClose(`step ${step} gradients`, got.gradients, want.gradients, STEP);
          assertParamsClose(
            `step ${step} params`,
            await gpu.readParams(),
            await cpu.readParams(),
            STEP,
          );
          assertClose(
            `step ${step} scales`,
            await gpu.embeddingScales(),
            await cpu.embeddingScales(),
            STEP,
          );
        }
        const chunk = randomChunk(spec, batch, 5 * batch, 9, c.multiHot);
        const want = await cpu.trainChunk(chunk, { learningRate: 0.05 });
        const got = await gpu.trainChunk(chunk, { learningRate: 0.05 });
        assert.equal(got.iterations, 5);
        assertClose("chunk losses", got.loss, want.loss, CHUNK);
        assertParamsClose("after chunk", await gpu.readParams(), await cpu.readParams(), CHUNK);
        assertClose(
          "scales after chunk",
          await gpu.embeddingScales(),
          await cpu.embeddingScales(),
          CHUNK,
        );
        const test = randomChunk(spec, 5, 13, 8, c.multiHot);
        assertClose("predict", await gpu.predict(test), await cpu.predict(test), STEP);
      } finally {
        await cpu.dispose();
        await gpu.dispose();
      }
    },
  });
}

Deno.test({
  name: "GPU engine counts HAWQ's whole-table copies in memoryBytes",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const dq = await createGpuEngine({ spec: ODD, maxBatch: 4, quantization: dqrm(4, 4, 1) });
    const hq = await createGpuEngine({ spec: ODD, maxBatch: 4, quantization: hawq(4, 4) });
    try {
      const tableBytes = ODD.tableRows.reduce((a, r) => a + r * ODD.embeddingDim * 4, 0);
      assert.ok(
        hq.memoryBytes() - dq.memoryBytes() >= tableBytes,
        `expected HAWQ to hold at least ${tableBytes} more bytes than DQRM but found ` +
          `${hq.memoryBytes()} and ${dq.memoryBytes()}`,
      );
    } finally {
      await dq.dispose();
      await hq.dispose();
    }
  },
});

Deno.test({
  name: "GPU engine rejects DoReFa settings that neither engine defines",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    await assert.rejects(
      createGpuEngine({
        spec: ODD,
        maxBatch: 4,
        quantization: { ...pact(4, 4), gatheredRowsOnly: false },
      }),
      /gatheredRowsOnly: true/,
    );
    await assert.rejects(
      createGpuEngine({
        spec: ODD,
        maxBatch: 4,
        quantization: { ...pact(4, 4), quantizeBias: true },
      }),
      /quantizeBias: false/,
    );
  },
});
