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

import { gridOf } from "./kernels/grid.ts";

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

/**
 * The bytes of the canvas that serves a read of `bytes`: reads of at most 4 KiB get a canvas of
 * their own size (scales, counts: a few fixed sizes); larger ones share the canvas of the next
 * of the geometric sizes 4 KiB × 2^(k/4) (rounded up to 256 bytes), so that reads of varying
 * sizes use a few canvases (each a texture kept) at most ~19 % larger than the bytes read.
 *
 * @example
 * ```ts
 * import { canvasBucket } from "./canvas_readback.ts";
 * console.assert(canvasBucket(136) === 136);
 * console.assert(canvasBucket(4100) === canvasBucket(4864));
 * console.assert(canvasBucket(2_000_000) >= 2_000_000 && canvasBucket(2_000_000) < 2_380_000);
 * ```
 */
export function canvasBucket(bytes: number): number {
  if (bytes <= BUCKET_FROM) return bytes;
  const k = Math.ceil(4 * Math.log2(bytes / BUCKET_FROM) - 1e-9);
  for (let j = Math.max(0, k - 1);; j++) {
    const b = Math.ceil((BUCKET_FROM * 2 ** (j / 4)) / 256) * 256;
    if (b >= bytes) return b;
  }
}

/** Reads of at most this many bytes get a canvas of their own size. */
const BUCKET_FROM = 4096;

/** One canvas of one shape and its context, and the bytes its last copy wrote. */
interface Canvas {
  canvas: OffscreenCanvas;
  context: GPUCanvasContext;
  shape: CanvasShape;
  copied: number;
  /**
   * For a canvas of several rows: the buffer its bytes are swizzled in on the GPU before they
   * go to the texture in reversed row order (see {@linkcode SWIZZLE_WGSL}), and its bind group.
   */
  swizzle: { buffer: GPUBuffer; group: GPUBindGroup } | null;
}

/**
 * Swaps bytes 0 and 2 of every word (RGBA to BGRA) in place. A canvas of several rows gets its
 * bytes swizzled so and copied into the texture's rows bottom up: Deno's BMP (BGRA texels, rows
 * bottom up) then holds them in order from its pixel offset, and a read is one `blob.slice`.
 */
const SWIZZLE_WGSL = `
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = id.x + id.y * n.x * 256u;
  if (i >= arrayLength(&data)) { return; }
  let v = data[i];
  data[i] = (v & 0xff00ff00u) | ((v >> 16u) & 0xffu) | ((v & 0xffu) << 16u);
}`;

/**
 * Reads buffers back through `OffscreenCanvas` webgpu contexts, one canvas per
 * {@linkcode canvasBucket} of the sizes read (kept, so that a size read again costs no new
 * texture). {@linkcode CanvasReader.copy} records the copy into the canvas; after the submit,
 * {@linkcode CanvasReader.read} of the same size returns the bytes.
 */
export class CanvasReader {
  readonly #device: GPUDevice;
  readonly #canvases = new Map<number, Canvas>();
  #pipeline: GPUComputePipeline | null = null;

  /** A reader for `device`'s buffers. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** Canvases made so far (one per bucket read). */
  get canvases(): number {
    return this.#canvases.size;
  }

