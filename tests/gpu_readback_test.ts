/**
 * Readbacks that avoid Deno's fixed `mapAsync` sleep return exactly the bytes on the GPU: the
 * `OffscreenCanvas` path (`engine/gpu/canvas_readback.ts`). Needs a WebGPU adapter (in CI:
 * lavapipe, `DENO_WEBGPU_BACKEND=vulkan`); without one the tests are reported as ignored.
 */
import assert from "node:assert/strict";
import { CanvasReader, canvasShape, hasOffscreenCanvas } from "../engine/gpu/canvas_readback.ts";
import { readStaged, stage } from "../engine/gpu/submit.ts";
import { Rng } from "../engine/rng.ts";
import { findTestAdapter } from "./gpu_setup.ts";

const found = await findTestAdapter();
const ignore = found.adapter === null || !hasOffscreenCanvas();
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
