/**
 * Creates and tracks the engine's GPU buffers, counting their bytes.
 *
 * @module
 */

/** Storage buffers written by kernels and copied both ways. */
export const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A registry of GPU buffers that counts the bytes it holds. */
export class BufferManager {
  readonly #device: GPUDevice;
  readonly #live = new Map<GPUBuffer, number>();
  #bytes = 0;

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** Creates a zeroed buffer of at least `bytes` (rounded up to 16, at least 16). */
  create(label: string, bytes: number, usage: number = STORAGE): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const buffer = this.#device.createBuffer({ label, size, usage });
    this.#live.set(buffer, size);
    this.#bytes += size;
    return buffer;
  }

  /** Destroys one buffer. */
  destroy(buffer: GPUBuffer): void {
    const size = this.#live.get(buffer);
    if (size === undefined) return;
    this.#live.delete(buffer);
    this.#bytes -= size;
    buffer.destroy();
  }

  /** Bytes of every live buffer. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Destroys every buffer. */
  destroyAll(): void {
    for (const b of this.#live.keys()) b.destroy();
    this.#live.clear();
    this.#bytes = 0;
  }
}

/**
 * queue.writeBuffer of a typed array (offset and size in elements). Deno accepts views over
 * SharedArrayBuffers (the runner's chunks), which the DOM types do not admit: hence the cast.
 */
export function writeTo(
  queue: GPUQueue,
  buffer: GPUBuffer,
  offset: number,
  data: ArrayBufferView | ArrayBuffer,
  dataOffset?: number,
  size?: number,
): void {
  queue.writeBuffer(buffer, offset, data as ArrayBuffer, dataOffset, size);
}
