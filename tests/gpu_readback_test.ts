/**
 * The ways around Deno's fixed `mapAsync` sleep give exactly what a plain readback gives: the
 * `OffscreenCanvas` readback (`engine/gpu/canvas_readback.ts`) returns the bytes on the GPU, and
 * the engine's next chunk, submitted as the one before maps (`engine/gpu/submit.ts`), trains to
 * the same bits. Needs a WebGPU adapter (in CI: lavapipe, `DENO_WEBGPU_BACKEND=vulkan`); without
 * one the GPU tests are reported as ignored.
 */
import assert from "node:assert/strict";
import { CanvasReader, canvasShape, hasOffscreenCanvas } from "../engine/gpu/canvas_readback.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { readStaged, stage, SubmitQueue } from "../engine/gpu/submit.ts";
import type { QuantConfig } from "../engine/quant.ts";
import { Rng } from "../engine/rng.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import { ODD, randomChunk } from "./test_models.ts";

const found = await findTestAdapter();
const ignoreEngine = found.adapter === null;
const ignore = ignoreEngine || !hasOffscreenCanvas();
if (ignore) {
  console.warn(
    `SKIPPING the WebGPU readback tests: ${found.reason || "no OffscreenCanvas"}. Install a ` +
      `Vulkan driver (CI: apt-get install -y mesa-vulkan-drivers libvulkan1) and set ` +
      `DENO_WEBGPU_BACKEND=vulkan.`,
  );
}

/** Random bytes from the test's seed, every bit pattern (NaNs, zero alpha bytes) included. */
function randomBytes(n: number, stream: number): Uint8Array<ArrayBuffer> {
  const rng = new Rng(12, stream);
  const words = new Uint32Array(n / 4);
  for (let i = 0; i < words.length; i++) words[i] = rng.nextU32();
  // A few patterns an image path could alter: all-zero and all-one texels, zero alpha.
  if (words.length >= 8) words.set([0, 0xffffffff, 0x00ffffff, 0x7fc00001], 3);
  return new Uint8Array(words.buffer);
}

Deno.test("canvasShape keeps rows 256-byte aligned and covers every byte", () => {
  for (const bytes of [4, 4 * 8192, 4 * 8193, 4 * 8192 * 3, 4 * 1_000_003]) {
    const s = canvasShape(bytes, 8192);
    assert.equal(s.fullRows * s.width + s.lastRow, bytes / 4, `texels of ${bytes} bytes`);
    if (s.height > 1) assert.equal((s.width * 4) % 256, 0, `row bytes of ${bytes} bytes`);
    assert.ok(s.width <= 8192 && s.height <= 8192);
  }
  assert.throws(() => canvasShape(6, 8192), /multiple of 4 bytes to read but found 6/);
  assert.throws(() => canvasShape(4 * 8192 * 8193, 8192), /at most/);
});

Deno.test({
  name: "canvas readback returns exactly the bytes mapAsync returns and the bytes written",
  ignore,
  async fn() {
    const device = await found.adapter!.requestDevice();
    const reader = new CanvasReader(device);
    try {
      // One texel, one row, one row of 8192 plus a partial row, several full rows and a part.
      const cases = [
        { bytes: 4, offset: 0 },
        { bytes: 4 * 37, offset: 12 },
        { bytes: 4 * 8193, offset: 4 },
        { bytes: 4 * (8192 * 3 + 5), offset: 256 },
      ];
      for (const [n, { bytes, offset }] of cases.entries()) {
        const data = randomBytes(offset + bytes, n);
        const src = device.createBuffer({
          size: data.length,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        });
        device.queue.writeBuffer(src, 0, data);
        device.pushErrorScope("validation");
        const encoder = device.createCommandEncoder();
        reader.copy(encoder, src, offset, bytes);
        const staged = stage(device, encoder, src, offset, bytes);
        device.queue.submit([encoder.finish()]);
        assert.equal((await device.popErrorScope())?.message, undefined, `copy of ${bytes} bytes`);
        const viaCanvas = new Uint8Array(await reader.read(bytes));
        const viaMap = new Uint8Array(await readStaged(staged), 0, bytes);
        const want = data.subarray(offset, offset + bytes);
        assert.deepEqual(viaCanvas, want, `canvas readback of ${bytes} bytes from ${offset}`);
        assert.deepEqual(viaMap, want, `mapAsync readback of ${bytes} bytes from ${offset}`);
        src.destroy();
      }
    } finally {
      reader.dispose();
      device.destroy();
    }
  },
});

