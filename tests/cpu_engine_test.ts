import assert from "node:assert/strict";
import type { BatchChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { initParams, type Params } from "../engine/params.ts";
import { referenceStep } from "./reference_dlrm.ts";
import { ODD, randomChunk } from "./test_models.ts";

function assertClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 2e-4) {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1e-6 + Math.abs(want[i]) + 1e-2));
  }
  assert.equal(got.length, want.length, `${name}: length`);
  assert.ok(worst <= tol, `${name}: relative error ${worst} > ${tol}`);
}

function assertParamsClose(prefix: string, got: Params, want: Params) {
  want.embeddings.forEach((w, t) => assertClose(`${prefix} table ${t}`, got.embeddings[t], w));
  for (const part of ["bottom", "top"] as const) {
    want[part].forEach((w, l) => {
      assertClose(`${prefix} ${part}[${l}].weight`, got[part][l].weight, w.weight);
      assertClose(`${prefix} ${part}[${l}].bias`, got[part][l].bias, w.bias);
    });
  }
}

for (const multiHot of [false, true]) {
  for (const batch of [1, 6, 13]) {
    Deno.test(`CPU engine matches a float64 reference on odd widths (batch ${batch}, ${multiHot ? "multi" : "one"}-hot)`, async () => {
      const params = initParams(ODD, 3);
      const chunk = randomChunk(ODD, batch, batch, batch, multiHot);
      const want = referenceStep(ODD, params, chunk);
      const engine = await createCpuEngine({ spec: ODD, params, maxBatch: 16, threads: 2 });
      try {
        const got = await engine.traceStep(chunk, { learningRate: 0.1 });
        assertClose("probabilities", got.probabilities, want.probabilities);
        assertClose("loss", [got.loss], [want.loss]);
        assertParamsClose("gradients", got.gradients, want.gradients);
      } finally {
        await engine.dispose();
      }
    });
  }
}

Deno.test("CPU engine results are bit-identical for 1, 2 and 3 threads", async () => {
  const chunk = randomChunk(ODD, 8, 8 * 25, 5);
  const finals: Params[] = [];
  const losses: Float32Array[] = [];
  for (const threads of [1, 2, 3]) {
    const engine = await createCpuEngine({ spec: ODD, seed: 9, maxBatch: 8, threads });
    const r = await engine.trainChunk(chunk, { learningRate: 0.05 });
    losses.push(r.loss);
    finals.push(await engine.readParams());
    await engine.dispose();
  }
  for (let i = 1; i < finals.length; i++) {
    assert.deepEqual(losses[i], losses[0]);
    assert.deepEqual(finals[i], finals[0]);
  }
});

Deno.test("trainChunk() learns: the loss falls on a learnable signal", async () => {
  const spec = ODD;
  const chunk = randomChunk(spec, 16, 16 * 400, 8);
  // Labels from table 0's id parity: learnable from embeddings alone.
  for (let s = 0; s < chunk.samples; s++) chunk.labels[s] = chunk.indices[0][s] % 2;
  const engine = await createCpuEngine({ spec, seed: 1, maxBatch: 16, threads: 2 });
  const r = await engine.trainChunk(chunk, { learningRate: 0.5 });
  await engine.dispose();
  const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(mean(r.loss.subarray(350)) < 0.6 * mean(r.loss.subarray(0, 50)));
  assert.equal(r.iterations, 400);
  assert.ok(r.phases.forward.every((v) => v > 0));
});

Deno.test("predict() scores every sample, partial last batch included, without training", async () => {
  const params = initParams(ODD, 4);
  const chunk = randomChunk(ODD, 4, 10, 2);
  const engine = await createCpuEngine({ spec: ODD, params, maxBatch: 4, threads: 2 });
  const p = await engine.predict(chunk);
  assert.deepEqual(await engine.readParams(), params);
  await engine.dispose();
  const want: number[] = [];
  for (let s = 0; s < 10; s += 4) {
    const n = Math.min(4, 10 - s);
    const part = sliceChunk(chunk, s, n);
    want.push(...referenceStep(ODD, params, part).probabilities);
  }
  assertClose("probabilities", p, want);
});

