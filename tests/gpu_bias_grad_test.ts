/**
 * The bias gradient's column-sum kernel (one dispatch, or K splits and the split-K reduction)
 * against a float64 reference, |err| <= 1e-5 sum |dY| + 1e-6, over output counts and batch rows
 * that fill no workgroup evenly, batch rows taken from the iteration block (as the engine binds
 * it) and C inside a larger buffer (nothing else written); the same column sums folded into a
 * split weight gradient's reduction, bit for bit the kernel's own and with the weight gradient
 * unchanged; and the plans it gets. Needs a WebGPU adapter; without one the test is reported as
 * ignored.
 */
import assert from "node:assert/strict";
import { findTestAdapter } from "./gpu_setup.ts";
import { type GemmFields, KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { biasGradInReduce, planBiasGrad } from "../engine/gpu/gemm_plan.ts";
import { GEMM_K_ROWS } from "../engine/gpu/kernels/gemm.ts";
import { Rng } from "../engine/rng.ts";

const ignore = (await findTestAdapter()).adapter === null;

Deno.test("bias gradient plans: small batches keep the small-product kernel, splits per 2048 rows", () => {
  assert.deepEqual(planBiasGrad(512, 128), { tile: "naive16", splits: 1 });
  assert.deepEqual(planBiasGrad(512, 2048), { tile: "bias_grad", splits: 1 });
  assert.deepEqual(planBiasGrad(256, 16384), { tile: "bias_grad", splits: 8 });
  // Folded into the weight gradient's reduction only where the column sums are unsplit.
  assert.equal(biasGradInReduce(512, 2048), true);
  assert.equal(biasGradInReduce(512, 128), false);
  assert.equal(biasGradInReduce(256, 16384), false);
});

Deno.test({
  name: "bias gradient column sums match a float64 reference",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    const rng = new Rng(53, 4);
    try {
      for (const [m, rows, splits] of [[1, 1, 1], [37, 300, 1], [70, 2049, 1], [17, 1000, 3]]) {
        const ldy = m + 3, cBase = 5;
        h.setIterations([{ s0: 0, rows }]);
        const dy = Float32Array.from({ length: rows * ldy + 4 }, () => rng.next() * 2 - 1);
        // A = dYᵀ: element (j, b) at j + b ldy.
        const fields: GemmFields = {
          m,
          n: 1,
          k: 0,
          flags: GEMM_K_ROWS,
          aRow: 1,
          aCol: ldy,
          bRow: 1,
          bCol: 0,
          cRow: 1,
          cBase,
        };
        const cFloats = cBase + m + 4;
        const c = h.storage(new Float32Array(cFloats).fill(123));
        const ones = h.storage(new Float32Array(rows + 4).fill(1));
        const bound = h.bindGemm(
          { tile: "bias_grad", splits },
          fields,
          [h.storage(dy), ones, c, h.storage(4), h.storage(4)],
          splits > 1 ? h.storage(splits * m) : undefined,
          m,
        );
        const encoder = h.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        h.useIteration(pass, 0);
        bound.record(pass, m, 1);
        pass.end();
        h.device.queue.submit([encoder.finish()]);
        const got = await h.read(c, cFloats);
        const what = JSON.stringify({ m, rows, splits });
        for (let j = 0; j < m; j++) {
          let want = 0, abs = 0;
          for (let b = 0; b < rows; b++) {
            (want += dy[j + b * ldy]), (abs += Math.abs(dy[j + b * ldy]));
          }
          assert.ok(
            Math.abs(got[cBase + j] - want) <= 1e-5 * abs + 1e-6,
            `${what}: dB[${j}] is ${got[cBase + j]}, expected ${want}`,
          );
          got[cBase + j] = 123;
        }
        assert.equal(got.findIndex((v) => v !== 123), -1, `${what}: wrote outside dB`);
      }
    } finally {
      h.destroy();
    }
  },
});

Deno.test({
  name: "bias gradient folded into the weight gradient's split-K reduction: the same bits",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    const rng = new Rng(59, 4);
    try {
      for (const [m, n, rows, splits] of [[37, 13, 300, 3], [70, 9, 2049, 16], [1, 6, 17, 2]]) {
        const ldy = m + 3, ldx = n + 1;
        h.setIterations([{ s0: 0, rows }]);
        const dy = h.storage(Float32Array.from({ length: rows * ldy + 4 }, () => rng.next() - 0.5));
        const x = h.storage(Float32Array.from({ length: rows * ldx + 4 }, () => rng.next() - 0.5));
        // dW = dYᵀ X (m x n) at C's start, dB (m) at biasBase, as the engine lays out a layer.
        const biasBase = m * n + 2;
        const weightGrad: GemmFields = {
          m,
          n,
          k: 0,
          flags: GEMM_K_ROWS,
          aRow: 1,
          aCol: ldy,
          bRow: ldx,
          bCol: 1,
          cRow: n,
          biasBase,
        };
        const columnSum: GemmFields = {
          m,
          n: 1,
          k: 0,
          flags: GEMM_K_ROWS,
          aRow: 1,
          aCol: ldy,
          bRow: 1,
          bCol: 0,
          cRow: 1,
          cBase: biasBase,
        };
        const cFloats = biasBase + m + 3;
        const run = async (folded: boolean) => {
          const c = h.storage(new Float32Array(cFloats).fill(123));
          const plan = { tile: "32x32", splits };
          const scratch = h.storage(splits * m * n);
          const products = [
            h.bindGemm(
              plan,
              weightGrad,
              [dy, x, c, h.storage(4), h.storage(4)],
              scratch,
              m * n,
              folded,
            ),
          ];
          if (!folded) {
            const ones = h.storage(new Float32Array(rows + 4).fill(1));
            products.push(h.bindGemm({ tile: "bias_grad", splits: 1 }, columnSum, [
              dy,
              ones,
              c,
              h.storage(4),
              h.storage(4),
            ]));
          }
          const encoder = h.device.createCommandEncoder();
          const pass = encoder.beginComputePass();
          h.useIteration(pass, 0);
          products[0].record(pass, m, n);
          products[1]?.record(pass, m, 1);
          pass.end();
          h.device.queue.submit([encoder.finish()]);
          return new Uint32Array((await h.read(c, cFloats)).buffer);
        };
        const want = await run(false), got = await run(true);
        const what = JSON.stringify({ m, n, rows, splits });
        const at = got.findIndex((v, i) => v !== want[i]);
        assert.equal(at, -1, `${what}: C[${at}] bits ${got[at]}, expected ${want[at]}`);
        assert.notEqual(want[biasBase], new Uint32Array(new Float32Array([123]).buffer)[0]);
      }
    } finally {
      h.destroy();
    }
  },
});
