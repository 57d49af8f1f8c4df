/**
 * One data-parallel worker's side of the gradient exchange on the GPU: the compression of
 * `comm/compression.ts` (`WorkerGradients`) computed where the gradients are, so that only its
 * results cross to the host. Per iteration:
 *
 * 1. {@linkcode GpuGradientExchange.collect}: the unique rows and their sums, the local scales;
 *    under INT8/INT16 one readback of the scale vector (a few floats) and of the unique rows per
 *    table; the host averages the scales over the workers (`Communicator.allReduceMean`).
 * 2. {@linkcode GpuGradientExchange.messages}: the shared scales uploaded, the INT8/INT16 MLP
 *    message (or the FP32 MLP gradient) and the embedding message built; one readback of both,
 *    of the bytes used (the unique rows per table, read with the scales or, through a canvas,
 *    first on their own, say how many) rather than of the largest message a batch can make.
 *
 * Dense (uncompressed) embedding gradients are the accounting baseline only: not built here.
 *
 * @module
 */
import type { BatchChunk } from "../batch.ts";
import type { CpuGradientAccess } from "../cpu/mod.ts";
import type { ModelSpec } from "../spec.ts";
import type { GemmBinder } from "./binder.ts";
import { GpuMlpCompression, planGradientTensors } from "./grad_compress.ts";
import { GpuRowCompression, rowMessageBytes } from "./grad_compress_rows.ts";
import { CanvasReader, checkCanvasReader, hasOffscreenCanvas } from "./canvas_readback.ts";
import type { GpuLayout } from "./layout.ts";

/** The compression settings (`comm/compression.ts`'s `Compression`). */
export interface GpuCompression {
  sparseEmbeddings: boolean;
  embeddingBits: 8 | 16 | null;
  mlpBits: 8 | 16 | null;
  errorCompensation: boolean;
}

/** Options of {@linkcode GpuGradientExchange}. */
export interface GpuGradientExchangeOptions {
  device: GPUDevice;
  binder: GemmBinder;
  spec: ModelSpec;
  layout: GpuLayout;
  compression: GpuCompression;
  /** Most indices a table has in one batch. */
  entries: number;
  /** The chunk input (`input.ts`). */
  input: { tableDirectory: GPUBuffer; indices: GPUBuffer; offsets: GPUBuffer };
  /** dT of the batch (`ldt` floats per sample). */
  dT: GPUBuffer;
  /** The packed MLP gradients (`layout.ts`). */
  grad: GPUBuffer;
  /**
   * How results come back (default {@linkcode DEFAULT_GPU_READBACK}): `mapAsync` (Deno sleeps
   * 10 ms after each), or the `OffscreenCanvas` path of `canvas_readback.ts` (no sleep, but BMP
   * encoding of the bytes) for the scales only (`canvas-scales`), for the scales and the messages
   * (`canvas`), for the scales and the embedding message with the MLP message mapped on its own
   * (`split`: the embedding message comes back during the map's sleep), or for the scales, the
   * counts and both messages where they come to at most `canvasMaxBytes`, else split where the
   * embedding message alone does, else both mapped (`auto`; `map` where Deno has no
   * `OffscreenCanvas`). Every mode but `map` reads the unique rows per table first, so that
   * only the bytes used come back.
   */
  readback?: GpuReadback;
  /**
   * Under `auto`, the largest message read through the canvas (default
   * {@linkcode AUTO_CANVAS_MAX_BYTES}).
   */
  canvasMaxBytes?: number;
  /**
   * Under error compensation, the MLP residual to keep (`GpuMlpCompressionOptions.residual`):
   * training state that must outlive an exchange rebuilt for new input buffers.
   */
  residual?: GPUBuffer;
}

/** How {@linkcode GpuGradientExchange} reads its results back. */
export type GpuReadback = "map" | "canvas-scales" | "canvas" | "split" | "auto";

