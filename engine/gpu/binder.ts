/**
 * Binds the engine's kernels: compiled pipelines from the cache, bind groups over the engine's
 * buffers, and the small uniform buffers of each bound kernel's constants.
 *
 * @module
 */
import { type BufferManager, writeTo } from "./buffers.ts";
import {
  type Binding,
  bindKernel,
  type BoundKernel,
  type KernelSource,
  PipelineCache,
} from "./pipelines.ts";

/** What binding a GEMM needs (see `bindGemm`): the engine's binder, or the kernel harness. */
export interface GemmBinder {
  /** Binds `buffers` to the kernel of `source`. */
  bind(source: KernelSource, buffers: Binding[]): BoundKernel;
  /** A uniform buffer of u32 words (those at `floats` written as f32). */
  uniform(label: string, words: ArrayLike<number>, floats?: ReadonlySet<number>): GPUBuffer;
}

/** The engine's binder: compiles each kernel once and makes its uniforms. */
export class KernelBinder implements GemmBinder {
  readonly #device: GPUDevice;
  readonly #buffers: BufferManager;
  /** The compiled kernels (and the iteration block's layout). */
  readonly cache: PipelineCache;
  /**
   * Where new uniform buffers are listed while set (so that they are freed with the bind groups
   * that use them); null: they live as long as the engine.
   */
  collect: GPUBuffer[] | null = null;
  /** The device's workgroup memory in bytes (what a GEMM tile may use). */
  readonly maxWorkgroupBytes: number;

  constructor(device: GPUDevice, buffers: BufferManager) {
    this.#device = device;
    this.maxWorkgroupBytes = device.limits.maxComputeWorkgroupStorageSize;
    this.#buffers = buffers;
    this.cache = new PipelineCache(device);
  }

  /** Binds `buffers` to the kernel of `source` (compiled on first use). */
  bind(source: KernelSource, buffers: Binding[]): BoundKernel {
    return bindKernel(this.#device, this.cache.get(source), buffers);
  }

  /** A uniform buffer of u32 words (those at `floats` written as f32), 16-byte padded. */
  uniform(
    label: string,
    words: ArrayLike<number>,
    floats: ReadonlySet<number> = new Set(),
  ): GPUBuffer {
    const data = new ArrayBuffer(Math.max(16, Math.ceil(words.length / 4) * 16));
    const u32 = new Uint32Array(data), f32 = new Float32Array(data);
    for (let i = 0; i < words.length; i++) {
      if (floats.has(i)) f32[i] = words[i];
      else u32[i] = words[i];
    }
    const buffer = this.#buffers.create(
      label,
      data.byteLength,
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    );
    writeTo(this.#device.queue, buffer, 0, data);
    this.collect?.push(buffer);
    return buffer;
  }

  /** Runs `fn` with new uniforms listed in `into`. */
  collecting<T>(into: GPUBuffer[], fn: () => T): T {
    this.collect = into;
    try {
      return fn();
    } finally {
      this.collect = null;
    }
  }
}

/** A byte range of `floats` floats of `buffer` from float `floatOffset` (at least 4 bytes). */
export function floatRange(buffer: GPUBuffer, floatOffset: number, floats: number): Binding {
  return { buffer, offset: floatOffset * 4, size: Math.max(4, floats * 4) };
}
