import assert from "node:assert/strict";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { TABLE_MAX_BLOCK, TableMax } from "../engine/cpu/table_max.ts";
import { compileKernels, instantiateKernels } from "../engine/cpu/wasm.ts";
import { Rng } from "../engine/rng.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { dqrm, hawq, pact } from "../suites/experiments.ts";

Deno.test("TableMax keeps a table's largest |w| through sparse updates, as a whole-table pass finds it", async () => {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 4, shared: true });
  const k = await instantiateKernels(await compileKernels(), memory);
  const dim = 16, rowsInTable = 1000, offset = 4096;
  const table = new Float32Array(memory.buffer, offset, rowsInTable * dim);
  const rng = new Rng(3);
  for (let i = 0; i < table.length; i++) table[i] = rng.normal() * 0.1;
  const tm = new TableMax(offset, table.length);
  const whole = () => k.maxAbsFlat(offset, table.length);
  assert.equal(tm.full(k), whole());
  assert.ok(table.length % TABLE_MAX_BLOCK !== 0, "a short last block is covered");
  const batch = 8;
  for (let step = 0; step < 200; step++) {
    const indices = Int32Array.from({ length: batch }, () => Math.floor(rng.next() * rowsInTable));
    const offsets = Int32Array.from({ length: batch + 1 }, (_, i) => i);
    // Shrink the row holding the maximum now and then (a running max would miss it), else move.
    const max = whole();
    const argmax = table.findIndex((v) => Math.abs(v) === max);
    if (step % 10 === 0) indices[0] = Math.floor(argmax / dim);
    for (const row of indices) {
      for (let q = 0; q < dim; q++) {
        table[row * dim + q] = step % 10 === 0 ? table[row * dim + q] * 0.5 : rng.normal() * 0.12;
      }
    }
    tm.mark(indices, offsets, 0, batch, dim);
    assert.equal(tm.refresh(k), whole(), `step ${step}`);
  }
  table[5 * dim + 3] = NaN;
  tm.mark([5], [0, 1], 0, 1, dim);
  assert.ok(Number.isNaN(tm.refresh(k)));
});

Deno.test("PACT trains the same model bit for bit whether table maxima are kept or re-read every step", async () => {
  const spec = kaggleSpec(0.001);
  const batch = 32, steps = 24;
  const whole = allocateOneHotChunk(spec, batch, batch * steps, true);
  const data = new SyntheticCriteo(spec, { seed: 4 });
  data.fill(whole, "train", 0);
  const one = allocateOneHotChunk(spec, batch, batch, true);
  const options = { spec, seed: 4, maxBatch: batch, threads: 2, quantization: pact(4, 4) };
  // One chunk with the maxima kept; one step a chunk, every table read at every step.
  const kept = await createCpuEngine(options);
  const a = (await kept.trainChunk(whole, { learningRate: 0.1 })).loss;
  const reread = await createCpuEngine({ ...options, incrementalTableMaxima: false });
  const b = new Float32Array(steps);
  for (let s = 0; s < steps; s++) {
    data.fill(one, "train", s * batch);
    b[s] = (await reread.trainChunk(one, { learningRate: 0.1 })).loss[0];
  }
  assert.deepEqual(a, b);
  const pa = await kept.readParams(), pb = await reread.readParams();
  assert.deepEqual(pa.embeddings, pb.embeddings);
  await kept.dispose();
  await reread.dispose();
});

Deno.test("TableMax refresh re-reads only the marked blocks and finds the whole-table pass's max", async () => {
  const memory = new WebAssembly.Memory({ initial: 8, maximum: 8, shared: true });
  const k = await instantiateKernels(await compileKernels(), memory);
  const dim = 16, rowsInTable = 3000, offset = 8192;
  const table = new Float32Array(memory.buffer, offset, rowsInTable * dim);
  const rng = new Rng(5);
  for (let i = 0; i < table.length; i++) table[i] = rng.normal() * 0.1;
  const tm = new TableMax(offset, table.length);
  const whole = () => k.maxAbsFlat(offset, table.length);
  // Marks before the first refresh are no-ops: the first refresh reads everything.
  assert.equal(tm.valid, false);
  tm.mark([1], [0, 1], 0, 1, dim);
  assert.equal(tm.refresh(k), whole());
  assert.equal(tm.valid, true);
  for (let period = 0; period < 40; period++) {
    // A few steps of sparse writes, each marked, then one refresh.
    for (let step = 0; step < 1 + (period % 4); step++) {
      const batch = 6;
      const indices = Int32Array.from(
        { length: batch },
        () => Math.floor(rng.next() * rowsInTable),
      );
      // Shrink the row holding the maximum now and then (a running max would miss it).
      if (period % 5 === 0) {
        const max = whole();
        indices[0] = Math.floor(table.findIndex((v) => Math.abs(v) === max) / dim);
      }
      for (const row of indices) {
        for (let q = 0; q < dim; q++) {
          table[row * dim + q] = period % 5 === 0
            ? table[row * dim + q] * 0.25
            : rng.normal() * 0.11;
        }
      }
      tm.mark(indices, Int32Array.from({ length: batch + 1 }, (_, i) => i), 0, batch, dim);
    }
    assert.equal(tm.refresh(k), whole(), `period ${period}`);
  }
  // An unmarked write is seen only after invalidate().
  const max = whole();
  const at = table.findIndex((v) => Math.abs(v) === max);
  table[at] = 0;
  assert.equal(tm.refresh(k), max, "stale without a mark: the contract is to mark or invalidate");
  tm.invalidate();
  assert.equal(tm.refresh(k), whole());
});

for (
  const [name, quantization] of [
    ["DQRM INT4 P=3", dqrm(4, 8, 3)],
    ["DQRM INT4 P=1", dqrm(4, 8, 1)],
    ["HAWQ INT4", hawq(4, 8)],
  ] as const
) {
  Deno.test(`${name} trains the same model bit for bit whether table maxima are kept across chunks or re-read`, async () => {
    const spec = kaggleSpec(0.001);
    const batch = 32, steps = 8, chunks = 4;
    const data = new SyntheticCriteo(spec, { seed: 6 });
    const chunk = allocateOneHotChunk(spec, batch, batch * steps, true);
    const options = { spec, seed: 6, maxBatch: batch, threads: 2, quantization };
    const kept = await createCpuEngine(options);
    const reread = await createCpuEngine({ ...options, incrementalTableMaxima: false });
    try {
      for (let c = 0; c < chunks; c++) {
        data.fill(chunk, "train", c * batch * steps);
        const a = (await kept.trainChunk(chunk, { learningRate: 0.5 })).loss;
        const b = (await reread.trainChunk(chunk, { learningRate: 0.5 })).loss;
        assert.deepEqual(a, b, `chunk ${c}`);
      }
      // Tables rewritten between chunks (quantized in place) are read again, not taken from the
      // maxima kept before.
      for (const e of [kept, reread]) {
        e.quantizeInPlace({ embeddingBits: 2, mlpBits: null, quantizeBias: false });
      }
      data.fill(chunk, "train", chunks * batch * steps);
      const a = (await kept.trainChunk(chunk, { learningRate: 0.5 })).loss;
      const b = (await reread.trainChunk(chunk, { learningRate: 0.5 })).loss;
      assert.deepEqual(a, b, "after quantizing in place");
      const pa = await kept.readParams(), pb = await reread.readParams();
      assert.deepEqual(pa.embeddings, pb.embeddings);
    } finally {
      await kept.dispose();
      await reread.dispose();
    }
  });
}
