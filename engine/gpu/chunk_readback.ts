/**
 * A call's small results (losses, timestamps, scales) read back together, by `mapAsync` of their
 * staging copies or, when nothing is queued behind the call, through a canvas.
 *
 * Deno's `mapAsync` sleeps 10 ms after the queue is idle (see "The readback floor" in this
 * folder's README). While a later call is queued, that sleep is hidden: the later call trains
 * during it. When nothing is queued behind (the last chunk of a run, a call awaited on its own),
 * the sleep is the caller's wait: there the results go through {@linkcode CanvasReader} instead
 * (~0.1 ms on the H200 after the GPU is done). Each call records both copies (a few KiB), and
 * decides which to read when its work is done. The canvas is used only after
 * {@linkcode drainCanvas} has read a known pattern back through it exactly.
 *
 * @module
 */
import { CanvasReader, hasOffscreenCanvas } from "./canvas_readback.ts";
import { readStaged, stage, type SubmitTurn } from "./submit.ts";

/** Reads through the canvas only up to this many bytes (BMP encoding grows with size). */
export const DRAIN_CANVAS_MAX_BYTES = 64 * 1024;

/** Bytes of the pattern {@linkcode drainCanvas} checks (not a multiple of 16: its own canvas). */
const CHECK_BYTES = 1028;

/** A checked canvas reader and the buffer a call's results are packed into for it. */
export interface DrainCanvas {
  reader: CanvasReader;
  /** {@linkcode DRAIN_CANVAS_MAX_BYTES}, copy source and destination. */
  packed: GPUBuffer;
  dispose(): void;
}

/**
 * A canvas reader for `device` once it has read back, exactly, a pattern holding every byte
 * value in every byte of a texel (alpha 0 included, which premultiplication or colour
 * conversion would change); null where there is no `OffscreenCanvas`, no `webgpu` context or
 * the bytes came back changed (then calls read by `mapAsync` only).
 */
export async function drainCanvas(device: GPUDevice): Promise<DrainCanvas | null> {
  if (!hasOffscreenCanvas()) return null;
  const reader = new CanvasReader(device);
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const check = device.createBuffer({ label: "canvas readback check", size: CHECK_BYTES, usage });
  try {
    const want = new Uint8Array(CHECK_BYTES);
    for (let i = 0; i < CHECK_BYTES; i++) want[i] = (i * 97 + (i >> 8)) & 0xff;
    device.queue.writeBuffer(check, 0, want);
    const encoder = device.createCommandEncoder();
    reader.copy(encoder, check, 0, CHECK_BYTES);
    device.queue.submit([encoder.finish()]);
    const got = new Uint8Array(await reader.read(CHECK_BYTES));
    if (got.length === CHECK_BYTES && got.every((v, i) => v === want[i])) {
      const size = DRAIN_CANVAS_MAX_BYTES;
      const packed = device.createBuffer({ label: "drain readback", size, usage });
      return { reader, packed, dispose: () => (packed.destroy(), reader.dispose()) };
    }
  } catch {
    // No webgpu context or an unreadable BMP: mapAsync it is.
  } finally {
    check.destroy();
  }
  reader.dispose();
  return null;
}

/**
 * One call's readbacks: {@linkcode ChunkReadback.add} each result while recording, then
 * {@linkcode ChunkReadback.read} after the submit.
 */
export class ChunkReadback {
  readonly #device: GPUDevice;
  readonly #encoder: GPUCommandEncoder;
  readonly #canvas: DrainCanvas | null;
  readonly #staged: GPUBuffer[] = [];
  readonly #parts: { src: GPUBuffer; offset: number; bytes: number; at: number }[] = [];
  #bytes = 0;
  #recorded = false;

  /** Readbacks recorded into `encoder`, through `canvas` where they may (null: `mapAsync` only). */
  constructor(device: GPUDevice, encoder: GPUCommandEncoder, canvas: DrainCanvas | null) {
    this.#device = device;
    this.#encoder = encoder;
    this.#canvas = canvas;
  }

  /** Adds `bytes` of `src` from `offset` (multiples of 4); returns its index among the results. */
  add(src: GPUBuffer, offset: number, bytes: number): number {
    if (this.#recorded) throw new Error("Expected results added before the read is recorded");
    this.#staged.push(stage(this.#device, this.#encoder, src, offset, bytes));
    this.#parts.push({ src, offset, bytes, at: this.#bytes });
    this.#bytes += Math.ceil(bytes / 16) * 16;
    return this.#parts.length - 1;
  }

  /** Whether the results may go through the canvas (within its size, and a reader checked). */
  #canvasFits(): boolean {
    return this.#canvas !== null && this.#bytes > 0 && this.#bytes <= DRAIN_CANVAS_MAX_BYTES;
  }

  /** Records the copies into the canvas (call once, after the last add and before finishing). */
  record(): void {
    this.#recorded = true;
    if (!this.#canvasFits()) return;
    const { reader, packed: buffer } = this.#canvas!;
    for (const p of this.#parts) {
      const bytes = Math.ceil(p.bytes / 4) * 4;
      if (bytes > 0) this.#encoder.copyBufferToBuffer(p.src, p.offset, buffer, p.at, bytes);
    }
    reader.copy(this.#encoder, buffer, 0, this.#bytes);
  }

  /**
   * The results, in the order added, once the call's work is done. Reads through the canvas
   * when no later call has taken a turn behind `turn` (then says `mapping` after the read),
   * else maps the staging copies (saying `mapping` once the maps are called, so the later call
   * submits and trains during `mapAsync`'s sleep).
   */
  async read(turn: SubmitTurn): Promise<ArrayBuffer[]> {
    if (this.#recorded && this.#canvasFits() && turn.last()) {
      let all: ArrayBuffer;
      try {
        all = await this.#canvas!.reader.read(this.#bytes);
      } finally {
        for (const b of this.#staged) b.destroy();
        turn.mapping();
      }
      return this.#parts.map((p) => all.slice(p.at, p.at + p.bytes));
    }
    const reading = Promise.all(this.#staged.map(readStaged));
    turn.mapping();
    // Staging buffers are whole 16-byte blocks: each result is its own bytes.
    return (await reading).map((b, k) => b.slice(0, this.#parts[k].bytes));
  }
}