Deno.test({
  name: "canvas readback of a size read again returns the newest copy",
  ignore,
  async fn() {
    const device = await found.adapter!.requestDevice();
    const reader = new CanvasReader(device);
    const src = device.createBuffer({
      size: 64,
      usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    try {
      for (let round = 0; round < 3; round++) {
        const data = randomBytes(64, 100 + round);
        device.queue.writeBuffer(src, 0, data);
        const encoder = device.createCommandEncoder();
        reader.copy(encoder, src, 0, 64);
        device.queue.submit([encoder.finish()]);
        assert.deepEqual(new Uint8Array(await reader.read(64)), data, `round ${round}`);
      }
      await assert.rejects(() => reader.read(8), /Expected a copy of 8 bytes recorded/);
    } finally {
      src.destroy();
      reader.dispose();
      device.destroy();
    }
  },
});

Deno.test("a turn submits once the turn before has made its mapAsync calls, or has ended", async () => {
  const log: string[] = [];
  const queue = { submit: (b: string[]) => log.push(...b) } as unknown as GPUQueue;
  const commands = (name: string) => name as unknown as GPUCommandBuffer;
  const submits = new SubmitQueue(queue);
  const [first, second, third] = [submits.turn(), submits.turn(), submits.turn()];
  await first.submit(commands("first"));
  const secondSent = second.submit(commands("second")).then(() => log.push("second sent"));
  const thirdSent = third.submit(commands("third")).then(() => log.push("third sent"));
  await Promise.resolve();
  assert.deepEqual(log, ["first"], "nothing overtakes a turn that has not mapped");
  first.mapping();
  await secondSent;
  assert.deepEqual(log, ["first", "second", "second sent"], "the next submits before the end");
  assert.equal(submits.inFlight, 3);
  second.end(); // ended without mapping (failed): the turn after it goes on
  await thirdSent;
  assert.deepEqual(log.slice(3), ["third", "third sent"]);
  first.end();
  third.end();
  assert.equal(submits.inFlight, 0);
});

const QAT: QuantConfig = {
  quantizer: "minmax",
  embeddingBits: 4,
  mlpBits: 4,
  mlpGranularity: "channel",
  quantizeBias: false,
  scalePeriod: 2,
  gatheredRowsOnly: true,
};

Deno.test({
  name: "GPU engine: a chunk submitted while the one before maps trains to the same bits",
  ignore: ignoreEngine,
  sanitizeResources: false,
  async fn() {
    const batch = 6;
    // Timed passes and QAT scales: every chunk maps three staging buffers.
    const make = () =>
      createGpuEngine({ spec: ODD, maxBatch: batch, seed: 5, quantization: QAT, timingEvery: 2 });
    const chunks = [0, 1, 2, 3].map((k) => randomChunk(ODD, batch, 4 * batch, 70 + k, k % 2 === 1));
    const lr = { learningRate: 0.3 };
    const [one, ahead] = [await make(), await make()];
    const submit = GPUQueue.prototype.submit;
    const mapAsync = GPUBuffer.prototype.mapAsync;
    const log: string[] = [];
    const restore = () => {
      GPUQueue.prototype.submit = submit;
      GPUBuffer.prototype.mapAsync = mapAsync;
    };
    try {
      const want: Float32Array[] = [];
      for (const c of chunks) want.push((await one.trainChunk(c, lr)).loss);
      // As the training loop does: the next chunk is started before this one is awaited.
      GPUQueue.prototype.submit = function (this: GPUQueue, buffers: GPUCommandBuffer[]) {
        log.push("submit");
        return submit.call(this, buffers);
      };
      GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, ...args) {
        return mapAsync.apply(this, args).then(() => {
          if (log.at(-1) !== "mapped") log.push("mapped");
          return undefined;
        });
      };
      let pending = ahead.trainChunk(chunks[0], lr);
      for (let k = 0; k < chunks.length; k++) {
        const next = k + 1 < chunks.length ? ahead.trainChunk(chunks[k + 1], lr) : null;
        const r = await pending;
        log.push(`chunk ${k} returned`);
        assert.deepEqual(r.loss, want[k], `chunk ${k} losses`);
        if (next) pending = next;
      }
      restore();
      assert.deepEqual(await ahead.readParams(), await one.readParams());
      // Each chunk after the first went to the GPU before the maps of the one before resolved.
      assert.deepEqual(log, [
        "submit",
        ...chunks.slice(1).flatMap((_, k) => ["submit", "mapped", `chunk ${k} returned`]),
        "mapped",
        `chunk ${chunks.length - 1} returned`,
      ]);
    } finally {
      restore();
      await one.dispose();
      await ahead.dispose();
    }
  },
});
