/**
 * The ways around Deno's fixed `mapAsync` sleep give exactly what a plain readback gives: the
 * `OffscreenCanvas` readback (`engine/gpu/canvas_readback.ts`) returns the bytes on the GPU, and
 * the engine's next chunk, submitted as the one before maps (`engine/gpu/submit.ts`), trains to
 * the same bits. Needs a WebGPU adapter (in CI: lavapipe, `DENO_WEBGPU_BACKEND=vulkan`); without
 * one the GPU tests are reported as ignored.
 */
import assert from "node:assert/strict";
import {
  canvasBucket,
  CanvasReader,
  canvasShape,
  hasOffscreenCanvas,
  texelsOfBmp,
  unswizzleRows,
} from "../engine/gpu/canvas_readback.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { readStaged, stage, SubmitQueue } from "../engine/gpu/submit.ts";
import { earlySubmitBreaks } from "../engine/gpu/timing.ts";
import { type ProbeEvent, wrapWebGpuCalls } from "../cli/probe_gpu_chunks.ts";
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

/**
 * A 32-bit BITFIELDS BMP of `texels` (texture order, `width` a row, RGBA bytes) as an encoder
 * writing the channels at bytes `channels` (R, G, B, A) would write it; rows bottom up unless
 * `topDown`; `pad` extra header bytes move the pixels to an unaligned offset.
 */
function encodeBmp(
  texels: Uint8Array,
  width: number,
  height: number,
  channels: number[],
  topDown: boolean,
  pad: number,
): Uint8Array {
  const pixels = 70 + pad, rowBytes = width * 4;
  const bmp = new Uint8Array(pixels + height * rowBytes);
  const view = new DataView(bmp.buffer);
  view.setUint16(0, 0x424d);
  view.setUint32(2, bmp.length, true);
  view.setUint32(10, pixels, true);
  view.setUint32(14, 56 + pad, true);
  view.setInt32(18, width, true);
  view.setInt32(22, topDown ? -height : height, true);
  view.setUint16(26, 1, true);
  view.setUint16(28, 32, true);
  view.setUint32(30, 3, true);
  channels.forEach((byte, c) => view.setUint32(54 + 4 * c, (0xff << (8 * byte)) >>> 0, true));
  for (let row = 0; row < height; row++) {
    const at = pixels + (topDown ? row : height - 1 - row) * rowBytes;
    for (let i = 0; i < width && (row * width + i) * 4 < texels.length; i++) {
      for (let c = 0; c < 4; c++) bmp[at + 4 * i + channels[c]] = texels[(row * width + i) * 4 + c];
    }
  }
  return bmp;
}

Deno.test("texelsOfBmp decodes every channel order, row order and partial last row exactly", () => {
  const orders = [[2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0], [1, 0, 3, 2]];
  // One texel, an odd single row, one full row plus one texel, several rows and a part.
  const shapes = [[1, 1, 4], [37, 1, 148], [64, 2, 4 * 65], [128, 5, 4 * (128 * 4 + 77)]];
  let n = 0;
  for (const [width, height, bytes] of shapes) {
    const shape = { width, height, fullRows: 0, lastRow: 0 };
    const want = randomBytes(width * height * 4, 200 + n++);
    for (const channels of orders) {
      for (const topDown of [false, true]) {
        for (const pad of [0, 52, 54]) {
          const bmp = encodeBmp(want, width, height, channels, topDown, pad);
          for (const read of [bytes, 4, width * 4]) {
            if (read > bytes) continue;
            const got = new Uint8Array(texelsOfBmp(bmp, shape, read));
            const what = `${read} of ${width} x ${height}, masks ${channels}, top down ${topDown}`;
            assert.deepEqual(got, want.subarray(0, read), what);
          }
        }
      }
    }
  }
  const bmp = encodeBmp(randomBytes(16, 1), 4, 1, [2, 1, 0, 3], false, 0);
  assert.throws(
    () => texelsOfBmp(bmp, { width: 4, height: 2, fullRows: 2, lastRow: 0 }, 16),
    /Expected a 4 x 2 BMP of 32-bit texels but found 4 x 1/,
  );
});

