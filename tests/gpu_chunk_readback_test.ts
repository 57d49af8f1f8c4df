/**
 * A call's results read back together (`engine/gpu/chunk_readback.ts`): through the checked
 * canvas when nothing is queued behind the call, by `mapAsync` otherwise or when too large, the
 * same bytes either way. Without a WebGPU adapter or `OffscreenCanvas` the tests are ignored.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  CanvasReader,
  checkCanvasReader,
  hasOffscreenCanvas,
} from "../engine/gpu/canvas_readback.ts";
import {
  ChunkReadback,
  DRAIN_CANVAS_MAX_BYTES,
  drainCanvas,
} from "../engine/gpu/chunk_readback.ts";
import { SubmitQueue } from "../engine/gpu/submit.ts";
import { requestGpuDevice } from "../engine/gpu/device.ts";
import { Rng } from "../engine/rng.ts";
import { findTestAdapter, withChangedCanvasBytes } from "./gpu_setup.ts";

const found = await findTestAdapter();
const ignore = found.adapter === null || !hasOffscreenCanvas();

/** A storage buffer holding `bytes` random bytes (with zero-alpha and all-one texels). */
function sourceOf(device: GPUDevice, bytes: number, seed: number): [GPUBuffer, Uint8Array] {
  const rng = new Rng(seed);
  const words = new Uint32Array(bytes / 4);
  for (let i = 0; i < words.length; i++) words[i] = rng.nextU32();
  if (words.length >= 3) words.set([0, 0xffffffff, 0x00ffffff]);
  const buffer = device.createBuffer({
    size: Math.max(16, bytes),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, words);
  return [buffer, new Uint8Array(words.buffer)];
}

/** What `read` did: reads the results of sizes `sizes` (from offset 4 of each source). */
async function readBack(
  device: GPUDevice,
  drain: Awaited<ReturnType<typeof drainCanvas>>,
  sizes: number[],
  behind: boolean,
): Promise<{ got: Uint8Array[]; want: Uint8Array[]; canvas: boolean }> {
  const queue = new SubmitQueue(device.queue);
  const turn = queue.turn();
  const later = behind ? queue.turn() : null;
  const encoder = device.createCommandEncoder();
  const back = new ChunkReadback(device, encoder, drain);
  const want: Uint8Array[] = [];
  for (const [k, bytes] of sizes.entries()) {
    const [src, data] = sourceOf(device, bytes + 4, 40 + k);
    back.add(src, 4, bytes);
    want.push(data.slice(4));
  }
  back.record();
  await turn.submit(encoder.finish());
  const convertToBlob = OffscreenCanvas.prototype.convertToBlob;
  let canvas = false;
  OffscreenCanvas.prototype.convertToBlob = function (this: OffscreenCanvas, ...args) {
    canvas = true;
    return convertToBlob.apply(this, args);
  };
  try {
    const got = (await back.read(turn)).map((b) => new Uint8Array(b));
    return { got, want, canvas };
  } finally {
    OffscreenCanvas.prototype.convertToBlob = convertToBlob;
    turn.end();
    later?.end();
  }
}

Deno.test({
  name: "chunk readback: through the checked canvas with nothing behind, else mapped; same bytes",
  ignore,
  sanitizeResources: false,
  async fn() {
    const gpu = await requestGpuDevice();
    const drain = await drainCanvas(gpu.device);
    try {
      assert.ok(drain, "the canvas read the check pattern back exactly");
      // Sizes that are not multiples of 16 (each result packed at a 16-byte boundary).
      const sizes = [4, 12, 260, 8192];
      for (const behind of [false, true]) {
        const r = await readBack(gpu.device, drain, sizes, behind);
        assert.equal(r.canvas, !behind, `through the canvas: ${!behind}`);
        r.got.forEach((g, k) => assert.deepEqual(g, r.want[k], `result ${k}, behind ${behind}`));
      }
      // Too large for the canvas: mapped although nothing is behind.
      const large = await readBack(gpu.device, drain, [DRAIN_CANVAS_MAX_BYTES + 16], false);
      assert.equal(large.canvas, false);
      assert.deepEqual(large.got[0], large.want[0]);
      // Without a checked canvas: mapped.
      const none = await readBack(gpu.device, null, [8], false);
      assert.equal(none.canvas, false);
      assert.deepEqual(none.got[0], none.want[0]);
    } finally {
      drain?.dispose();
      gpu.device.destroy();
    }
  },
});

Deno.test({
  name: "chunk readback: results cannot be added once the canvas copy is recorded",
  ignore,
  sanitizeResources: false,
  async fn() {
    const gpu = await requestGpuDevice();
    try {
      const [src] = sourceOf(gpu.device, 16, 1);
      const back = new ChunkReadback(gpu.device, gpu.device.createCommandEncoder(), null);
      back.add(src, 0, 16);
      back.record();
      assert.throws(() => back.add(src, 0, 4), /added before the read is recorded/);
    } finally {
      gpu.device.destroy();
    }
  },
});

Deno.test({
  name: "checkCanvasReader: a canvas that changes a byte, in a one-row or a two-row canvas, " +
    "fails the check, and drainCanvas gives none",
  ignore,
  sanitizeResources: false,
  async fn() {
    const gpu = await requestGpuDevice();
    try {
      const exact = new CanvasReader(gpu.device);
      assert.equal(await checkCanvasReader(exact, gpu.device), true);
      exact.dispose();
      for (const rows of [1, 2]) {
        await withChangedCanvasBytes(rows, async () => {
          const reader = new CanvasReader(gpu.device);
          assert.equal(await checkCanvasReader(reader, gpu.device), false, `${rows} rows`);
          reader.dispose();
          assert.equal(await drainCanvas(gpu.device), null, `drainCanvas, ${rows} rows`);
        });
      }
    } finally {
      gpu.device.destroy();
    }
  },
});
