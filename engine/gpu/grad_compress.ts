/**
 * Data-parallel gradient compression of the MLP on the GPU, with the semantics of
 * `comm/compression.ts` (bit for bit): per tensor the local scale `max|g| / n`, then, with the
 * shared scale (the mean of the workers' local scales, agreed on by the host), the compact
 * INT8/INT16 message and, under error compensation, the residual kept on the GPU. Only the scales
 * (a few floats) and the message (one byte or two per value) cross to the host.
 *
 * The tensors are taken from the engine's packed gradient buffer (`layout.ts`) in the order of
 * `planMlpTensors` (bottom MLP first, each layer's weights then its bias).
 *
 * @module
 */
import type { GemmBinder } from "./binder.ts";
import { GRAD_MAX_ABS, GRAD_MAX_ABS_COMPENSATE } from "./kernels/grad_max_abs.ts";
import { GRAD_QUANTIZE } from "./kernels/grad_quantize.ts";
import { GRAD_SCALES } from "./kernels/grad_scales.ts";
import type { GpuLayout } from "./layout.ts";
import type { BoundKernel } from "./pipelines.ts";
import { gridOf } from "./kernels/grid.ts";

/** The MLP tensors as (gradient offset, message offset, length, scale index) and their total. */
export function planGradientTensors(
  layout: GpuLayout,
  firstScale: number,
): { table: Uint32Array<ArrayBuffer>; elements: number; tensors: number } {
  const rows: number[] = [];
  let at = 0, scale = firstScale;
  for (const l of [...layout.bottom, ...layout.top]) {
    for (
      const [offset, length] of [[l.weightOffset, l.inputs * l.outputs], [
        l.biasOffset,
        l.outputs,
      ]]
    ) {
      rows.push(offset, at, length, scale++);
      at += length;
    }
  }
  return { table: Uint32Array.from(rows), elements: at, tensors: rows.length / 4 };
}

/**
 * What `scaleOf(maxAbs, bits)` (engine/quant.ts) needs besides a division: the bits of the
 * smallest float32 above 1e-8 (`Math.max(maxAbs, 1e-8)` keeps `maxAbs` from there on) and of
 * `fround(1e-8 / n)`, the scale below it.
 */
export function scaleConstants(n: number): { threshold: number; tiny: number } {
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  f[0] = 1e-8;
  if (f[0] <= 1e-8) u[0] += 1;
  const threshold = u[0];
  f[0] = 1e-8 / n;
  return { threshold, tiny: u[0] };
}

/** Options of {@linkcode GpuMlpCompression}. */
export interface GpuMlpCompressionOptions {
  device: GPUDevice;
  binder: GemmBinder;
  layout: GpuLayout;
  bits: 8 | 16;
  errorCompensation: boolean;
  /** The packed MLP gradients (`layout.ts`); under error compensation they become `g + e`. */
  grad: GPUBuffer;
  /** Index of the first MLP scale in the scale vector (the embedding tables' come first). */
  firstScale: number;
  /** Largest |g| bits per scale (embedding tables, then MLP tensors). */
  maxBits: GPUBuffer;
  /** The scale vector, laid out as `WorkerGradients.scales`. */
  scales: GPUBuffer;
  /**
   * Under error compensation, the residual to keep (`layout.floats` floats, zero at the start of
   * training), owned by the caller so that it outlives this object; default: one of its own.
   */
  residual?: GPUBuffer;
}

const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** The MLP's gradient compression on the GPU: local scales, then the quantized message. */
export class GpuMlpCompression {
  /** Values in the message. */
  readonly elements: number;
  /** Bytes of the message as `comm/compression.ts` counts them (one or two per value). */
  readonly messageBytes: number;
  /** The INT8/INT16 message, little-endian, padded to whole 32-bit words. */
  readonly message: GPUBuffer;
  /** The error-compensation residual (packed as the gradients), or null. */
  readonly residual: GPUBuffer | null;
  readonly #o: GpuMlpCompressionOptions;
  readonly #tensors: number;
  readonly #words: number;
  readonly #kernels: { max: BoundKernel; scales: BoundKernel; quantize: BoundKernel };
  readonly #own: GPUBuffer[] = [];

