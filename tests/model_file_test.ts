import assert from "node:assert/strict";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import {
  crc32,
  MODEL_FILE_VERSION,
  modelFileSize,
  readModelFile,
  writeModelFile,
} from "../engine/model_file.ts";
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

/** Replaces `from` by `to` (same length) in a model file's header. */
function editHeader(file: Uint8Array, from: string, to: string): Uint8Array {
  assert.equal(from.length, to.length);
  const text = new TextDecoder("latin1").decode(file);
  const at = text.indexOf(from);
  assert.ok(at > 0, `header has ${from}`);
  const out = file.slice();
  out.set(new TextEncoder().encode(to), at);
  return out;
}

Deno.test("the model file's CRC covers its header: editing the bits in the header is caught", async () => {
  const { engine } = await trainQat(null);
  const q = { embeddingBits: 4, mlpBits: null, mlpGranularity: "channel" } as const;
  const file = writeModelFile(spec, await engine.readParams(), q, await engine.embeddingScales());
  await engine.dispose();
  assert.equal(MODEL_FILE_VERSION, 2);
  assert.deepEqual(readModelFile(file).warnings, []);
  for (
    const [from, to] of [
      ['"embeddingBits":4', '"embeddingBits":8'],
      ['"mlpGranularity":"channel"', '"mlpGranularity":"matrix" '],
    ]
  ) {
    assert.throws(
      () => readModelFile(editHeader(file, from, to)),
      (e: Error) =>
        e instanceof SyntaxError &&
        /^Model file checksum mismatch: header says [0-9a-f]{8}, header and payload have [0-9a-f]{8}$/
          .test(e.message),
      from,
    );
  }
  // The checksum's own digits, and the fixed prefix, are covered too.
  const crc = readModelFile(file).header.crc32;
  const other = (parseInt(crc, 16) ^ 1).toString(16).padStart(8, "0");
  assert.throws(() => readModelFile(editHeader(file, crc, other)), /checksum mismatch/);
  assert.throws(() => readModelFile(editHeader(file, "{", "[")), /JSON model file header/);
});

Deno.test("a version 1 model file (CRC of the payload only) is read with a one-line warning", async () => {
  const { engine } = await trainQat(null);
  const q = { embeddingBits: 4, mlpBits: null, mlpGranularity: "channel" } as const;
  const file = writeModelFile(spec, await engine.readParams(), q, await engine.embeddingScales());
  await engine.dispose();
  const v2 = readModelFile(file);
  // A version 1 file: the same bytes, version 1 and the payload's CRC.
  const headerLength = new DataView(file.buffer).getUint32(8, true);
  const payload = file.subarray(Math.ceil((12 + headerLength) / 8) * 8);
  let v1 = editHeader(file, `"version":2`, `"version":1`);
  v1 = editHeader(v1, v2.header.crc32, crc32(payload).toString(16).padStart(8, "0"));
  new DataView(v1.buffer).setUint32(4, 1, true);
  const loaded = readModelFile(v1);
  assert.deepEqual(loaded.params, v2.params);
  assert.equal(loaded.warnings.length, 1);
  assert.match(loaded.warnings[0], /^model file version 1: its checksum covers the payload only/);
  assert.ok(!loaded.warnings[0].includes("\n"));
  new DataView(v1.buffer).setUint32(4, 3, true);
  assert.throws(
    () => readModelFile(v1),
    /^SyntaxError: Expected model file version 1 or 2 but found 3$/,
  );
});