/**
 * The largest message `auto` reads through the canvas: where its BMP encoding (~5.7 ms per MB on
 * an H200's host, ~9 on lavapipe here) comes to a map's fixed 11 ms sleep plus its copy (~0.8 and
 * ~2.8 ms per MB): 2.3 MB and 1.8 MB by `bench:readback` (`engine/gpu/README.md`).
 */
export const AUTO_CANVAS_MAX_BYTES = 2 * 1024 * 1024;

/** The readback GPU ranks and the benches use unless told: `auto`. */
export const DEFAULT_GPU_READBACK: GpuReadback = "auto";

/** What one worker sends for one iteration, as `WorkerGradients` holds it. */
export interface GpuMessages {
  /** The MLP: INT8/INT16 levels, or the FP32 gradient (packed as `planMlpTensors`). */
  mlp: Int8Array | Int16Array | Float32Array;
  /** The embedding message: counts, row ids, values. */
  embedding: Int8Array;
}

const MAP_READ = GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;

/**
 * A CPU gradient access over host arrays laid out as the GPU's: the MLP gradients packed as
 * `layout.ts` packs them, then dT (`ldt` floats per sample). `WorkerGradients.collect` reads it
 * as it reads a CPU engine's memory: for references and baselines of the GPU compression.
 */
export function gpuLayoutAccess(
  spec: ModelSpec,
  layout: GpuLayout,
  memory: Float32Array,
): CpuGradientAccess {
  const layers = [...layout.bottom, ...layout.top].map((l) => ({
    inputs: l.inputs,
    outputs: l.outputs,
    inP: l.inputs,
    w: 0,
    b: 0,
    gw: l.weightOffset,
    gb: l.biasOffset,
  }));
  const dimP = spec.embeddingDim;
  return { memory, layers, dt: layout.floats, ldt: layout.ldt, dimP, tables: [] };
}

/**
 * A chunk's indices as the engine uploads them (`input.ts`, without its sharing of one-hot
 * offsets): the table directory `(first index, first offset, 0, 0)` per table, every table's
 * indices back to back, every table's offsets back to back.
 */
export function packChunkInput(chunk: BatchChunk): {
  directory: Uint32Array<ArrayBuffer>;
  indices: Uint32Array<ArrayBuffer>;
  offsets: Uint32Array<ArrayBuffer>;
} {
  const T = chunk.indices.length, n = chunk.samples;
  const directory = new Uint32Array(4 * T);
  let indexCount = 0;
  for (let t = 0; t < T; t++) {
    directory[4 * t] = indexCount;
    directory[4 * t + 1] = t * (n + 1);
    indexCount += chunk.offsets[t][n];
  }
  const indices = new Uint32Array(Math.max(4, indexCount));
  const offsets = new Uint32Array(T * (n + 1));
  for (let t = 0; t < T; t++) {
    indices.set(chunk.indices[t].subarray(0, chunk.offsets[t][n]), directory[4 * t]);
    offsets.set(chunk.offsets[t].subarray(0, n + 1), t * (n + 1));
  }
  return { directory, indices, offsets };
}

