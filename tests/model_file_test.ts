import assert from "node:assert/strict";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { modelFileSize, readModelFile, writeModelFile } from "../engine/model_file.ts";
import type { QuantConfig } from "../engine/quant.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";

const spec = kaggleSpec(0.0005);

async function trainQat(quantization: QuantConfig | null) {
  const data = new SyntheticCriteo(spec, { seed: 2 });
  const train = allocateOneHotChunk(spec, 64, 64 * 30, true);
  data.fill(train, "train", 0);
  const test = allocateOneHotChunk(spec, 64, 500, true);
  data.fill(test, "test", 0);
  const engine = await createCpuEngine({ spec, seed: 2, maxBatch: 64, threads: 2, quantization });
  await engine.trainChunk(train, { learningRate: 0.1 });
  return { engine, test };
}

for (const bits of [2, 4, 8, 16] as const) {
  for (const quantizeBias of [false, true]) {
    Deno.test(`an INT${bits} QAT model round-trips its file exactly (quantized biases: ${quantizeBias})`, async () => {
      const q: QuantConfig = {
        quantizer: "minmax",
        embeddingBits: bits,
        mlpBits: bits,
        mlpGranularity: bits === 8 ? "matrix" : "channel",
        quantizeBias,
        scalePeriod: 7,
        gatheredRowsOnly: true,
      };
      const { engine, test } = await trainQat(q);
      const want = await engine.predict(test);
      const file = writeModelFile(
        spec,
        await engine.readParams(),
        q,
        await engine.embeddingScales(),
      );
      await engine.dispose();
      assert.equal(file.length, modelFileSize(spec, q));
      const loaded = readModelFile(file);
      const fp32 = await createCpuEngine({ spec, params: loaded.params, maxBatch: 64, threads: 2 });
      const got = await fp32.predict(test);
      await fp32.dispose();
      assert.deepEqual(got, want);
    });
  }
}

Deno.test("model file sizes: INT4 packs two values a byte, and the Kaggle INT4 file is 0.270 GB", () => {
  const full = kaggleSpec();
  const int4 = modelFileSize(full, { embeddingBits: 4, mlpBits: 4, mlpGranularity: "channel" });
  const fp32 = modelFileSize(full, {
    embeddingBits: null,
    mlpBits: null,
    mlpGranularity: "channel",
  });
  assert.equal((int4 / 1e9).toFixed(3), "0.270");
  assert.equal((fp32 / 1e9).toFixed(3), "2.163");
  const int2 = modelFileSize(full, { embeddingBits: 2, mlpBits: 2, mlpGranularity: "channel" });
  assert.ok(Math.abs(int2 / int4 - 0.5) < 0.01);
});

Deno.test("readModelFile() rejects a corrupted or truncated file naming the cause", async () => {
  const { engine } = await trainQat(null);
  const q = { embeddingBits: 4, mlpBits: null, mlpGranularity: "channel" } as const;
  const file = writeModelFile(spec, await engine.readParams(), q, await engine.embeddingScales());
  await engine.dispose();
  const flipped = file.slice();
  flipped[flipped.length - 3] ^= 0x10;
  assert.throws(() => readModelFile(flipped), /checksum mismatch/);
  assert.throws(() => readModelFile(file.subarray(0, file.length - 8)), /truncated/);
  assert.throws(() => readModelFile(new Uint8Array(20)), /starting with "DQRM"/);
});
