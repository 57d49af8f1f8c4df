/**
 * Data-parallel compression of the sparse embedding gradients on the GPU, with the semantics of
 * `comm/compression.ts` (bit for bit): per table the unique rows the batch touched (sorted) and
 * their summed gradients (occurrences in bag order), the per-table counts, each table's local
 * scale, and the message `[counts (i32 × T), row ids (i32 × u), values (u × d: FP32, or INT8/INT16
 * with the table's shared scale)]`, built in one buffer so that one readback fetches it.
 *
 * The keys are sorted by the engine's own bitonic sort (`sort_plan.ts`, the sorted embedding
 * update's kernels) over the chunk input as the engine uploads it (`input.ts`).
 *
 * @module
 */
import type { GemmBinder } from "./binder.ts";
import { EMBEDDING_SORT_LOCAL } from "./kernels/embedding_sort_local.ts";
import { EMBEDDING_SORT_STEP } from "./kernels/embedding_sort_step.ts";
import { GRAD_ROW_MESSAGE } from "./kernels/grad_row_message.ts";
import { GRAD_ROW_SUMS } from "./kernels/grad_row_sums.ts";
import { GRAD_SCALES } from "./kernels/grad_scales.ts";
import { GRAD_UNIQUE_ROWS } from "./kernels/grad_unique_rows.ts";
import { scaleConstants } from "./grad_compress.ts";
import type { BoundKernel } from "./pipelines.ts";
import { sortDispatches, sortSegment } from "./sort_plan.ts";
import { gridOf, MOST_PER_DIMENSION } from "./kernels/grid.ts";

/** Options of {@linkcode GpuRowCompression}. */
export interface GpuRowCompressionOptions {
  device: GPUDevice;
  binder: GemmBinder;
  tables: number;
  embeddingDim: number;
  /** Floats per sample of dT (`layout.ts`'s `ldt`). */
  ldt: number;
  /** Bits of the values, or null for FP32. */
  bits: 8 | 16 | null;
  /** Most indices a table has in one batch. */
  entries: number;
  /** The chunk input as `input.ts` uploads it: table directory, indices, offsets. */
  input: { tableDirectory: GPUBuffer; indices: GPUBuffer; offsets: GPUBuffer };
  /** The gradient of the interaction input (dT), `ldt` floats per sample of the batch. */
  dT: GPUBuffer;
  /** Largest |g| bits per scale; the tables' are the first `tables` (zeroed by the caller). */
  maxBits: GPUBuffer;
  /** The scale vector (tables first), laid out as `WorkerGradients.scales`. */
  scales: GPUBuffer;
}

const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Bytes of the embedding message with `counts` unique rows per table. */
export function rowMessageBytes(
  counts: ArrayLike<number>,
  embeddingDim: number,
  bits: 8 | 16 | null,
): number {
  let u = 0;
  for (let t = 0; t < counts.length; t++) u += counts[t];
  return 4 * (counts.length + u) + u * embeddingDim * (bits ? bits / 8 : 4);
}

/** The sparse embedding gradients' compression on the GPU. */
export class GpuRowCompression {
  /** The message (its bytes: {@linkcode rowMessageBytes} of its first `tables` words). */
  readonly message: GPUBuffer;
  /** Bytes of {@linkcode message}: the largest message a batch can make. */
  readonly capacityBytes: number;
  /** The unique rows per table (`tables` u32), final once the sums are recorded. */
  readonly counts: GPUBuffer;
  readonly #o: GpuRowCompressionOptions;
  readonly #sums: [BoundKernel, number, number][] = [];
  readonly #scales: BoundKernel | null;
  readonly #message: BoundKernel;
  readonly #messageGroups: number;
  readonly #own: GPUBuffer[] = [];