function sliceChunk(c: BatchChunk, s: number, n: number): BatchChunk {
  return {
    batchSize: n,
    samples: n,
    dense: c.dense.slice(s * 13, (s + n) * 13),
    labels: c.labels.slice(s, s + n),
    indices: c.indices.map((i) => i.slice(s, s + n)),
    offsets: c.offsets.map(() => Int32Array.from({ length: n + 1 }, (_, i) => i)),
  };
}

Deno.test("a diverging loss stops training with an error naming the iteration", async () => {
  const chunk = randomChunk(ODD, 8, 80, 3);
  const engine = await createCpuEngine({ spec: ODD, seed: 1, maxBatch: 8, threads: 2 });
  await assert.rejects(
    () => engine.trainChunk(chunk, { learningRate: 1e30 }),
    /Training diverged: the loss of iteration \d+ of the chunk is NaN|Infinity/,
  );
  // The threads recover from the abort (no hang): the next call runs and reports the
  // diverged parameters at its first iteration.
  await assert.rejects(
    () => engine.trainChunk(chunk, { learningRate: 0 }),
    /the loss of iteration 0 of the chunk is NaN/,
  );
  await engine.dispose();
});

Deno.test("bad input is rejected with the table and position named", async () => {
  const chunk = randomChunk(ODD, 4, 8, 3);
  chunk.indices[2][5] = 29;
  const engine = await createCpuEngine({ spec: ODD, seed: 1, maxBatch: 4, threads: 1 });
  await assert.rejects(
    () => engine.trainChunk(chunk, { learningRate: 0.1 }),
    /Expected table 2 indices in \[0, 29\) but found 29 at position 5/,
  );
  chunk.indices[2][5] = 0;
  await assert.rejects(
    () => engine.trainChunk({ ...chunk, batchSize: 8 }, { learningRate: 0.1 }),
    /Expected a batch of at most 4/,
  );
  await engine.dispose();
});

Deno.test("HAWQ's whole-table copies train exactly as DQRM with a new scale every step", async () => {
  const chunk = randomChunk(ODD, 8, 8 * 20, 11);
  const results: { loss: Float32Array; params: unknown; bytes: number }[] = [];
  for (const gatheredRowsOnly of [true, false]) {
    const engine = await createCpuEngine({
      spec: ODD,
      seed: 4,
      maxBatch: 8,
      threads: 2,
      quantization: {
        quantizer: "minmax",
        embeddingBits: 4,
        mlpBits: 8,
        mlpGranularity: "channel",
        quantizeBias: false,
        scalePeriod: 1,
        gatheredRowsOnly,
      },
    });
    const r = await engine.trainChunk(chunk, { learningRate: 0.1 });
    results.push({ loss: r.loss, params: await engine.readParams(), bytes: engine.memoryBytes() });
    await engine.dispose();
  }
  assert.deepEqual(results[1].loss, results[0].loss);
  assert.deepEqual(results[1].params, results[0].params);
});

Deno.test("QAT can pause for an FP32 warm-up: paused steps equal FP32 training", async () => {
  const chunk = randomChunk(ODD, 8, 8 * 10, 12);
  const fp32 = await createCpuEngine({ spec: ODD, seed: 4, maxBatch: 8, threads: 2 });
  const qat = await createCpuEngine({
    spec: ODD,
    seed: 4,
    maxBatch: 8,
    threads: 2,
    quantization: {
      quantizer: "minmax",
      embeddingBits: 4,
      mlpBits: 4,
      mlpGranularity: "channel",
      quantizeBias: true,
      scalePeriod: 3,
      gatheredRowsOnly: true,
    },
  });
  qat.setQuantizationActive(false);
  const a = await fp32.trainChunk(chunk, { learningRate: 0.1 });
  const b = await qat.trainChunk(chunk, { learningRate: 0.1 });
  assert.deepEqual(b.loss, a.loss);
  qat.setQuantizationActive(true);
  const c = await qat.trainChunk(chunk, { learningRate: 0.1 });
  const d = await fp32.trainChunk(chunk, { learningRate: 0.1 });
  assert.notDeepEqual(c.loss, d.loss);
  await fp32.dispose();
  await qat.dispose();
});
