import assert from "node:assert/strict";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { compileKernels, instantiateKernels } from "../engine/cpu/wasm.ts";
import { dorefa } from "../engine/quant.ts";
import { Rng } from "../engine/rng.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { pact } from "../suites/experiments.ts";

Deno.test("dorefa() maps a tensor onto 2^bits evenly spaced levels in [-1, 1]", () => {
  const rng = new Rng(8);
  const w = Array.from({ length: 2000 }, () => rng.normal() * 0.2);
  const m = Math.tanh(Math.max(...w.map(Math.abs)));
  const values = new Set(w.map((x) => dorefa(x, m, 4)));
  assert.ok(values.size <= 16);
  for (const v of values) {
    assert.ok(v >= -1 && v <= 1);
    assert.ok(Math.abs(((v + 1) * 15) / 2 - Math.round(((v + 1) * 15) / 2)) < 1e-5);
  }
  const top = w.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a));
  assert.equal(Math.abs(dorefa(top, m, 4)), 1, "the largest magnitude maps to +-1");
});

Deno.test("dorefaRows() agrees with dorefa() to within float32 rounding of tanh", async () => {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
  const k = await instantiateKernels(await compileKernels(), memory);
  const f32 = new Float32Array(memory.buffer);
  const rng = new Rng(9);
  const rows = 6, cols = 10, ld = 12;
  const w = Float32Array.from(
    { length: rows * ld },
    (_, i) => (i % ld < cols ? rng.normal() * 0.3 : 0),
  );
  f32.set(w, 256);
  const m = Math.tanh(Math.max(...w.map(Math.abs)));
  k.dorefaRows(1024, 1024 + rows * ld * 4, ld, cols, 0, rows, m, 15);
  let mismatches = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < ld; c++) {
      const got = f32[256 + rows * ld + r * ld + c];
      if (c >= cols) assert.equal(got, 0, "padding stays zero");
      else if (got !== dorefa(w[r * ld + c], m, 4)) mismatches++;
    }
  }
  assert.ok(mismatches <= 1, `${mismatches} values differ`);
});

Deno.test("the PACT (DoReFa) baseline trains with finite losses on 2 threads", async () => {
  const spec = kaggleSpec(0.0005);
  const chunk = allocateOneHotChunk(spec, 32, 32 * 40, true);
  new SyntheticCriteo(spec, { seed: 3 }).fill(chunk, "train", 0);
  const engine = await createCpuEngine({
    spec,
    seed: 3,
    maxBatch: 32,
    threads: 2,
    quantization: pact(4, 4),
  });
  const r = await engine.trainChunk(chunk, { learningRate: 0.1 });
  await engine.dispose();
  assert.ok(r.loss.every(Number.isFinite));
  assert.ok(r.phases.scale.every((v) => v > 0));
});

Deno.test("pactForward()/pactBackward() clip, quantize and collect the clip's gradient", async () => {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
  const k = await instantiateKernels(await compileKernels(), memory);
  const f32 = new Float32Array(memory.buffer);
  const rng = new Rng(12);
  const rows = 3, ld = 8, a = 1.5, levels = 15;
  const X = 1024, P = X + rows * ld * 4, G = P + rows * ld * 4;
  const x = Float32Array.from({ length: rows * ld }, () => Math.max(0, rng.normal() * 1.2));
  const g = Float32Array.from({ length: rows * ld }, () => rng.normal());
  f32.set(x, X / 4);
  f32.set(g, G / 4);
  k.pactForward(X, P, ld, rows, 0, ld, a, levels);
  let want = 0;
  for (let i = 0; i < rows * ld; i++) {
    const q = Math.fround(
      Math.fround(Math.round(Math.fround(Math.min(x[i], a) * Math.fround(levels / a)))) *
        Math.fround(a / levels),
    );
    assert.ok(Math.abs(f32[X / 4 + i] - q) < 1e-6, `forward ${i}`);
    assert.equal(f32[P / 4 + i], x[i]);
    if (x[i] >= a) want += g[i];
  }
  const sum = k.pactBackward(G, P, ld, rows, 0, ld, a);
  assert.ok(Math.abs(sum - want) < 1e-5);
  for (let i = 0; i < rows * ld; i++) assert.equal(f32[G / 4 + i], x[i] >= a ? 0 : g[i]);
});

Deno.test("PACT's activation clip is deterministic across threads and changes training", async () => {
  const spec = kaggleSpec(0.0005);
  const chunk = allocateOneHotChunk(spec, 32, 32 * 30, true);
  new SyntheticCriteo(spec, { seed: 5 }).fill(chunk, "train", 0);
  const losses: Float32Array[] = [];
  for (const [threads, clip] of [[1, true], [2, true], [2, false]] as const) {
    const engine = await createCpuEngine({
      spec,
      seed: 5,
      maxBatch: 32,
      threads,
      quantization: { ...pact(4, 4), activationClip: clip },
    });
    losses.push((await engine.trainChunk(chunk, { learningRate: 0.1 })).loss);
    await engine.dispose();
  }
  assert.deepEqual(losses[1], losses[0]);
  assert.notDeepEqual(losses[2], losses[0]);
  assert.ok(losses[0].every(Number.isFinite));
});