  constructor(o: GpuRowCompressionOptions) {
    this.#o = o;
    const T = o.tables, d = o.embeddingDim;
    const p = sortSegment(o.entries);
    const rows = T * o.entries;
    const buffer = (label: string, bytes: number) => {
      const b = o.device.createBuffer({ label, size: Math.max(16, bytes), usage: storage });
      this.#own.push(b);
      return b;
    };
    this.capacityBytes =
      Math.ceil(rowMessageBytes([rows, ...new Array(T - 1).fill(0)], d, o.bits) / 4) * 4;
    this.message = buffer("embedding message", this.capacityBytes);
    const keys = buffer("gradient sort keys", T * p * 8);
    const unique = buffer("unique row places", T * p * 4);
    const counts = buffer("unique row counts", T * 4);
    this.counts = counts;
    const values = buffer("row sums", rows * d * 4);
    const input = o.input;
    for (const s of sortDispatches(T, p)) {
      const u = o.binder.uniform("sort", s.words);
      this.#sums.push([
        s.kind === "local"
          ? o.binder.bind(EMBEDDING_SORT_LOCAL, [
            u,
            input.tableDirectory,
            input.indices,
            input.offsets,
            keys,
          ])
          : o.binder.bind(EMBEDDING_SORT_STEP, [u, keys]),
        s.x,
        1,
      ]);
    }
    this.#sums.push([
      o.binder.bind(GRAD_UNIQUE_ROWS, [
        o.binder.uniform("unique rows", [T, p, 0, 0]),
        input.tableDirectory,
        input.offsets,
        keys,
        unique,
        counts,
      ]),
      T,
      1,
    ]);
    this.#sums.push([
      o.binder.bind(GRAD_ROW_SUMS, [
        o.binder.uniform("row sums", [T, p, d, o.ldt]),
        input.tableDirectory,
        input.offsets,
        keys,
        unique,
        counts,
        o.dT,
        values,
        this.message,
        o.maxBits,
      ]),
      Math.min(MOST_PER_DIMENSION, Math.ceil((o.entries * d) / 256)),
      T,
    ]);
    const n = o.bits ? 2 ** (o.bits - 1) - 1 : 0;
    if (o.bits) {
      const { threshold, tiny } = scaleConstants(n);
      this.#scales = o.binder.bind(GRAD_SCALES, [
        o.binder.uniform("table scales", [0, T, n, 1, threshold, tiny, 0, 0]),
        o.maxBits,
        counts,
        o.scales,
      ]);
    } else this.#scales = null;
    this.#message = o.binder.bind(GRAD_ROW_MESSAGE, [
      o.binder.uniform("row message", [T, d, o.bits ?? 32, n]),
      counts,
      values,
      o.scales,
      this.message,
    ]);
    const words = Math.max(T, Math.ceil((rows * d * (o.bits ?? 32)) / 32));
    this.#messageGroups = Math.ceil(words / 256);
  }

  /**
   * Records the sort of the batch's keys, the unique rows, their sums (and row ids into the
   * message) and, with quantized values, the tables' local scales. `bindIteration` sets group 1
   * (the batch: `s0`, `rows`).
   */
  recordSums(pass: GPUComputePassEncoder, bindIteration: (p: GPUComputePassEncoder) => void) {
    bindIteration(pass);
    for (const [k, x, y] of this.#sums) this.#dispatch(pass, k, x, y);
    if (this.#scales) this.#dispatch(pass, this.#scales, Math.ceil(this.#o.tables / 64), 1);
  }

  /** Records the counts and values of the message, with the shared scales when quantized. */
  recordMessage(pass: GPUComputePassEncoder, bindIteration: (p: GPUComputePassEncoder) => void) {
    bindIteration(pass);
    this.#dispatch(pass, this.#message, ...gridOf(this.#messageGroups));
  }

  /** Frees the buffers this object made. */
  destroy(): void {
    for (const b of this.#own) b.destroy();
  }

  #dispatch(pass: GPUComputePassEncoder, k: BoundKernel, x: number, y: number): void {
    if (x === 0 || y === 0) return;
    pass.setPipeline(k.kernel.pipeline);
    pass.setBindGroup(0, k.group);
    pass.dispatchWorkgroups(x, y);
  }
}
