/**
 * Reading a buffer back through an `OffscreenCanvas` instead of `mapAsync`.
 *
 * Deno's `mapAsync` ends every readback with a fixed 10 ms sleep (see "The readback floor" in
 * this folder's README). `OffscreenCanvas.convertToBlob` of a canvas with a `webgpu` context
 * reads its texture back on its own path: it submits a texture-to-buffer copy and waits for that
 * submission alone, with no sleep (Deno 2.9 `ext/webgpu/canvas.rs`, `copy_texture_to_vec`). So
 * the bytes to read are copied into the canvas's `rgba8unorm` texture (4 bytes a texel, exactly
 * as they are), the canvas is encoded as an uncompressed BMP and the texels are taken back out
 * of it. The wait blocks the JavaScript thread until the GPU has done every earlier submission,
 * as `mapAsync`'s own wait does.
 *
 * @example Reading 8 bytes of a storage buffer (needs a WebGPU adapter)
 * ```ts ignore
 * import { CanvasReader } from "./canvas_readback.ts";
 * const reader = new CanvasReader(device);
 * const encoder = device.createCommandEncoder();
 * reader.copy(encoder, buffer, 0, 8);
 * device.queue.submit([encoder.finish()]);
 * const bytes = new Uint8Array(await reader.read(8));
 * ```
 *
 * @module
 */

/** Whether this runtime has `OffscreenCanvas` (Deno has it; a `webgpu` context may still fail). */
export function hasOffscreenCanvas(): boolean {
  return typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === "function";
}

/** The texture shape that holds `bytes` (a multiple of 4) as rgba8 texels. */
export interface CanvasShape {
  /** Texels a row: all of them when they fit one row, else a multiple of 64 (256-byte rows). */
  width: number;
  /** Rows: the full ones, plus one for a partial last row. */
  height: number;
  /** Full rows (each `width` texels). */
  fullRows: number;
  /** Texels of the partial last row (0 when there is none). */
  lastRow: number;
}

/**
 * The texture shape for `bytes` with textures at most `maxDimension` texels wide and high: one
 * row when it fits, else rows of a multiple of 64 texels (a buffer-to-texture copy of several
 * rows needs `bytesPerRow` to be a multiple of 256).
 *
 * @example
 * ```ts
 * import { canvasShape } from "./canvas_readback.ts";
 * console.assert(canvasShape(4, 8192).width === 1);
 * const s = canvasShape(4 * 10000, 8192);
 * console.assert(s.width === 8192 && s.fullRows === 1 && s.lastRow === 1808 && s.height === 2);
 * ```
 */
export function canvasShape(bytes: number, maxDimension: number): CanvasShape {
  if (!(bytes > 0) || bytes % 4 !== 0) {
    throw new RangeError(`Expected a positive multiple of 4 bytes to read but found ${bytes}`);
  }
  const texels = bytes / 4;
  if (texels <= maxDimension) return { width: texels, height: 1, fullRows: 1, lastRow: 0 };
  const width = Math.floor(maxDimension / 64) * 64;
  const fullRows = Math.floor(texels / width);
  const lastRow = texels - fullRows * width;
  const height = fullRows + (lastRow > 0 ? 1 : 0);
  if (height > maxDimension) {
    throw new RangeError(
      `Expected at most ${maxDimension * width * 4} bytes for a canvas readback but found ${bytes}`,
    );
  }
  return { width, height, fullRows, lastRow };
}

/** One canvas of one shape and its context. */
interface Canvas {
  canvas: OffscreenCanvas;
  context: GPUCanvasContext;
  shape: CanvasShape;
}

/**
 * Reads buffers back through `OffscreenCanvas` webgpu contexts, one canvas per size read (kept,
 * so that a size read again costs no new texture). {@linkcode CanvasReader.copy} records the
 * copy into the canvas; after the submit, {@linkcode CanvasReader.read} returns the bytes.
 */
export class CanvasReader {
  readonly #device: GPUDevice;
  readonly #canvases = new Map<number, Canvas>();