  /** The canvas size of a read of `bytes`: its bucket, or `bytes` where the bucket is too big. */
  #bucket(bytes: number): number {
    const max = this.#device.limits.maxTextureDimension2D;
    const bucket = canvasBucket(bytes);
    return bucket > max * Math.floor(max / 64) * 64 * 4 ? bytes : bucket;
  }

  #canvas(bytes: number): Canvas {
    const bucket = this.#bucket(bytes);
    let c = this.#canvases.get(bucket);
    if (c) return c;
    const shape = canvasShape(bucket, this.#device.limits.maxTextureDimension2D);
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
    c = { canvas, context, shape, copied: 0, swizzle: null };
    if (shape.height > 1) {
      this.#pipeline ??= this.#device.createComputePipeline({
        label: "canvas readback swizzle",
        layout: "auto",
        compute: {
          module: this.#device.createShaderModule({ code: SWIZZLE_WGSL }),
          entryPoint: "main",
        },
      });
      const buffer = this.#device.createBuffer({
        label: "canvas readback swizzle",
        size: bucket,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      const group = this.#device.createBindGroup({
        layout: this.#pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer } }],
      });
      c.swizzle = { buffer, group };
    }
    this.#canvases.set(bucket, c);
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
    canvasShape(bytes, this.#device.limits.maxTextureDimension2D);
    const c = this.#canvas(bytes);
    const texture = c.context.getCurrentTexture();
    const width = c.shape.width, texels = bytes / 4;
    if (c.swizzle) {
      // Swizzled on the GPU, then row j of the bytes to texture row height - 1 - j.
      encoder.copyBufferToBuffer(src, offset, c.swizzle.buffer, 0, bytes);
      const pass = encoder.beginComputePass();
      pass.setPipeline(this.#pipeline!);
      pass.setBindGroup(0, c.swizzle.group);
      pass.dispatchWorkgroups(...gridOf(Math.ceil(texels / 256)));
      pass.end();
      for (let j = 0; j * width < texels; j++) {
        encoder.copyBufferToTexture(
          { buffer: c.swizzle.buffer, offset: j * width * 4 },
          { texture, origin: [0, c.shape.height - 1 - j] },
          [Math.min(width, texels - j * width), 1],
        );
      }
    } else encoder.copyBufferToTexture({ buffer: src, offset }, { texture }, [texels, 1]);
    c.copied = bytes;
  }

  /**
   * The `bytes` last copied into the canvas of that size by a submitted
   * {@linkcode CanvasReader.copy}. Blocks the thread until the GPU has done every submission
   * so far (Deno reads the texture back synchronously); no fixed sleep follows. Only the rows
   * holding the bytes are taken out of the BMP and decoded (a canvas of several rows needs no
   * decoding: its bytes were swizzled on the GPU and lie in order in Deno's BMP).
   */
  async read(bytes: number): Promise<ArrayBuffer> {
    const c = this.#canvases.get(this.#bucket(bytes));
    if (!c || c.copied !== bytes) {
      throw new Error(`Expected a copy of ${bytes} bytes recorded before reading them`);
    }
    const blob = await c.canvas.convertToBlob({ type: "image/bmp" });
    const header = bmpHeader(new Uint8Array(await blob.slice(0, BMP_HEADER_BYTES).arrayBuffer()));
    checkBmp(header, c.shape);
    if (!c.swizzle) {
      const { from, to } = bmpRowsOf(header, bytes);
      return texelsOfBmpRows(await blob.slice(from, to).arrayBuffer(), header, bytes);
    }
    const [r, g, b, a] = header.channels;
    if (header.bottomUp && r === 2 && g === 1 && b === 0 && a === 3) {
      // Deno's BMP: the bytes lie in order from the pixel offset.
      return await blob.slice(header.pixels, header.pixels + bytes).arrayBuffer();
    }
    // Another encoder's BMP: its texels in texture order, then the GPU's order undone.
    const all = c.shape.width * c.shape.height * 4;
    const { from, to } = bmpRowsOf(header, all);
    const texels = texelsOfBmpRows(await blob.slice(from, to).arrayBuffer(), header, all);
    return unswizzleRows(texels, c.shape.width, c.shape.height, bytes);
  }

  /** Forgets the canvases (their textures and swizzle buffers go with them). */
  dispose(): void {
    for (const c of this.#canvases.values()) {
      c.context.unconfigure();
      c.swizzle?.buffer.destroy();
    }
    this.#canvases.clear();
  }
}

/**
 * Whether `reader` reads bytes back exactly on `device`: a one-row canvas (1028 bytes) and one of
 * two rows (swizzled on the GPU) each read back a pattern holding every byte value in every byte
 * of a texel, alpha 0 included, which premultiplication or colour conversion would change. The
 * canvas path rests on image encoding that WebGPU does not specify, so a reader is used only
 * after this holds; false also where there is no `webgpu` context or the BMP is unreadable.
 */