Deno.test("unswizzleRows undoes the GPU's swizzle and reversed rows, partial last row too", () => {
  const [width, height] = [64, 5];
  for (const bytes of [4, 4 * 63, 4 * 64, 4 * 65, 4 * (64 * 4 + 13), 4 * 64 * 5]) {
    const want = randomBytes(bytes, 400 + bytes);
    // What the texture holds: row j of the bytes in row height - 1 - j, bytes 0 and 2 swapped.
    const texels = new Uint8Array(width * height * 4).fill(0xa5);
    for (let i = 0; i < bytes / 4; i++) {
      const j = Math.floor(i / width), at = 4 * ((height - 1 - j) * width + (i % width));
      texels.set([want[4 * i + 2], want[4 * i + 1], want[4 * i], want[4 * i + 3]], at);
    }
    const got = new Uint8Array(unswizzleRows(texels.buffer, width, height, bytes));
    assert.deepEqual(got, want, `${bytes} bytes`);
  }
});

Deno.test("canvasBucket: few canvas sizes, each at most a fifth larger than the bytes read", () => {
  const buckets = new Set<number>();
  for (let bytes = 4; bytes <= 32 << 20; bytes = Math.ceil((bytes * 1.013) / 4) * 4 + 4) {
    const b = canvasBucket(bytes);
    assert.ok(b >= bytes && b % 4 === 0, `bucket ${b} of ${bytes}`);
    if (bytes > 4096) {
      assert.ok(b <= bytes * 1.2 + 256 && b % 256 === 0, `bucket ${b} of ${bytes}`);
      buckets.add(b);
    } else assert.equal(b, bytes);
  }
  assert.ok(buckets.size <= 53, `${buckets.size} buckets from 4 KiB to 32 MiB`);
});

