/**
 * DQRM's fused MLP update (`sgdQuantizeRows`, run in the backward pass where legal) gives the
 * same bits as the three kernels it replaces run after the whole backward
 * (`CpuEngineOptions.fusedMlpUpdate: false`): the kernel against them, then short training runs
 * of every method, at 1 and 2 threads, on both kernel paths, with and without an exchange.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { BLAS_BLOCK, BLAS_ROW_TILE } from "../engine/cpu/blas.ts";
import { blasAvailable } from "../engine/cpu/blas_library.ts";
import { compileKernels, instantiateKernels } from "../engine/cpu/wasm.ts";
import { levels, type QuantConfig, scaleOf } from "../engine/quant.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { Rng } from "../engine/rng.ts";
import { SimulatedDataParallel } from "../comm/simulated.ts";
import { dqrm, hawq, lsq, pact } from "../suites/experiments.ts";
import { randomChunk, testSpec } from "./test_models.ts";

const BLAS = blasAvailable();

/** Equal floats: the same bits, or both NaN. */
function same(a: number, b: number): boolean {
  return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
}

Deno.test("sgdQuantizeRows equals sgd, rowMaxAbs, scaleOf and fakeQuantizeRows bit for bit", async () => {
  const memory = new WebAssembly.Memory({ initial: 8, maximum: 8, shared: true });
  const k = await instantiateKernels(await compileKernels(), memory);
  const f32 = new Float32Array(memory.buffer);
  const rng = new Rng(21);
  const special = [0, -0, Infinity, -Infinity, 1e30, -1e-30, 1e-45, NaN];
  // Two copies of W, G, Q and the scales: the fused kernel's (a) and the three kernels' (b).
  const W = [0, 65536], G = 131072, Q = [196608, 262144], S = [327680, 331776];
  for (let trial = 0; trial < 300; trial++) {
    const bits = [2, 4, 8, 16][trial % 4], n = levels(bits);
    const ld = 4 * (1 + (trial % 41)), rows = 1 + (trial % 9);
    const r0 = trial % 3 === 0 ? 0 : Math.min(rows - 1, 1 + (trial % 2)), r1 = rows;
    // Rows of ordinary values, rows whose max |w| is below 1e-8 (the scale's floor), exact
    // multiples of a scale (ties after the update), and rare special values.
    const kind = trial % 5;
    const lr = [0.1, 0.05, 1, 0, 3e-3][trial % 5];
    for (let i = 0; i < rows * ld; i++) {
      const u = rng.next();
      const w = kind === 1
        ? (rng.next() - 0.5) * 1e-8
        : kind === 2
        ? Math.round((rng.next() - 0.5) * 16) * 0.125
        : u < 0.01 && kind === 4
        ? special[Math.floor(rng.next() * (special.length - 1))]
        : (rng.next() - 0.5) * 2;
      const g = kind === 2 ? 0 : kind === 1 ? (rng.next() - 0.5) * 1e-7 : rng.next() - 0.5;
      f32[W[0] / 4 + i] = f32[W[1] / 4 + i] = w;
      f32[G / 4 + i] = g;
    }
    f32.fill(7, Q[0] / 4, Q[0] / 4 + rows * ld);
    f32.fill(7, Q[1] / 4, Q[1] / 4 + rows * ld);
    k.sgdQuantizeRows(W[0], G, Q[0], ld, r0, r1, lr, S[0], n);
    k.sgd(W[1], G, r0 * ld, r1 * ld, lr);
    k.rowMaxAbs(W[1], ld, ld, r0, r1, S[1]);
    for (let r = r0; r < r1; r++) f32[S[1] / 4 + r] = scaleOf(f32[S[1] / 4 + r], bits);
    k.fakeQuantizeRows(W[1], Q[1], ld, ld, r0, r1, S[1], 0, n);
    const at = `trial ${trial} (bits ${bits}, ld ${ld}, rows ${r0}-${r1}, lr ${lr})`;
    for (let i = 0; i < rows * ld; i++) {
      assert.ok(same(f32[W[0] / 4 + i], f32[W[1] / 4 + i]), `${at}: w[${i}]`);
      assert.ok(same(f32[Q[0] / 4 + i], f32[Q[1] / 4 + i]), `${at}: q[${i}]`);
    }
    for (let r = r0; r < r1; r++) {
      assert.ok(same(f32[S[0] / 4 + r], f32[S[1] / 4 + r]), `${at}: scale ${r}`);
    }
  }
});