  /** A reader for `device`'s buffers. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  #canvas(bytes: number): Canvas {
    let c = this.#canvases.get(bytes);
    if (c) return c;
    const shape = canvasShape(bytes, this.#device.limits.maxTextureDimension2D);
    const canvas = new OffscreenCanvas(shape.width, shape.height);
    const context = canvas.getContext("webgpu") as unknown as GPUCanvasContext | null;
    if (!context) {
      throw new Error(
        "Expected OffscreenCanvas.getContext('webgpu') to give a context but it gave null",
      );
    }
    context.configure({
      device: this.#device,
      format: "rgba8unorm",
      usage: GPUTextureUsage.COPY_DST | GPUTextureUsage.RENDER_ATTACHMENT,
      // Deno copies the texels as they are; "premultiplied" only says how a display would blend.
      alphaMode: "premultiplied",
    });
    c = { canvas, context, shape };
    this.#canvases.set(bytes, c);
    return c;
  }

  /**
   * Records a copy of `bytes` (a positive multiple of 4) of `src` from `offset` (a multiple of
   * 4) into the canvas that {@linkcode CanvasReader.read} of the same size reads.
   */
  copy(encoder: GPUCommandEncoder, src: GPUBuffer, offset: number, bytes: number): void {
    if (offset % 4 !== 0) {
      throw new RangeError(`Expected a source offset that is a multiple of 4 but found ${offset}`);
    }
    const { context, shape } = this.#canvas(bytes);
    const texture = context.getCurrentTexture();
    const rowBytes = shape.width * 4;
    // bytesPerRow must be a multiple of 256 when given; one row needs none.
    const layout = shape.fullRows > 1 ? { bytesPerRow: rowBytes } : {};
    encoder.copyBufferToTexture(
      { buffer: src, offset, ...layout },
      { texture },
      [shape.width, shape.fullRows],
    );
    if (shape.lastRow > 0) {
      encoder.copyBufferToTexture(
        { buffer: src, offset: offset + shape.fullRows * rowBytes },
        { texture, origin: [0, shape.fullRows] },
        [shape.lastRow, 1],
      );
    }
  }

  /**
   * The `bytes` last copied into the canvas of that size by a submitted
   * {@linkcode CanvasReader.copy}. Blocks the thread until the GPU has done every submission
   * so far (Deno reads the texture back synchronously); no fixed sleep follows.
   */
  async read(bytes: number): Promise<ArrayBuffer> {
    const c = this.#canvases.get(bytes);
    if (!c) throw new Error(`Expected a copy of ${bytes} bytes recorded before reading them`);
    const blob = await c.canvas.convertToBlob({ type: "image/bmp" });
    return texelsOfBmp(new Uint8Array(await blob.arrayBuffer()), c.shape, bytes);
  }

  /** Forgets the canvases (their textures go with them). */
  dispose(): void {
    for (const c of this.#canvases.values()) c.context.unconfigure();
    this.#canvases.clear();
  }
}

/** The byte of a 32-bit texel that a BMP channel mask selects (0 for 0x000000ff, ...). */
function maskByte(mask: number, what: string): number {
  for (let b = 0; b < 4; b++) if (mask >>> 0 === (0xff << (8 * b)) >>> 0) return b;
  throw new Error(`Expected a BMP ${what} mask of one whole byte but found 0x${mask.toString(16)}`);
}

/**
 * The first `bytes` of the canvas's texels, in texture order (rows top down), from its 32-bit
 * BMP encoding (BI_BITFIELDS, whose masks say which byte holds which channel; rows bottom up
 * unless the height is negative).
 */
export function texelsOfBmp(bmp: Uint8Array, shape: CanvasShape, bytes: number): ArrayBuffer {
  const view = new DataView(bmp.buffer, bmp.byteOffset, bmp.byteLength);
  if (bmp.length < 54 || view.getUint16(0) !== 0x424d) {
    throw new Error(`Expected a BMP file but found ${bmp.length} bytes without its 'BM' mark`);
  }
  const pixels = view.getUint32(10, true);
  const width = view.getInt32(18, true);
  const rawHeight = view.getInt32(22, true);
  const bits = view.getUint16(28, true);
  const compression = view.getUint32(30, true);
  const height = Math.abs(rawHeight);
  if (width !== shape.width || height !== shape.height || bits !== 32) {
    throw new Error(
      `Expected a ${shape.width} x ${shape.height} BMP of 32-bit texels but found ` +
        `${width} x ${height} of ${bits}-bit`,
    );
  }
  // BI_BITFIELDS (3) and ALPHABITFIELDS (6) give masks: which byte of a texel holds R, G, B, A.
  if (compression !== 3 && compression !== 6) {
    throw new Error(
      `Expected a BMP with channel masks (compression 3 or 6) but found ${compression}`,
    );
  }
  const [r, g, b, a] = [54, 58, 62, 66].map((at, c) =>
    maskByte(view.getUint32(at, true), "RGBA"[c])
  );
  const out = new Uint8Array(bytes);
  const rowBytes = width * 4;
  for (let row = 0; row * rowBytes < bytes; row++) {
    const from = pixels + (rawHeight > 0 ? height - 1 - row : row) * rowBytes;
    const to = row * rowBytes;
    const end = Math.min(rowBytes, bytes - to);
    for (let i = 0; i < end; i += 4) {
      out[to + i] = bmp[from + i + r];
      out[to + i + 1] = bmp[from + i + g];
      out[to + i + 2] = bmp[from + i + b];
      out[to + i + 3] = bmp[from + i + a];
    }
  }
  return out.buffer;
}