Deno.test({
  name: "canvas readback: sizes sharing one canvas each read back exactly, newest copy first",
  ignore,
  async fn() {
    const device = await found.adapter!.requestDevice();
    const reader = new CanvasReader(device);
    // One bucket of several rows (8192 texels a row on lavapipe): 4 full rows, then 3 full rows
    // and partial last rows of 3100, 3911 and 8000 texels.
    const base = 4 * 8192 * 3;
    const sizes = [base + 4 * 8192, base + 4 * 3100, base + 4 * 3911, base + 4 * 8000];
    assert.equal(new Set(sizes.map(canvasBucket)).size, 1, "the sizes share a bucket");
    const data = randomBytes(sizes[0] + 64, 300);
    const src = device.createBuffer({
      size: data.length,
      usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(src, 0, data);
    try {
      for (const [round, bytes] of sizes.entries()) {
        const offset = 4 * round;
        device.pushErrorScope("validation");
        const encoder = device.createCommandEncoder();
        reader.copy(encoder, src, offset, bytes);
        device.queue.submit([encoder.finish()]);
        assert.equal((await device.popErrorScope())?.message, undefined, `copy of ${bytes}`);
        const got = new Uint8Array(await reader.read(bytes));
        assert.deepEqual(got, data.subarray(offset, offset + bytes), `${bytes} from ${offset}`);
        const other = sizes[(round + 1) % sizes.length];
        await assert.rejects(() => reader.read(other), /Expected a copy of \d+ bytes recorded/);
      }
      assert.equal(reader.canvases, 1);
    } finally {
      src.destroy();
      reader.dispose();
      device.destroy();
    }
  },
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

Deno.test("a turn sends parts of its commands only while it may submit at once", async () => {
  const log: string[] = [];
  const queue = { submit: (b: string[]) => log.push(...b) } as unknown as GPUQueue;
  const commands = (name: string) => name as unknown as GPUCommandBuffer;
  const submits = new SubmitQueue(queue);
  const [first, second] = [submits.turn(), submits.turn()];
  assert.equal(first.ready(), true, "no turn before the first");
  first.submitPart(commands("first part"));
  await first.submit(commands("first"));
  assert.throws(() => first.submitPart(commands("late")), /it has made its last submit/);
  assert.equal(second.ready(), false, "the first has not mapped");
  assert.throws(
    () => second.submitPart(commands("early")),
    /earlier call has not made its readbacks/,
  );
  first.mapping();
  assert.equal(second.ready(), true);
  second.submitPart(commands("second part"));
  await second.submit(commands("second"));
  assert.deepEqual(log, ["first part", "first", "second part", "second"]);
  first.end();
  second.end();
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

/** A QAT engine on the test model whose chunks map three staging buffers (timed, with scales). */
const qatEngine = (maxBatch: number) =>
  createGpuEngine({ spec: ODD, maxBatch, seed: 5, quantization: QAT, timingEvery: 2 });

Deno.test({
  name: "GPU engine: a chunk submitted while the one before maps trains to the same bits",
  ignore: ignoreEngine,
  sanitizeResources: false,
  async fn() {
    const batch = 6;
    // Timed passes and QAT scales: every chunk maps three staging buffers.
    const make = () => qatEngine(batch);
    const chunks = [0, 1, 2, 3].map((k) => randomChunk(ODD, batch, 4 * batch, 70 + k, k % 2 === 1));
    const lr = { learningRate: 0.3 };
    const [one, ahead] = [await make(), await make()];
    const submit = GPUQueue.prototype.submit;
    const mapAsync = GPUBuffer.prototype.mapAsync;
    const convertToBlob = OffscreenCanvas.prototype.convertToBlob;
    const log: string[] = [];
    const restore = () => {
      GPUQueue.prototype.submit = submit;
      GPUBuffer.prototype.mapAsync = mapAsync;
      OffscreenCanvas.prototype.convertToBlob = convertToBlob;
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
      OffscreenCanvas.prototype.convertToBlob = function (this: OffscreenCanvas, ...args) {
        log.push("canvas");
        return convertToBlob.apply(this, args);
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
      // The first chunk, recorded on an idle GPU, went in pieces as it was recorded (so did
      // every chunk of \`one\`, awaited in turn: the same bits); each chunk after it went whole to
      // the GPU before the maps of the one before resolved. The last, with nothing queued
      // behind it, read its results through the canvas (as every chunk of \`one\` did).
      assert.deepEqual(log, [
        ...earlySubmitBreaks(4).map(() => "submit"),
        "submit",
        ...chunks.slice(1).flatMap((_, k) => ["submit", "mapped", `chunk ${k} returned`]),
        "canvas",
        `chunk ${chunks.length - 1} returned`,
      ]);
    } finally {
      restore();
      await one.dispose();
      await ahead.dispose();
    }
  },
});

Deno.test({
  name: "GPU engine: each chunk's device-clock span holds its timed passes and follows the last",
  ignore: ignoreEngine || !found.adapter?.features.has("timestamp-query"),
  sanitizeResources: false,
  async fn() {
    const batch = 6;
    const engine = await createGpuEngine({ spec: ODD, maxBatch: batch, seed: 5, timingEvery: 2 });
    try {
      const spans: { start: number; end: number; timed: number }[] = [];
      // Two awaited in turn, then two in flight together (the second submitted as the first maps).
      const chunks = [0, 1, 2, 3].map((k) => randomChunk(ODD, batch, 4 * batch, 90 + k, false));
      const results = [
        await engine.trainChunk(chunks[0], { learningRate: 0.1 }),
        await engine.trainChunk(chunks[1], { learningRate: 0.1 }),
        ...(await Promise.all(
          chunks.slice(2).map((c) => engine.trainChunk(c, { learningRate: 0.1 })),
        )),
      ];
      for (const r of results) {
        assert.ok(r.deviceClockMs, "a span from the timestamps");
        let timed = 0;
        for (const phase of Object.values(r.phases)) for (const v of phase) timed += v;
        spans.push({ ...r.deviceClockMs, timed });
      }
      spans.forEach((s, k) => {
        assert.ok(s.end >= s.start, `chunk ${k}: ends after it starts`);
        // Timestamps are ns, the span's ends rounded to doubles of ms: allow a microsecond.
        assert.ok(s.timed <= s.end - s.start + 1e-3, `chunk ${k}: passes inside the span`);
        if (k > 0) assert.ok(s.start >= spans[k - 1].end - 1e-3, `chunk ${k} after ${k - 1}`);
      });
    } finally {
      await engine.dispose();
    }
  },
});

Deno.test({
  name: "probe:gpu-chunks' wrappers log every submit and map of a chunk, then put the calls back",
  ignore: ignoreEngine,
  sanitizeResources: false,
  async fn() {
    const engine = await createGpuEngine({ spec: ODD, maxBatch: 6, seed: 5, timingEvery: 2 });
    const calls = () => [
      GPUQueue.prototype.submit,
      GPUBuffer.prototype.mapAsync,
      GPUQueue.prototype.writeBuffer,
      OffscreenCanvas.prototype.convertToBlob,
    ];
    const originals = calls();
    const events: ProbeEvent[] = [];
    const wrapped = wrapWebGpuCalls(events, performance.now());
    try {
      // Two chunks, the second called before the first returns.
      const lr = { learningRate: 0.1 };
      await Promise.all(
        [95, 96].map((s) => engine.trainChunk(randomChunk(ODD, 6, 24, s, false), lr)),
      );
    } finally {
      wrapped.restore();
      await engine.dispose();
    }
    const count = (call: ProbeEvent["call"]) => events.filter((e) => e.call === call).length;
    // The first chunk went in pieces (an idle GPU) and mapped its losses and timestamps while
    // the second was queued behind it; the second, with nothing behind it, read them through
    // the canvas.
    assert.equal(
      count("submit"),
      earlySubmitBreaks(4).length + 2,
      events.map((e) => e.call).join(),
    );
    assert.ok(count("map-call") >= 2, events.map((e) => e.call).join(", "));
    assert.equal(count("map-done"), count("map-call"));
    assert.equal(count("canvas-call"), 1);
    assert.equal(count("canvas-done"), 1);
    assert.ok(events.every((e) => e.ms >= 0 && e.at >= 0));
    assert.ok(wrapped.writeMs() > 0, "the chunk's input was written");
    assert.deepEqual(calls(), originals);
  },
});

Deno.test({
  name:
    "GPU engine: a chunk whose recording fails after its first piece went keeps that piece's step",
  ignore: ignoreEngine,
  sanitizeResources: false,
  async fn() {
    const batch = 6;
    // Scales refreshed every 2 steps: a step count off by one refreshes them at other steps.
    const make = () => qatEngine(batch);
    const chunk = randomChunk(ODD, batch, 4 * batch, 80, false);
    const next = randomChunk(ODD, batch, 3 * batch, 81, false);
    const lr = { learningRate: 0.3 };
    const [failing, reference] = [await make(), await make()];
    const dispatch = GPUComputePassEncoder.prototype.dispatchWorkgroups;
    try {
      // Dispatches of one iteration, counted on a one-iteration chunk of the reference's twin.
      let count = 0;
      GPUComputePassEncoder.prototype.dispatchWorkgroups = function (this, ...args) {
        count++;
        return dispatch.apply(this, args);
      };
      const counting = await make();
      await counting.trainChunk({ ...chunk, samples: batch }, lr);
      await counting.dispose();
      const perIteration = count;
      // The failing engine's recording throws in its second iteration, after the first went.
      count = 0;
      GPUComputePassEncoder.prototype.dispatchWorkgroups = function (this, ...args) {
        if (++count > perIteration) throw new Error("recording failed");
        return dispatch.apply(this, args);
      };
      await assert.rejects(() => failing.trainChunk(chunk, lr), /recording failed/);
      GPUComputePassEncoder.prototype.dispatchWorkgroups = dispatch;
      // The reference trains that first iteration alone, then both train the same chunk.
      await reference.trainChunk({ ...chunk, samples: batch }, lr);
      const got = await failing.trainChunk(next, lr);
      const want = await reference.trainChunk(next, lr);
      assert.deepEqual(got.loss, want.loss);
      assert.deepEqual(await failing.readParams(), await reference.readParams());
    } finally {
      GPUComputePassEncoder.prototype.dispatchWorkgroups = dispatch;
      await failing.dispose();
      await reference.dispose();
    }
  },
});