/** Layers that are no multiple of 4 or of a BLAS block, so that shares and padding are uneven. */
const SPEC: ModelSpec = testSpec([17, 5, 40, 9], 7, [13, BLAS_BLOCK + 9, 21, 7], [
  BLAS_BLOCK + 5,
  11,
  1,
]);

const METHODS: [string, QuantConfig | null][] = [
  ["fp32", null],
  ["dqrm", dqrm(4, 4, 200)],
  ["dqrm-p1", dqrm(4, 8, 1)],
  ["dqrm-bias", { ...dqrm(8, 4, 2), quantizeBias: true }],
  ["hawq", hawq(4, 4)],
  ["lsq", lsq(4, 4)],
  ["pact", pact(4, 4)],
];

/** Everything a run leaves that the update touches: losses, parameters, scales, predictions. */
interface RunBits {
  loss: Float32Array;
  params: unknown;
  scales: Float32Array;
  probabilities: Float32Array;
}

async function train(
  quantization: QuantConfig | null,
  threads: number,
  kernels: "wasm" | "blas",
  batch: number,
  fusedMlpUpdate: boolean,
): Promise<RunBits> {
  const chunk = randomChunk(SPEC, batch, batch * 3, 31, true);
  const test = randomChunk(SPEC, batch, batch, 32, true);
  const engine = await createCpuEngine({
    spec: SPEC,
    seed: 5,
    maxBatch: batch,
    threads,
    kernels,
    quantization,
    fusedMlpUpdate,
  });
  try {
    // Two runs: the second starts from weights the first run's update quantized.
    const a = await engine.trainChunk(chunk, { learningRate: 0.1 });
    const b = await engine.trainChunk(chunk, { learningRate: 0.05 });
    const loss = new Float32Array([...a.loss, ...b.loss]);
    return {
      loss,
      params: await engine.readParams(),
      scales: await engine.embeddingScales(),
      probabilities: await engine.predict(test),
    };
  } finally {
    await engine.dispose();
  }
}

function assertSameBits(got: RunBits, want: RunBits, what: string): void {
  assert.ok(got.loss.every(Number.isFinite), `${what}: finite losses`);
  assert.deepEqual(got.loss, want.loss, `${what}: losses`);
  assert.deepEqual(got.params, want.params, `${what}: parameters`);
  assert.deepEqual(got.scales, want.scales, `${what}: table scales`);
  assert.deepEqual(got.probabilities, want.probabilities, `${what}: predictions`);
}

for (const kernels of ["wasm", "blas"] as const) {
  // On the BLAS path, a batch large enough for its row-tiled products too.
  for (const batch of kernels === "blas" ? [24, 2 * BLAS_ROW_TILE + 5] : [24]) {
    Deno.test({
      name:
        `the fused MLP update trains the same bits (${kernels}, batch ${batch}, 1 and 2 threads)${
          kernels === "blas" && !BLAS ? " (skipped: no BLAS library could be opened)" : ""
        }`,
      ignore: kernels === "blas" && !BLAS,
      fn: async () => {
        for (const [name, q] of METHODS) {
          for (const threads of [1, 2]) {
            const want = await train(q, threads, kernels, batch, false);
            const got = await train(q, threads, kernels, batch, true);
            assertSameBits(got, want, `${name}, ${threads} threads`);
          }
        }
      },
    });
  }
}

Deno.test("the fused MLP update trains the same bits through an exchange and a trace", async () => {
  const chunk = randomChunk(SPEC, 12, 12 * 4, 33, true);
  const results: [Float32Array, unknown, unknown][] = [];
  for (const fusedMlpUpdate of [false, true]) {
    const engine = await createCpuEngine({
      spec: SPEC,
      seed: 6,
      maxBatch: 12,
      threads: 1,
      quantization: dqrm(4, 4, 1),
      fusedMlpUpdate,
    });
    try {
      // The exchange needs every gradient first: the update then runs after it.
      const r = await new SimulatedDataParallel(engine, 2).trainChunk(chunk, {
        learningRate: 0.1,
      });
      const trace = await engine.traceStep(randomChunk(SPEC, 12, 12, 34, true), {
        learningRate: 0.1,
      });
      results.push([r.loss, await engine.readParams(), trace]);
    } finally {
      await engine.dispose();
    }
  }
  assert.deepEqual(results[1], results[0]);
});
