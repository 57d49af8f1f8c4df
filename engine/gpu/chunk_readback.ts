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
 * {@linkcode drainCanvas} has read known patterns back through it exactly.
 *
 * @module
 */
import { CanvasReader, checkCanvasReader, hasOffscreenCanvas } from "./canvas_readback.ts";
import { readStaged, stage, type SubmitTurn } from "./submit.ts";

/** Reads through the canvas only up to this many bytes (BMP encoding grows with size). */
export const DRAIN_CANVAS_MAX_BYTES = 64 * 1024;

/** A checked canvas reader and the buffer a call's results are packed into for it. */
export interface DrainCanvas {
  reader: CanvasReader;
  /** {@linkcode DRAIN_CANVAS_MAX_BYTES}, copy source and destination. */
  packed: GPUBuffer;
  dispose(): void;
}

/**
 * A canvas reader for `device` once it has read patterns back exactly
 * (`checkCanvasReader`); null where there is no `OffscreenCanvas`, no `webgpu` context or the
 * bytes came back changed (then calls read by `mapAsync` only).
 */
export async function drainCanvas(device: GPUDevice): Promise<DrainCanvas | null> {
  if (!hasOffscreenCanvas()) return null;
  const reader = new CanvasReader(device);
  if (await checkCanvasReader(reader, device)) {
    const size = DRAIN_CANVAS_MAX_BYTES;
    const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const packed = device.createBuffer({ label: "drain readback", size, usage });
    return { reader, packed, dispose: () => (packed.destroy(), reader.dispose()) };
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