  constructor(o: GpuMlpCompressionOptions) {
    this.#o = o;
    const plan = planGradientTensors(o.layout, o.firstScale);
    this.elements = plan.elements;
    this.#tensors = plan.tensors;
    this.messageBytes = plan.elements * (o.bits / 8);
    this.#words = Math.ceil(this.messageBytes / 4);
    const buffer = (label: string, bytes: number) => {
      const b = o.device.createBuffer({ label, size: Math.max(16, bytes), usage: storage });
      this.#own.push(b);
      return b;
    };
    const table = buffer("gradient tensors", plan.table.byteLength);
    o.device.queue.writeBuffer(table, 0, plan.table);
    this.message = buffer("mlp message", this.#words * 4);
    if (o.residual && o.residual.size < o.layout.floats * 4) {
      throw new RangeError(
        `Expected a residual of at least ${o.layout.floats * 4} bytes but found ${o.residual.size}`,
      );
    }
    this.residual = o.errorCompensation
      ? o.residual ?? buffer("mlp residual", o.layout.floats * 4)
      : null;
    const residual = this.residual ?? buffer("no residual", 16);
    const n = 2 ** (o.bits - 1) - 1;
    const { threshold, tiny } = scaleConstants(n);
    const u = (words: number[]) => o.binder.uniform("gradient compression", words);
    this.#kernels = {
      max: o.binder.bind(GRAD_MAX_ABS, [
        u([plan.tensors, o.errorCompensation ? GRAD_MAX_ABS_COMPENSATE : 0, 0, 0]),
        table,
        o.grad,
        residual,
        o.maxBits,
      ]),
      scales: o.binder.bind(GRAD_SCALES, [
        u([o.firstScale, plan.tensors, n, 0, threshold, tiny, 0, 0]),
        o.maxBits,
        buffer("no counts", 16),
        o.scales,
      ]),
      quantize: o.binder.bind(GRAD_QUANTIZE, [
        u([plan.elements, o.bits, n, o.errorCompensation ? 1 : 0, plan.tensors, this.#words, 0, 0]),
        table,
        o.grad,
        residual,
        o.scales,
        this.message,
      ]),
    };
  }

  /**
   * Records the MLP's local scales into the scale vector (after adding the residual to the
   * gradients under error compensation); its `maxBits` must be zero. `bindIteration` sets the
   * pass's group 1.
   */
  recordScales(encoder: GPUCommandEncoder, bindIteration: (p: GPUComputePassEncoder) => void) {
    const pass = encoder.beginComputePass();
    bindIteration(pass);
    const largest = Math.max(1, ...this.#lengths());
    this.#dispatch(
      pass,
      this.#kernels.max,
      Math.min(Math.ceil(largest / 1024), 256),
      this.#tensors,
    );
    this.#dispatch(pass, this.#kernels.scales, Math.ceil(this.#tensors / 64), 1);
    pass.end();
  }

  /** Records the quantization with the shared scales now in the scale vector. */
  recordQuantize(encoder: GPUCommandEncoder, bindIteration: (p: GPUComputePassEncoder) => void) {
    const pass = encoder.beginComputePass();
    bindIteration(pass);
    this.#dispatch(pass, this.#kernels.quantize, ...gridOf(Math.ceil(this.#words / 256)));
    pass.end();
  }

  /** Frees the buffers this object made. */
  destroy(): void {
    for (const b of this.#own) b.destroy();
  }

  #lengths(): number[] {
    return [...this.#o.layout.bottom, ...this.#o.layout.top].map((l) => l.inputs * l.outputs);
  }

  #dispatch(pass: GPUComputePassEncoder, k: BoundKernel, x: number, y: number): void {
    pass.setPipeline(k.kernel.pipeline);
    pass.setBindGroup(0, k.group);
    pass.dispatchWorkgroups(x, y);
  }
}
