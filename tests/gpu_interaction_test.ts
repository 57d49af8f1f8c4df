/**
 * The interaction kernels staged in workgroup memory against the per-value kernels that read
 * global memory: R and dT equal bit for bit (the same sums in the same order), over shapes with
 * vector widths below, at and past a warp and rows of T padded past their width, and both
 * against a float64 reference within |err| <= 1e-5 sum |terms| + 1e-6. Needs a WebGPU adapter;
 * without one the tests are reported as ignored.
 */
import assert from "node:assert/strict";
import { findTestAdapter } from "./gpu_setup.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { interactionStages } from "../engine/gpu/kernels/interaction_forward.ts";
import { type InteractionMode, planInteraction } from "../engine/gpu/interaction_plan.ts";
import { interactionTiling } from "../engine/gpu/kernels/interaction_tiled.ts";
import { Rng } from "../engine/rng.ts";

const ignore = (await findTestAdapter()).adapter === null;

/** Runs one interaction kernel over `rows` samples; returns its output buffer as read. */
async function run(
  h: KernelHarness,
  mode: InteractionMode,
  shape: { f: number; d: number; ldt: number; ldr: number; rows: number },
  t: Float32Array,
  dr: Float32Array | null,
): Promise<Float32Array> {
  const { f, d, ldt, ldr, rows } = shape;
  const uniform = h.uniform([f, d, ldt, ldr]);
  const outFloats = dr ? rows * ldt : rows * ldr;
  const out = h.storage(new Float32Array(outFloats).fill(123));
  const plan = planInteraction(f, d, ldr, mode);
  const kernel = dr
    ? h.bind(plan.backward, [uniform, h.storage(t), h.storage(dr), out])
    : h.bind(plan.forward, [uniform, h.storage(t), out]);
  const encoder = h.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  h.useIteration(pass, 0);
  const [x, samples] = dr
    ? [plan.backwardX, plan.backwardSamples]
    : [plan.forwardX, plan.forwardSamples];
  h.dispatch(pass, kernel, x, Math.ceil(rows / samples));
  pass.end();
  h.device.queue.submit([encoder.finish()]);
  return await h.read(out, outFloats);
}

Deno.test({
  name: "interaction kernels: tiled and staged equal the global-memory ones",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    const rng = new Rng(41, 2);
    try {
      // [F, d, floats of R's row past its width rounded up to 4] (the pad must keep its value).
      const shapes = [
        [27, 16, 0],
        [4, 3, 0],
        [27, 64, 0],
        [9, 33, 0],
        [13, 8, 0],
        [2, 4, 0],
        [40, 12, 0],
        [60, 64, 0],
        [27, 16, 8],
        [5, 8, 4],
      ];
      for (const [f, d, pad] of shapes) {
        const rows = 37;
        const pairs = (f * (f - 1)) / 2;
        const ldt = f * d, ldr = Math.ceil((d + pairs) / 4) * 4 + pad;
        const shape = { f, d, ldt, ldr, rows };
        h.setIterations([{ s0: 0, rows }]);
        const t = Float32Array.from({ length: rows * ldt }, () => rng.next() * 2 - 1);
        // Exact zeros and negative zeros, as ReLU leaves them (the mask, and sums of zeros).
        for (let i = 0; i < t.length; i += 7) t[i] = i % 2 ? 0 : -0;
        const dr = Float32Array.from({ length: rows * ldr }, () => rng.next() * 2 - 1);
        const what = `f ${f}, d ${d}, R pad ${pad}`;
        const modes: InteractionMode[] = [];
        if (interactionStages(f, d)) modes.push("staged");
        if (interactionTiling(f, d, ldr)) modes.push("tiled");
        assert.equal(modes.includes("tiled"), d % 4 === 0, `${what}: tiled where d % 4 = 0`);
        const r = await run(h, "global", shape, t, null);
        const dt = await run(h, "global", shape, t, dr);
        for (const mode of modes) {
          assert.deepEqual(await run(h, mode, shape, t, null), r, `${what}: ${mode} R`);
          assert.deepEqual(await run(h, mode, shape, t, dr), dt, `${what}: ${mode} dT`);
        }
        for (let s = 0; s < rows; s++) {
          const T = (v: number, q: number) => t[s * ldt + v * d + q];
          for (let q = 0; q < d; q++) assert.equal(r[s * ldr + q], T(0, q), `${what}: R copy`);
          let p = 0;
          for (let i = 1; i < f; i++) {
            for (let j = 0; j < i; j++, p++) {
              let want = 0, abs = 0;
              for (let q = 0; q < d; q++) {
                (want += T(i, q) * T(j, q)), (abs += Math.abs(T(i, q) * T(j, q)));
              }
              const got = r[s * ldr + d + p];
              assert.ok(Math.abs(got - want) <= 1e-5 * abs + 1e-6, `${what}: R[${s}, ${i}.${j}]`);
            }
          }
          for (let v = 0; v < f; v++) {
            for (let q = 0; q < d; q++) {
              let want = v === 0 ? dr[s * ldr + q] : 0, abs = Math.abs(want);
              for (let u = 0; u < f; u++) {
                if (u === v) continue;
                const i = Math.max(u, v), j = Math.min(u, v);
                const term = dr[s * ldr + d + (i * (i - 1)) / 2 + j] * T(u, q);
                want += term;
                abs += Math.abs(term);
              }
              if (v === 0 && !(T(0, q) > 0)) want = 0;
              const got = dt[s * ldt + v * d + q];
              assert.ok(Math.abs(got - want) <= 1e-5 * abs + 1e-6, `${what}: dT[${s}, ${v}, ${q}]`);
            }
          }
        }
      }
      assert.equal(interactionStages(60, 64), null, "60 vectors of 64 exceed 16 KiB");
    } finally {
      h.destroy();
    }
  },
});