/** The GPU side of one worker's gradient exchange. */
export class GpuGradientExchange {
  /** Scales per iteration (embedding tables, then MLP tensors, when quantized). */
  readonly scaleCount: number;
  readonly #o: GpuGradientExchangeOptions;
  readonly #mlp: GpuMlpCompression | null;
  readonly #rows: GpuRowCompression;
  readonly #maxBits: GPUBuffer;
  readonly #scales: GPUBuffer;
  readonly #mlpBytes: number;
  readonly #staging: GPUBuffer;
  readonly #scaleStaging: GPUBuffer;
  /**
   * The canvas reader, the buffer both messages are gathered in for it (`canvas`) and the one
   * the scales and the counts are (the scales at 0, the counts after them), or null.
   */
  #canvas: {
    reader: CanvasReader;
    gather: GPUBuffer | null;
    small: GPUBuffer;
  } | null;
  /**
   * Whether the canvas reads bytes back exactly (`checkCanvasReader`, started when the exchange
   * is made, awaited before the first readback; null once settled). A canvas that fails it is
   * dropped: every readback maps.
   */
  #canvasCheck: Promise<boolean> | null = null;
  /** The largest message read through the canvas (0: none, every one mapped). */
  #canvasMaxBytes: number;
  /** Whether the MLP message is always mapped on its own (`split`). */
  readonly #alwaysSplit: boolean;
  readonly #own: GPUBuffer[] = [];
  /** The unique rows per table of the last {@linkcode collect}, once read back. */
  #counts: Uint32Array | null = null;
  /** Bytes the last iteration's readbacks copied to the host. */
  #copied = 0;
  #messagesVia: "canvas" | "map" | "split" | null = null;

  constructor(o: GpuGradientExchangeOptions) {
    const c = o.compression;
    if (!c.sparseEmbeddings) {
      throw new RangeError(
        "Expected sparse embedding gradients on the GPU but found dense ones (the uncompressed " +
          "all-reduce is the accounting baseline only)",
      );
    }
    this.#o = o;
    const T = o.spec.tableRows.length;
    const tensors = planGradientTensors(o.layout, 0);
    this.scaleCount = (c.embeddingBits ? T : 0) + (c.mlpBits ? tensors.tensors : 0);
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const buffer = (label: string, bytes: number, usage = storage) => {
      const b = o.device.createBuffer({
        label,
        size: Math.max(16, Math.ceil(bytes / 4) * 4),
        usage,
      });
      this.#own.push(b);
      return b;
    };
    // The tables' largest |g| go to [0, T) whether their scales are sent or not.
    this.#maxBits = buffer("gradient max bits", 4 * Math.max(this.scaleCount, T));
    this.#scales = buffer("gradient scales", 4 * Math.max(this.scaleCount, T));
    this.#mlp = c.mlpBits
      ? new GpuMlpCompression({
        device: o.device,
        binder: o.binder,
        layout: o.layout,
        bits: c.mlpBits,
        errorCompensation: c.errorCompensation,
        grad: o.grad,
        firstScale: c.embeddingBits ? T : 0,
        maxBits: this.#maxBits,
        scales: this.#scales,
        residual: o.residual,
      })
      : null;
    this.#rows = new GpuRowCompression({
      device: o.device,
      binder: o.binder,
      tables: T,
      embeddingDim: o.spec.embeddingDim,
      ldt: o.layout.ldt,
      bits: c.embeddingBits,
      entries: o.entries,
      input: o.input,
      dT: o.dT,
      maxBits: this.#maxBits,
      scales: this.#scales,
    });
    // Without INT8/INT16 the MLP message is the packed FP32 gradient, read whole.
    this.#mlpBytes = this.#mlp ? this.#mlp.messageBytes : o.layout.floats * 4;
    const mlpPadded = Math.ceil(this.#mlpBytes / 4) * 4;
    this.#staging = buffer("exchange readback", mlpPadded + this.#rows.capacityBytes, MAP_READ);
    const smallBytes = 4 * (this.scaleCount + T);
    this.#scaleStaging = buffer("scale and count readback", smallBytes, MAP_READ);
    const asked = o.readback ?? DEFAULT_GPU_READBACK;
    const mode = asked === "auto" && !hasOffscreenCanvas() ? "map" : asked;
    this.#canvasMaxBytes = mode === "canvas" || mode === "split"
      ? Infinity
      : mode === "auto"
      ? o.canvasMaxBytes ?? AUTO_CANVAS_MAX_BYTES
      : 0;
    this.#alwaysSplit = mode === "split";
    this.#canvas = mode === "map" ? null : {
      reader: new CanvasReader(o.device),
      gather: this.#canvasMaxBytes > 0 ? buffer("exchange gather", this.#staging.size) : null,
      small: buffer("scale and count gather", smallBytes),
    };
    if (this.#canvas) {
      this.#canvasCheck = checkCanvasReader(this.#canvas.reader, o.device);
      this.#canvasCheck.catch(() => {}); // settles false on any error; awaited before use
    }
  }

  /** Settles the canvas check: a canvas that changed the bytes is dropped (every read maps). */
  async #settleCanvasCheck(): Promise<void> {
    if (this.#canvasCheck === null) return;
    const ok = await this.#canvasCheck;
    this.#canvasCheck = null;
    if (!ok && this.#canvas) {
      this.#canvas.reader.dispose();
      this.#canvas = null;
      this.#canvasMaxBytes = 0;
    }
  }

  /** Whether readbacks may go through the canvas (after its check; false before it settles). */
  get canvasChecked(): boolean {
    return this.#canvasCheck === null && this.#canvas !== null;
  }

  /** Values of the MLP message (every weight and bias, `planMlpTensors`'s packing). */
  get mlpValues(): number {
    return planGradientTensors(this.#o.layout, 0).elements;
  }

  /**
   * Bytes the last iteration's readbacks copied to the host: the scales and counts, the MLP
   * message and the embedding message's bytes used (its whole buffer when the counts were not
   * read first: `map` readback without scales).
   */
  get readbackBytes(): number {
    return this.#copied;
  }

  /**
   * How the last {@linkcode messages} came back (null before the first): `split`, the MLP
   * message mapped and the embedding message through the canvas.
   */
  get messagesVia(): "canvas" | "map" | "split" | null {
    return this.#messagesVia;
  }

  /**
   * Step 1: records and submits the unique rows, their sums and the local scales of the batch
   * bound by `bindIteration` (group 1); with `copyMlp`, the engine's MLP gradients are first
   * copied into this exchange's own gradient buffer (a simulated worker keeps its own).
   */
  collect(
    bindIteration: (p: GPUComputePassEncoder) => void,
    copyMlp?: GPUBuffer,
  ): void {
    this.#counts = null;
    this.#copied = 0;
    const encoder = this.#o.device.createCommandEncoder();
    if (copyMlp) encoder.copyBufferToBuffer(copyMlp, 0, this.#o.grad, 0, this.#o.layout.floats * 4);
    encoder.clearBuffer(this.#maxBits);
    const pass = encoder.beginComputePass();
    this.#rows.recordSums(pass, bindIteration);
    pass.end();
    if (this.#mlp) this.#mlp.recordScales(encoder, bindIteration);
    this.#o.device.queue.submit([encoder.finish()]);
  }

  /**
   * The local scales of the last {@linkcode collect} (as `WorkerGradients.scales`), read back
   * with the unique rows per table (which size the message readback).
   */
  async readLocalScales(): Promise<Float32Array> {
    if (this.scaleCount === 0) return new Float32Array(0);
    return new Float32Array(await this.#readSmall(true), 0, this.scaleCount);
  }

  /**
   * Reads the counts of the last {@linkcode collect} back (into `#counts`), after the scales
   * when `withScales`: one readback of `[scales, counts]`.
   */
  async #readSmall(withScales: boolean): Promise<ArrayBuffer> {
    await this.#settleCanvasCheck();
    const device = this.#o.device, S = this.scaleCount, T = this.#o.spec.tableRows.length;
    const from = withScales ? 0 : 4 * S, bytes = 4 * (S + T) - from;
    const encoder = device.createCommandEncoder();
    const target = this.#canvas?.small ?? this.#scaleStaging;
    if (withScales) encoder.copyBufferToBuffer(this.#scales, 0, target, 0, 4 * S);
    encoder.copyBufferToBuffer(this.#rows.counts, 0, target, 4 * S, 4 * T);
    let out: ArrayBuffer;
    if (this.#canvas) {
      this.#canvas.reader.copy(encoder, target, from, bytes);
      device.queue.submit([encoder.finish()]);
      out = await this.#canvas.reader.read(bytes);
    } else {
      device.queue.submit([encoder.finish()]);
      await this.#scaleStaging.mapAsync(GPUMapMode.READ, 0, from + bytes);
      out = this.#scaleStaging.getMappedRange(0, from + bytes).slice(from);
      this.#scaleStaging.unmap();
    }
    this.#counts = new Uint32Array(out.slice(bytes - 4 * T));
    this.#copied += bytes;
    return out;
  }

  /** {@linkcode collect}, then {@linkcode readLocalScales}. */
  localScales(bindIteration: (p: GPUComputePassEncoder) => void): Promise<Float32Array> {
    this.collect(bindIteration);
    return this.readLocalScales();
  }

  /**
   * Step 2, after {@linkcode collect}: the messages with the shared `scales` (the mean of the
   * workers' local scales; ignored without INT8/INT16), read back in one copy.
   */
  async messages(
    scales: Float32Array,
    bindIteration: (p: GPUComputePassEncoder) => void,
  ): Promise<GpuMessages> {
    const parts = await this.messageParts(scales, bindIteration);
    return { embedding: parts.embedding, mlp: await parts.mlp };
  }

  /**
   * {@linkcode messages} with the embedding message as soon as it is back: where the MLP message
   * is mapped on its own (`split`, or `auto` where both messages are too large for the canvas
   * but the embedding message is not), the embedding message is read through the canvas while
   * the map sleeps, so that a caller can exchange and apply it in that sleep (`mlp` settles
   * after it). Otherwise both come back in one readback and `mlp` is already settled. Await
   * `mlp` before the next {@linkcode collect}: until it settles the staging buffer is mapped.
   */
  async messageParts(
    scales: Float32Array,
    bindIteration: (p: GPUComputePassEncoder) => void,
  ): Promise<{ embedding: Int8Array; mlp: Promise<GpuMessages["mlp"]> }> {
    const device = this.#o.device;
    if (this.scaleCount > 0) {
      if (scales.length !== this.scaleCount) {
        throw new RangeError(
          `Expected ${this.scaleCount} shared scales but found ${scales.length}`,
        );
      }
      device.queue.writeBuffer(this.#scales, 0, scales as Float32Array<ArrayBuffer>);
    }
    await this.#settleCanvasCheck();
    // The counts say how many bytes the embedding message uses: read first (a canvas readback
    // of a few words costs far less than the unused rest of the buffer), unless read with the
    // scales; a map readback without scales would pay a second sleep, so it copies the buffer.
    if (this.#canvas && this.#counts === null) await this.#readSmall(false);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    this.#rows.recordMessage(pass, bindIteration);
    pass.end();
    if (this.#mlp) this.#mlp.recordQuantize(encoder, bindIteration);
    const mlpPadded = Math.ceil(this.#mlpBytes / 4) * 4;
    const source = this.#mlp ? this.#mlp.message : this.#o.grad;
    const known = this.#counts;
    this.#counts = null;
    const d = this.#o.spec.embeddingDim, c = this.#o.compression;
    const rowBytes = known
      ? Math.ceil(rowMessageBytes(known, d, c.embeddingBits) / 4) * 4
      : this.#rows.capacityBytes;
    const total = mlpPadded + rowBytes;
    const canvas = this.#canvas?.gather ? this.#canvas : null;
    const viaCanvas = canvas && !this.#alwaysSplit && total <= this.#canvasMaxBytes ? canvas : null;
    const split = !viaCanvas && canvas !== null && rowBytes <= this.#canvasMaxBytes;
    this.#messagesVia = split ? "split" : viaCanvas ? "canvas" : "map";
    this.#copied += total;
    if (split) {
      encoder.copyBufferToBuffer(source, 0, this.#staging, 0, mlpPadded);
      encoder.copyBufferToBuffer(this.#rows.message, 0, canvas.gather!, 0, rowBytes);
      canvas.reader.copy(encoder, canvas.gather!, 0, rowBytes);
      device.queue.submit([encoder.finish()]);
      // The map is called first: the call returns once the queue is idle, and its sleep runs
      // while the canvas reads the embedding message and the caller exchanges it.
      const mapped = this.#staging.mapAsync(GPUMapMode.READ, 0, mlpPadded);
      const mlp = mapped.then(() => {
        try {
          return this.#mlpMessage(this.#staging.getMappedRange(0, mlpPadded));
        } finally {
          this.#staging.unmap();
        }
      });
      mlp.catch(() => {}); // the caller awaits it; a failure before that must not go unhandled
      const rows = await canvas.reader.read(rowBytes);
      return { embedding: this.#embeddingMessage(rows, 0, known), mlp };
    }
    const gather = viaCanvas?.gather ?? this.#staging;
    encoder.copyBufferToBuffer(source, 0, gather, 0, mlpPadded);
    encoder.copyBufferToBuffer(this.#rows.message, 0, gather, mlpPadded, rowBytes);
    let all: ArrayBuffer;
    if (viaCanvas) {
      viaCanvas.reader.copy(encoder, gather, 0, total);
      device.queue.submit([encoder.finish()]);
      all = await viaCanvas.reader.read(total);
    } else {
      device.queue.submit([encoder.finish()]);
      await this.#staging.mapAsync(GPUMapMode.READ, 0, total);
      all = this.#staging.getMappedRange(0, total);
    }
    try {
      const embedding = this.#embeddingMessage(all, mlpPadded, known);
      return { embedding, mlp: Promise.resolve(this.#mlpMessage(all)) };
    } finally {
      if (!viaCanvas) this.#staging.unmap();
    }
  }

  /**
   * The embedding message at byte `at` of `all` (a copy), checked against the unique rows per
   * table read before it (`known`).
   */
  #embeddingMessage(all: ArrayBuffer, at: number, known: Uint32Array | null): Int8Array {
    const T = this.#o.spec.tableRows.length;
    const counts = new Uint32Array(all, at, T);
    if (known && counts.some((n, t) => n !== known[t])) {
      throw new Error(
        `Expected the message's unique rows per table to be the ${known.join(",")} read ` +
          `before it but found ${counts.join(",")}`,
      );
    }
    const bytes = rowMessageBytes(
      counts,
      this.#o.spec.embeddingDim,
      this.#o.compression.embeddingBits,
    );
    return new Int8Array(all.slice(at, at + bytes));
  }

  /** The MLP message at the start of `all` (a copy). */
  #mlpMessage(all: ArrayBuffer): GpuMessages["mlp"] {
    const bits = this.#o.compression.mlpBits;
    if (bits === 8) return new Int8Array(all.slice(0, this.#mlpBytes));
    if (bits === 16) return new Int16Array(all.slice(0, this.#mlpBytes));
    return this.#compactMlp(new Float32Array(all, 0, this.#o.layout.floats));
  }

  /** Frees every buffer this exchange made. */
  destroy(): void {
    this.#canvas?.reader.dispose();
    this.#mlp?.destroy();
    this.#rows.destroy();
    for (const b of this.#own) b.destroy();
  }

  /** The packed FP32 MLP gradient in `planMlpTensors` order (alignment padding dropped). */
  #compactMlp(packed: Float32Array): Float32Array {
    const plan = planGradientTensors(this.#o.layout, 0);
    const out = new Float32Array(plan.elements);
    for (let t = 0; t < plan.tensors; t++) {
      const [src, at, n] = plan.table.subarray(4 * t, 4 * t + 3);
      out.set(packed.subarray(src, src + n), at);
    }
    return out;
  }
}
