/**
 * The small-product GEMM's deeper K steps and its fused bias gradient keep every sum as the
 * 16-k-a-step kernel adds it: outputs equal bit for bit over awkward shapes (K below, at and past
 * a step, not a multiple of it), both operand layouts and batch-row flags; with
 * `GEMM_BIAS_GRAD`, the weight part equals the plain product and the bias column equals the
 * separate product with a column of ones, and nothing else in C is written. Needs a WebGPU
 * adapter; without one the tests are reported as ignored.
 */
import assert from "node:assert/strict";
import { findTestAdapter } from "./gpu_setup.ts";
import { type GemmFields, KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { GEMM_BIAS_GRAD, GEMM_FIELDS, GEMM_K_ROWS } from "../engine/gpu/kernels/gemm.ts";
import { gemmNaiveKernel } from "../engine/gpu/kernels/gemm_naive.ts";
import type { KernelSource } from "../engine/gpu/pipelines.ts";
import { Rng } from "../engine/rng.ts";

const ignore = (await findTestAdapter()).adapter === null;

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [37, 53, 29],
  [16, 16, 64],
  [20, 33, 65],
  [130, 17, 300],
  [3, 64, 128],
];

/** Runs `kernel` over the product and reads C (`cFloats` floats, 123 where nothing was written). */
async function run(
  h: KernelHarness,
  kernel: KernelSource,
  fields: GemmFields,
  a: Float32Array,
  b: Float32Array,
  cFloats: number,
  grid: [number, number],
): Promise<Float32Array> {
  const words = GEMM_FIELDS.map((f) => fields[f] ?? 0);
  const c = h.storage(new Float32Array(cFloats).fill(123));
  const bound = h.bind(kernel, [
    h.uniform(words),
    h.storage(a),
    h.storage(b),
    c,
    h.storage(4),
    h.storage(4),
  ]);
  const encoder = h.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  h.useIteration(pass, 0);
  h.dispatch(pass, bound, ...grid);
  pass.end();
  h.device.queue.submit([encoder.finish()]);
  return await h.read(c, cFloats);
}

Deno.test({
  name: "GEMM naive16: 64 k a step and the fused bias gradient sum as 16 k a step does",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    const rng = new Rng(29, 1);
    const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
    try {
      for (const [m, n, k] of SHAPES) {
        for (const aT of [false, true]) {
          for (const kRows of [false, true]) {
            h.setIterations([{ s0: 0, rows: k }]);
            const what = JSON.stringify({ m, n, k, aT, kRows });
            // A (m x k), plain or transposed (dYᵀ as dW reads it); B (k x n), row-major (X).
            const a = rand(m * k + 5), b = rand(k * n + 3);
            const cRow = n + 1, cBase = 2, biasBase = cBase + m * cRow + 3;
            const fields: GemmFields = {
              m,
              n,
              k: kRows ? 0 : k,
              flags: kRows ? GEMM_K_ROWS : 0,
              aRow: aT ? 1 : k,
              aCol: aT ? m : 1,
              bRow: n,
              bCol: 1,
              cRow,
              cBase,
            };
            const cFloats = biasBase + m + 4;
            const grid: [number, number] = [Math.ceil(n / 16), Math.ceil(m / 16)];
            const shallow = await run(h, gemmNaiveKernel(16, false), fields, a, b, cFloats, grid);
            const deep = await run(h, gemmNaiveKernel(), fields, a, b, cFloats, grid);
            assert.deepEqual(deep, shallow, `${what}: 64 k a step differs from 16`);
            // The separate bias product: dYᵀ times a column of ones, into C at biasBase.
            const ones = new Float32Array(k + 4).fill(1);
            const bias = await run(
              h,
              gemmNaiveKernel(16, false),
              {
                ...fields,
                n: 1,
                bRow: 1,
                bCol: 0,
                cRow: 1,
                cBase: biasBase,
              },
              a,
              ones,
              cFloats,
              [1, Math.ceil(m / 16)],
            );
            const fused = await run(
              h,
              gemmNaiveKernel(),
              {
                ...fields,
                flags: fields.flags! | GEMM_BIAS_GRAD,
                biasBase,
              },
              a,
              b,
              cFloats,
              [Math.ceil((n + 1) / 16), Math.ceil(m / 16)],
            );
            const want = shallow.slice();
            want.set(bias.subarray(biasBase, biasBase + m), biasBase);
            assert.deepEqual(fused, want, `${what}: fused bias gradient`);
            assert.ok(want.subarray(biasBase, biasBase + m).every((v) => v !== 123));
          }
        }
      }
    } finally {
      h.destroy();
    }
  },
});
