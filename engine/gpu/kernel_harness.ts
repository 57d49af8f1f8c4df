/**
 * Runs single engine kernels outside the engine, for kernel tests and micro-benchmarks: buffers
 * from host arrays, an iteration uniform block, bound GEMMs planned as the engine plans them,
 * and reads back.
 *
 * @module
 */
import { requestGpuDevice } from "./device.ts";
import { bindGemm, type GemmFields } from "./gemm_bind.ts";
import { gemmDispatch, type GemmPlan, gemmReduceDispatch } from "./gemm_plan.ts";
import {
  type Binding,
  bindKernel,
  type BoundKernel,
  ITER_STRIDE,
  type KernelSource,
  PipelineCache,
} from "./pipelines.ts";

/** One iteration block: the batch's first sample, its rows and the learning rate. */
export interface IterBlock {
  s0: number;
  rows: number;
  lr?: number;
}

export type { GemmFields } from "./gemm_bind.ts";

/** A bound GEMM (and its split-K reduction): record it into a pass. */
export interface BoundGemm {
  plan: GemmPlan;
  kernels: BoundKernel[];
  /** Records its dispatches for an `m x n` output. */
  record(pass: GPUComputePassEncoder, m: number, n: number): void;
}

/** A device with helpers to make buffers, bind kernels and read results. */
export class KernelHarness {
  readonly device: GPUDevice;
  readonly cache: PipelineCache;
  /** Whether `timestamp-query` is enabled. */
  readonly timestamps: boolean;
  /** The adapter, in words. */
  readonly description: string;
  /** The adapter's name when it is a software one (timings say nothing about a GPU). */
  readonly software?: string;
  readonly #buffers: GPUBuffer[] = [];
  #iterations: { buffer: GPUBuffer; group: GPUBindGroup } | null = null;

  private constructor(
    device: GPUDevice,
    timestamps: boolean,
    description: string,
    software?: string,
  ) {
    this.device = device;
    this.cache = new PipelineCache(device);
    this.timestamps = timestamps;
    this.description = description;
    this.software = software;
  }

  /** A harness over a new device (throws when there is no adapter). */
  static async create(): Promise<KernelHarness> {
    const gpu = await requestGpuDevice();
    return new KernelHarness(gpu.device, gpu.timestamps, gpu.description, gpu.software);
  }

  /** A storage buffer holding `data` (u32 or f32 words), or `floats` zeroed floats. */
  storage(data: Float32Array | Uint32Array | Int32Array | number): GPUBuffer {
    const bytes = typeof data === "number" ? data * 4 : data.byteLength;
    const buffer = this.device.createBuffer({
      size: Math.max(16, Math.ceil(bytes / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    if (typeof data !== "number" && data.length) {
      this.device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
    }
    this.#buffers.push(buffer);
    return buffer;
  }

  /** A uniform buffer of u32 words (those at `floats` written as f32). */
  uniform(words: readonly number[], floats: ReadonlySet<number> = new Set()): GPUBuffer {
    const n = Math.max(4, Math.ceil(words.length / 4) * 4);
    const u32 = new Uint32Array(n), f32 = new Float32Array(u32.buffer);
    words.forEach((w, i) => floats.has(i) ? (f32[i] = w) : (u32[i] = w));
    const buffer = this.device.createBuffer({
      size: n * 4,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.device.queue.writeBuffer(buffer, 0, u32);
    this.#buffers.push(buffer);
    return buffer;
  }

  /** Writes the iteration blocks (block i at dynamic offset i * ITER_STRIDE). */
  setIterations(blocks: readonly IterBlock[]): void {
    const words = ITER_STRIDE / 4;
    const u32 = new Uint32Array(Math.max(1, blocks.length) * words);
    const f32 = new Float32Array(u32.buffer);
    blocks.forEach((b, i) => {
      u32[i * words] = b.s0;
      u32[i * words + 1] = b.rows;
      u32[i * words + 2] = i;
      f32[i * words + 4] = b.lr ?? 0;
      u32[i * words + 5] = b.s0;
    });
    const buffer = this.device.createBuffer({
      size: u32.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.device.queue.writeBuffer(buffer, 0, u32);
    this.#buffers.push(buffer);
    const group = this.device.createBindGroup({
      layout: this.cache.iterLayout,
      entries: [{ binding: 0, resource: { buffer, offset: 0, size: 32 } }],
    });
    this.#iterations = { buffer, group };
  }

  /** Binds iteration block `i` (set by {@linkcode setIterations}) to group 1 of the pass. */
  useIteration(pass: GPUComputePassEncoder, i: number): void {
    if (!this.#iterations) throw new Error("Expected setIterations() before useIteration()");
    pass.setBindGroup(1, this.#iterations.group, [i * ITER_STRIDE]);
  }

  /** Binds `buffers` to the kernel of `source`. */
  bind(source: KernelSource, buffers: Binding[]): BoundKernel {
    return bindKernel(this.device, this.cache.get(source), buffers);
  }

  /** Records one dispatch. */
  dispatch(pass: GPUComputePassEncoder, k: BoundKernel, x: number, y = 1, z = 1): void {
    if (x === 0 || y === 0 || z === 0) return;
    pass.setPipeline(k.kernel.pipeline);
    pass.setBindGroup(0, k.group);
    pass.dispatchWorkgroups(x, y, z);
  }

  /**
   * Binds a GEMM with the engine's own binding (`bindGemm`): `buffers` are A, B, C, bias, mask;
   * with splits, `scratch` holds the partials, `splitStride` floats apart; `biasGrad` folds A's
   * column sums (to `c[biasBase + row]`) into the reduction.
   */
  bindGemm(
    plan: GemmPlan,
    fields: GemmFields,
    buffers: Binding[],
    scratch?: GPUBuffer,
    splitStride = 0,
    biasGrad = false,
  ): BoundGemm {
    const binder = {
      bind: (source: KernelSource, bound: Binding[]) => this.bind(source, bound),
      uniform: (_label: string, words: ArrayLike<number>, floats?: ReadonlySet<number>) =>
        this.uniform(Array.from(words), floats),
    };
    const kernels = bindGemm(binder, plan, fields, buffers, scratch, splitStride, biasGrad);
    return {
      plan,
      kernels,
      record: (pass, m, n) => {
        this.dispatch(pass, kernels[0], ...gemmDispatch(plan, m, n));
        if (kernels[1]) this.dispatch(pass, kernels[1], ...gemmReduceDispatch(m, n, biasGrad));
      },
    };
  }

  /** Reads `floats` f32 values of `buffer` from float `offset`. */
  async read(buffer: GPUBuffer, floats: number, offset = 0): Promise<Float32Array> {
    const staging = this.device.createBuffer({
      size: Math.max(16, Math.ceil((floats * 4) / 16) * 16),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, offset * 4, staging, 0, floats * 4);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(staging.getMappedRange().slice(0, floats * 4));
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Frees every buffer and the device. */
  destroy(): void {
    for (const b of this.#buffers) b.destroy();
    this.#buffers.length = 0;
    this.device.destroy();
  }
}