export async function checkCanvasReader(reader: CanvasReader, device: GPUDevice): Promise<boolean> {
  const sizes = [1028, 4 * (device.limits.maxTextureDimension2D + 3)];
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const check = device.createBuffer({ label: "canvas readback check", size: sizes[1], usage });
  try {
    for (const bytes of sizes) {
      const want = new Uint8Array(bytes);
      for (let i = 0; i < bytes; i++) want[i] = (i * 97 + (i >> 8)) & 0xff;
      device.queue.writeBuffer(check, 0, want);
      const encoder = device.createCommandEncoder();
      reader.copy(encoder, check, 0, bytes);
      device.queue.submit([encoder.finish()]);
      const got = new Uint8Array(await reader.read(bytes));
      if (got.length !== bytes || !got.every((v, i) => v === want[i])) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    check.destroy();
  }
}

/** Bytes of a BMP file's headers with BITFIELDS masks (file header 14, BITMAPINFOHEADER 40, masks). */
const BMP_HEADER_BYTES = 70;

/** What {@linkcode texelsOfBmp} needs of a 32-bit BMP's headers. */
interface BmpHeader {
  /** Where the pixel rows start in the file. */
  pixels: number;
  width: number;
  /** Rows (the absolute value of the file's height). */
  height: number;
  /** Whether the file lists rows bottom up (a positive height). */
  bottomUp: boolean;
  /** Which byte of a texel holds R, G, B and A. */
  channels: [number, number, number, number];
  bits: number;
  compression: number;
}

/** The byte of a 32-bit texel that a BMP channel mask selects (0 for 0x000000ff, ...). */
function maskByte(mask: number, what: string): number {
  for (let b = 0; b < 4; b++) if (mask >>> 0 === (0xff << (8 * b)) >>> 0) return b;
  throw new Error(`Expected a BMP ${what} mask of one whole byte but found 0x${mask.toString(16)}`);
}

/** The headers of a 32-bit BMP with channel masks (BI_BITFIELDS or ALPHABITFIELDS). */
function bmpHeader(bmp: Uint8Array): BmpHeader {
  const view = new DataView(bmp.buffer, bmp.byteOffset, bmp.byteLength);
  if (bmp.length < 54 || view.getUint16(0) !== 0x424d) {
    throw new Error(`Expected a BMP file but found ${bmp.length} bytes without its 'BM' mark`);
  }
  const rawHeight = view.getInt32(22, true);
  const compression = view.getUint32(30, true);
  // BI_BITFIELDS (3) and ALPHABITFIELDS (6) give masks: which byte of a texel holds R, G, B, A.
  if (compression !== 3 && compression !== 6) {
    throw new Error(
      `Expected a BMP with channel masks (compression 3 or 6) but found ${compression}`,
    );
  }
  if (bmp.length < BMP_HEADER_BYTES) {
    throw new Error(`Expected ${BMP_HEADER_BYTES} bytes of BMP headers but found ${bmp.length}`);
  }
  const [r, g, b, a] = [54, 58, 62, 66].map((at, c) =>
    maskByte(view.getUint32(at, true), "RGBA"[c])
  );
  return {
    pixels: view.getUint32(10, true),
    width: view.getInt32(18, true),
    height: Math.abs(rawHeight),
    bottomUp: rawHeight > 0,
    channels: [r, g, b, a],
    bits: view.getUint16(28, true),
    compression,
  };
}

function checkBmp(h: BmpHeader, shape: CanvasShape): void {
  if (h.width !== shape.width || h.height !== shape.height || h.bits !== 32) {
    throw new Error(
      `Expected a ${shape.width} x ${shape.height} BMP of 32-bit texels but found ` +
        `${h.width} x ${h.height} of ${h.bits}-bit`,
    );
  }
}

/** The file's byte range `[from, to)` of the rows that hold the first `bytes` of the texels. */
function bmpRowsOf(h: BmpHeader, bytes: number): { from: number; to: number } {
  const rowBytes = h.width * 4, rows = Math.ceil(bytes / rowBytes);
  const first = h.bottomUp ? h.height - rows : 0;
  return { from: h.pixels + first * rowBytes, to: h.pixels + (first + rows) * rowBytes };
}

/**
 * The first `bytes` of a canvas's texels, in texture order (rows top down), from the rows of its
 * BMP that hold them (`rows`: the file's bytes {@linkcode bmpRowsOf} names, in file order). BGRA
 * texels (Deno's masks) are swapped back a 32-bit word at a time; RGBA rows are copied whole.
 */
function texelsOfBmpRows(rows: ArrayBuffer, h: BmpHeader, bytes: number): ArrayBuffer {
  const width = h.width, texels = bytes / 4, n = Math.ceil(texels / width);
  if (rows.byteLength !== n * width * 4) {
    throw new RangeError(
      `Expected ${n} BMP rows of ${width} texels but found ${rows.byteLength} bytes`,
    );
  }
  const out = new ArrayBuffer(bytes);
  const [r, g, b, a] = h.channels;
  const bgra = r === 2 && g === 1 && b === 0 && a === 3;
  const rgba = r === 0 && g === 1 && b === 2 && a === 3;
  const src = new Int32Array(rows), dst = new Int32Array(out);
  const srcBytes = new Uint8Array(rows), dstBytes = new Uint8Array(out);
  for (let row = 0; row < n; row++) {
    const from = (h.bottomUp ? n - 1 - row : row) * width, to = row * width;
    const count = Math.min(width, texels - to);
    if (rgba) dst.set(src.subarray(from, from + count), to);
    else if (bgra) swapRedBlue(src, from, dst, to, count);
    else {
      for (let i = 0; i < count; i++) {
        const f = 4 * (from + i), t = 4 * (to + i);
        dstBytes[t] = srcBytes[f + r];
        dstBytes[t + 1] = srcBytes[f + g];
        dstBytes[t + 2] = srcBytes[f + b];
        dstBytes[t + 3] = srcBytes[f + a];
      }
    }
  }
  return out;
}

/**
 * The first `bytes` of the bytes a canvas of several rows was given, from its texels in texture
 * order (`width` x `height`): row j of the bytes is texture row `height - 1 - j`, each word with
 * bytes 0 and 2 swapped (what {@linkcode CanvasReader.copy} does on the GPU), undone.
 */
export function unswizzleRows(
  texels: ArrayBuffer,
  width: number,
  height: number,
  bytes: number,
): ArrayBuffer {
  const out = new ArrayBuffer(bytes), n = bytes / 4;
  const src = new Int32Array(texels), dst = new Int32Array(out);
  for (let j = 0; j * width < n; j++) {
    swapRedBlue(src, (height - 1 - j) * width, dst, j * width, Math.min(width, n - j * width));
  }
  return out;
}

/** `count` texels from `src[from]` to `dst[to]` with bytes 0 and 2 of each swapped. */
function swapRedBlue(src: Int32Array, from: number, dst: Int32Array, to: number, count: number) {
  for (let i = 0; i < count; i++) {
    const v = src[from + i];
    dst[to + i] = (v & 0xff00ff00) | ((v >>> 16) & 0xff) | ((v & 0xff) << 16);
  }
}

/**
 * The first `bytes` of the canvas's texels, in texture order (rows top down), from its whole
 * 32-bit BMP encoding (BI_BITFIELDS, whose masks say which byte holds which channel; rows bottom
 * up unless the height is negative).
 */
export function texelsOfBmp(bmp: Uint8Array, shape: CanvasShape, bytes: number): ArrayBuffer {
  const h = bmpHeader(bmp);
  checkBmp(h, shape);
  const { from, to } = bmpRowsOf(h, bytes);
  if (to > bmp.length) throw new RangeError(`Expected ${to} bytes of BMP but found ${bmp.length}`);
  return texelsOfBmpRows(bmp.slice(from, to).buffer, h, bytes);
}
