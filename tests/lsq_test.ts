import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { compileKernels, instantiateKernels } from "../engine/cpu/wasm.ts";
import { roundHalfEven } from "../engine/quant.ts";
import { Rng } from "../engine/rng.ts";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { lsq } from "../suites/experiments.ts";

Deno.test("lsqRows() masks the gradient to the clip range and sums LSQ's step gradient", async () => {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
  const k = await instantiateKernels(await compileKernels(), memory);
  const f32 = new Float32Array(memory.buffer);
  const rows = 5, cols = 12, n = 7;
  const W = 1024, G = W + rows * cols * 4, S = G + rows * cols * 4, D = S + 64;
  const rng = new Rng(5);
  const w = Float32Array.from({ length: rows * cols }, () => rng.normal() * 0.3);
  const g = Float32Array.from({ length: rows * cols }, () => rng.normal());
  const steps = Float32Array.from({ length: rows }, () => 0.02 + rng.next() * 0.05);
  f32.set(w, W / 4);
  f32.set(g, G / 4);
  f32.set(steps, S / 4);
  k.lsqRows(W, G, cols, cols, 0, rows, S, D, n);
  for (let r = 0; r < rows; r++) {
    let ds = 0;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const v = Math.fround(w[i] / steps[r]);
      const inside = v >= -n - 1 && v <= n;
      ds += g[i] * (v < -n - 1 ? -n - 1 : v > n ? n : roundHalfEven(v) - v);
      assert.equal(f32[G / 4 + i], inside ? g[i] : 0, `mask at ${r},${c}`);
    }
    assert.ok(Math.abs(f32[D / 4 + r] - ds) <= 1e-5 * (1 + Math.abs(ds)), `row ${r}`);
  }
  k.lsqInitRows(W, cols, cols, 0, rows, S, n);
  for (let r = 0; r < rows; r++) {
    const mean = w.subarray(r * cols, (r + 1) * cols).reduce((a, b) => a + Math.abs(b), 0) / cols;
    assert.ok(Math.abs(f32[S / 4 + r] - (2 * mean) / Math.sqrt(n)) < 1e-6);
  }
});

Deno.test("LSQ trains its steps with the weights, identically on 1 and 2 threads", async () => {
  const spec = kaggleSpec(0.0005);
  const chunk = allocateOneHotChunk(spec, 32, 32 * 60, true);
  new SyntheticCriteo(spec, { seed: 3 }).fill(chunk, "train", 0);
  const runs: { loss: Float32Array; scales: Float32Array; first: Float32Array; params: unknown }[] =
    [];
  for (const threads of [1, 2]) {
    const engine = await createCpuEngine({
      spec,
      seed: 3,
      maxBatch: 32,
      threads,
      quantization: lsq(4, 4),
    });
    await engine.trainChunk({ ...chunk, samples: 32 }, { learningRate: 0.1 });
    const first = await engine.embeddingScales();
    const r = await engine.trainChunk(chunk, { learningRate: 0.1 });
    runs.push({
      loss: r.loss,
      scales: await engine.embeddingScales(),
      first,
      params: await engine.readParams(),
    });
    await engine.dispose();
  }
  assert.deepEqual(runs[1].loss, runs[0].loss);
  assert.deepEqual(runs[1].params, runs[0].params);
  assert.deepEqual(runs[1].scales, runs[0].scales);
  assert.ok(runs[0].first.every((s) => s > 0));
  assert.ok(runs[0].scales.some((s, t) => s !== runs[0].first[t]), "steps are learned");
  assert.ok(runs[0].loss.every(Number.isFinite));
});
