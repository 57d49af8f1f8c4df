/**
 * The global MLP gradient of GPU data parallelism written on the GPU from the message sums
 * (`GpuMlpGradient`, `kernels/mlp_grad_dequant.ts`) against `writeGlobalMlpGradient` on the
 * host, bit for bit over the whole gradient buffer (the layout's gaps stay zero): int32 sums of
 * INT8 and INT16 levels with per-tensor scales, float32 sums, with 1, 2, 4 and 8 workers; and
 * which worker counts and bit widths it takes (where float32 gives the host's float64 result
 * rounded once). Needs a WebGPU adapter; without one the GPU test is reported as ignored.
 */
import assert from "node:assert/strict";
import { findTestAdapter } from "./gpu_setup.ts";
import { writeGlobalMlpGradient } from "../comm/compression.ts";
import { GpuMlpGradient } from "../engine/gpu/grad_apply.ts";
import { gpuLayoutAccess } from "../engine/gpu/grad_exchange.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { planGpuLayout } from "../engine/gpu/layout.ts";
import { Rng } from "../engine/rng.ts";
import { tinySpec } from "./test_models.ts";

const ignore = (await findTestAdapter()).adapter === null;

Deno.test("the GPU writes the MLP gradient where float32 gives the host's bits", () => {
  for (const w of [1, 2, 4, 8, 1024]) assert.equal(GpuMlpGradient.supports(w, 8), true, `${w}`);
  for (const w of [3, 6, 0, 2.5]) assert.equal(GpuMlpGradient.supports(w, 8), false, `${w}`);
  assert.equal(GpuMlpGradient.supports(2 ** 17, 8), true); // 2^17 x 2^7 = 2^24
  assert.equal(GpuMlpGradient.supports(2 ** 18, 8), false);
  assert.equal(GpuMlpGradient.supports(512, 16), true);
  assert.equal(GpuMlpGradient.supports(1024, 16), false);
  assert.equal(GpuMlpGradient.supports(4, null), true);
});

Deno.test({
  name: "the GPU's global MLP gradient equals the host's bit for bit",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    const binder = {
      bind: h.bind.bind(h),
      uniform: (_: string, words: ArrayLike<number>, floats?: ReadonlySet<number>) =>
        h.uniform(Array.from(words), floats),
    };
    const spec = tinySpec();
    const layout = planGpuLayout(spec);
    const layers = [...layout.bottom, ...layout.top];
    const values = layers.reduce((n, l) => n + l.outputs * (l.inputs + 1), 0);
    const tables = spec.tableRows.length;
    const rng = new Rng(61, 2);
    h.setIterations([{ s0: 0, rows: 1 }]);
    try {
      const cases: [number, number | null, number | null][] = [
        [1, 8, 8],
        [2, 8, 8],
        [4, 8, null],
        [8, 16, 4],
        [2, null, null],
        [4, null, 8],
      ];
      for (const [workers, mlpBits, embeddingBits] of cases) {
        const what = JSON.stringify({ workers, mlpBits, embeddingBits });
        const scaleBase = embeddingBits ? tables : 0;
        const scales = Float32Array.from(
          { length: scaleBase + 2 * layers.length },
          () => Math.exp(rng.next() * 20 - 16),
        );
        const most = mlpBits ? workers * 2 ** (mlpBits - 1) : 0;
        const sums = mlpBits
          ? Int32Array.from({ length: values }, () => Math.round((rng.next() * 2 - 1) * most))
          : Float32Array.from({ length: values }, () => (rng.next() * 2 - 1) * 1e-2);
        if (!mlpBits) sums[3] = -0;
        const host = new Float32Array(layout.floats);
        writeGlobalMlpGradient(
          gpuLayoutAccess(spec, layout, host),
          { spec, config: { mlpBits, embeddingBits } as never },
          workers,
          scales,
          sums,
        );
        const grad = h.storage(layout.floats);
        const gpu = new GpuMlpGradient({
          device: h.device,
          binder,
          layout,
          mlpGrad: grad,
          workers,
          mlpBits,
          scaleBase,
        });
        gpu.upload(sums, scales);
        const encoder = h.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        h.useIteration(pass, 0);
        gpu.record(pass);
        pass.end();
        h.device.queue.submit([encoder.finish()]);
        const got = await h.read(grad, layout.floats);
        gpu.destroy();
        assert.deepEqual(
          new Uint32Array(got.buffer, got.byteOffset, got.length),
          new Uint32Array(host.buffer),
          what,
        );
        assert.throws(() => gpu.upload(sums.subarray(1), scales), /Expected \d+ .* MLP sums/);
      }
      assert.throws(
        () =>
          new GpuMlpGradient({
            device: h.device,
            binder,
            layout,
            mlpGrad: h.storage(4),
            workers: 3,
            mlpBits: 8,
            scaleBase: 0,
          }),
        /Expected a power of two for the workers/,
      );
    } finally {
      h.destroy();
    }
  },
});
