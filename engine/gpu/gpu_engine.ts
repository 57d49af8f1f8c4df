/**
 * The WebGPU engine: DLRM training in WGSL kernels through Deno's built-in WebGPU.
 *
 * Built for what Deno WebGPU costs (see `README.md` here): a whole chunk of iterations is
 * recorded as dispatches in as few compute passes as timing allows and sent in one submit; the
 * chunk's input is uploaded with one `writeBuffer` per array and each dispatch finds its batch
 * through a per-iteration uniform block bound at a dynamic offset; nothing waits on the GPU inside
 * the chunk; losses (and scales) are read back once, at its end.
 *
 * This module holds the Engine methods; the state, binding, recording and submission live in
 * the modules it imports (the file map is in `README.md`).
 *
 * @module
 */
import { type BatchChunk, batchCount, validateChunk } from "../batch.ts";
import {
  type Engine,
  type EngineCapabilities,
  type EngineInfo,
  NonFiniteLossError,
  type StepTrace,
  type TrainChunkResult,
  type TrainOptions,
} from "../engine.ts";
import type { Params } from "../params.ts";
import { allocatePhaseSamples, type PhaseSamples } from "../phases.ts";
import { type QuantConfig, QuantConfigSchema } from "../quant.ts";
import { type ModelSpec, validateSpec } from "../spec.ts";
import { ScaleKernels } from "./bind_scales.ts";
import { bindTraining, type TrainingKernels } from "./bind_training.ts";
import { type GpuDevice, requestGpuDevice } from "./device.ts";
import {
  ensureInput,
  ensureLsqParts,
  ensureSortKeys,
  iterationsBindGroup,
  uploadChunk,
  uploadChunkInParts,
  writeIterations,
} from "./input.ts";
import { MODE_GRADIENT, MODE_PROBABILITIES } from "./kernels/iter.ts";
import { writeInitialLsqSteps } from "./lsq_init.ts";
import { checkSupported, type GpuEngineOptions, SORTED_UPDATE_FROM } from "./options.ts";
import {
  denseTableGradients,
  stageParams,
  stageTable,
  unpackMlps,
  uploadParams,
} from "./params_io.ts";
import { encodeQuantizeInPlace } from "./post_training.ts";
import {
  checkDataParallelQuant,
  type GpuDataParallelHooks,
  type GpuExchange,
  trainChunkExchanging,
} from "./dp_train.ts";
import { dispatch, type Recording, recordPhase } from "./record.ts";
import type { BoundKernel } from "./pipelines.ts";
import {
  bindWarmUp,
  KernelProfiler,
  type KernelTime,
  WARM_UP_WORKGROUPS,
} from "./kernel_profile.ts";
import { createGpuState, GpuState, readsTableScales } from "./state.ts";
import { nextTask, readStaged, stage, SubmitQueue, type SubmitTurn } from "./submit.ts";
import { ChunkReadback, type DrainCanvas, drainCanvas } from "./chunk_readback.ts";
import {
  attributePhases,
  deviceClockSpan,
  earlySubmitBreaks,
  PASS_PHASES,
  planPasses,
  TimestampQueries,
} from "./timing.ts";

export { type GpuEngineOptions, SORTED_UPDATE_FROM } from "./options.ts";

/** Creates a WebGPU engine and initialises its parameters exactly as the CPU engine does. */
export async function createGpuEngine(options: GpuEngineOptions): Promise<Engine> {
  const spec = validateSpec(options.spec);
  if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1 || options.maxBatch > 65535) {
    throw new RangeError(
      `Expected maxBatch to be an integer in [1, 65535] but found ${options.maxBatch}`,
    );
  }
  const quant = options.quantization ? QuantConfigSchema.parse(options.quantization) : null;
  if (quant) checkSupported(quant);
  const gpu = await requestGpuDevice(options.gpuIndex);
  try {
    const state = createGpuState(spec, gpu.device, quant, options);
    const engine = new GpuEngine(state, options, gpu, await drainCanvas(gpu.device));
    uploadParams(state, options.params, options.seed ?? 0);
    return engine;
  } catch (error) {
    gpu.device.destroy();
    throw error;
  }
}

type Kind = "train" | "predict" | "trace";

/**
 * One training step of a GPU engine with every kernel timed on its own (see
 * `GpuEngine.profileStep`); null when the adapter has no timestamp queries. `warmUpRounds` > 0
 * runs that many rounds of the FMA-peak kernel untimed first, in the same submit (60000: ~0.5 s on
 * an H200): a GPU idle since the last readback runs at its idle clock (an H200: 345 against 1980
 * MHz) until it has been busy for a while; 600 rounds (~5 ms) were not enough.
 */
export async function profileGpuStep(
  engine: Engine,
  chunk: BatchChunk,
  options: TrainOptions,
  warmUpRounds = 0,
): Promise<KernelTime[] | null> {
  if (!(engine instanceof GpuEngine)) {
    throw new Error(
      `Expected an engine made by createGpuEngine but found the ${engine.info.name} engine`,
    );
  }
  return await engine.profileStep(chunk, options, warmUpRounds);
}

class GpuEngine implements Engine {
  readonly spec: ModelSpec;
  readonly info: EngineInfo;
  /** A chunk is recorded while the one before trains (calls take turns to submit). */
  readonly capabilities: EngineCapabilities = { overlapsChunks: true };
  readonly #gpu: GpuDevice;
  readonly #device: GPUDevice;
  readonly #state: GpuState;
  readonly #scaleKernels: ScaleKernels;
  readonly #submits: SubmitQueue;
  readonly #timestamps: TimestampQueries;
  readonly #quant: QuantConfig | null;
  readonly #maxBatch: number;
  readonly #timingEvery: number;
  readonly #sortedUpdateFrom: number;
  /** The training kernels over the current buffers (null: bind again before recording). */
  #kernels: TrainingKernels | null = null;
  /** Global steps taken (K simulated workers' batches count once): the scale period's clock. */
  #step = 0;
  #quantActive = true;
  #scalesFound = false;
  /** The table scales as of the last call that read them back. */
  #hostScales: Float32Array;
  /** The scales changed on the GPU since (quantizeInPlace): read them back before answering. */
  #scalesStale = false;
  /** LSQ's steps have been initialised from the weights (at the first quantized call). */
  #lsqReady = false;
  #qatPreparing: Promise<void> | null = null;
  /** The first error the device reported outside an error scope, not yet thrown. */
  #gpuError: string | null = null;
  /** The profiler's warm-up kernel, bound for its rounds. */
  #warmUp: { rounds: number; kernel: BoundKernel } | null = null;
  /** The checked canvas a call with nothing queued behind reads through (see ChunkReadback). */
  readonly #drain: DrainCanvas | null;
  #disposed = false;

  constructor(
    state: GpuState,
    options: GpuEngineOptions,
    gpu: GpuDevice,
    drain: DrainCanvas | null,
  ) {
    this.spec = state.spec;
    this.#state = state;
    this.#gpu = gpu;
    this.#device = gpu.device;
    this.#quant = state.quant;
    this.#maxBatch = options.maxBatch;
    this.#timingEvery = Math.max(1, Math.floor(options.timingEvery ?? 32));
    this.#sortedUpdateFrom = options.sortedUpdateFrom ?? SORTED_UPDATE_FROM;
    this.#scaleKernels = new ScaleKernels(state);
    this.#submits = new SubmitQueue(gpu.device.queue);
    this.#timestamps = new TimestampQueries(gpu.device, state.buffers);
    this.#hostScales = new Float32Array(state.spec.tableRows.length);
    this.#drain = drain;
    gpu.device.addEventListener("uncapturederror", (event) => {
      this.#gpuError ??= (event as GPUUncapturedErrorEvent).error.message;
    });
    const lim = gpu.device.limits;
    this.info = {
      name: "gpu",
      device: gpu.description,
      threads: 1,
      details: {
        backend: "webgpu",
        maxBatch: options.maxBatch,
        arenas: state.plan.arenaFloats.length,
        arenaGroups: state.plan.groups,
        maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
        maxBufferSize: lim.maxBufferSize,
        timing: gpu.timestamps
          ? `timestamp-query, phases sampled every ${this.#timingEvery} iterations`
          : "wall clock (no timestamp-query): all time in forward",
        ...(gpu.software ? { softwareAdapter: true } : {}),
      },
    };
  }

  // ---------------------------------------------------------------- helpers

  /**
   * Uploads a training chunk, its iteration blocks and room for its losses: its samples at once,
   * or (`inPieces`) only when the returned function is called with how many it needs.
   */
  #uploadTraining(
    chunk: BatchChunk,
    learningRate: number,
    inPieces = false,
  ): ((samples: number) => void) | null {
    const state = this.#state;
    const iterations = batchCount(chunk);
    const batch = chunk.batchSize;
    const samples = iterations * batch;
    const upload = inPieces
      ? uploadChunkInParts(state, chunk, samples)
      : { grown: uploadChunk(state, chunk, samples), writeUpTo: null };
    this.#rebindIf(upload.grown);
    this.#rebindIf(writeIterations(state, iterations, batch, samples, MODE_GRADIENT, learningRate));
    this.#rebindIf(ensureInput(state, "losses", Math.max(1, iterations) * 4));
    return upload.writeUpTo;
  }

  /**
   * {@linkcode #uploadTraining}, and the table update's buffers (LSQ's parts, the sort keys);
   * what recording the chunk's steps needs, and the upload's writer if it goes in pieces.
   */
  #prepareTraining(
    chunk: BatchChunk,
    options: TrainOptions,
    inPieces = false,
  ): { recording: Recording; writeUpTo: ((samples: number) => void) | null } {
    const writeUpTo = this.#uploadTraining(chunk, options.learningRate, inPieces);
    const iterations = batchCount(chunk);
    const batch = chunk.batchSize;
    const state = this.#state;
    this.#rebindIf(ensureLsqParts(state, chunk, batch, iterations * batch));
    this.#rebindIf(ensureSortKeys(state, chunk, batch, iterations, this.#sortedUpdateFrom));
    return { recording: this.#recording(), writeUpTo };
  }

  /** The training kernels, bound again if a buffer they use was replaced. */
  #bound(): TrainingKernels {
    if (this.#kernels) return this.#kernels;
    return this.#kernels = bindTraining(this.#state);
  }

  /** Forgets the training kernels when `replaced` (their uniforms are freed). */
  #rebindIf(replaced: boolean): void {
    if (!replaced || !this.#kernels) return;
    for (const u of this.#kernels.uniforms) this.#state.buffers.destroy(u);
    this.#kernels = null;
  }

  /** What recording this call's iterations needs. */
  #recording(): Recording {
    return {
      state: this.#state,
      kernels: this.#bound(),
      scaleKernels: this.#scaleKernels,
      iterations: iterationsBindGroup(this.#state),
      sortedUpdateFrom: this.#sortedUpdateFrom,
    };
  }

  /**
   * A staging copy of the table scales when `quant` may change them on the GPU, and its reader,
   * which refreshes the host copy (none when `quant` leaves them as they are).
   */
  #stageScales(
    encoder: GPUCommandEncoder,
    quant: QuantConfig | null,
  ): (() => Promise<void>) | null {
    return readsTableScales(quant) ? this.#stageScalesNow(encoder) : null;
  }

  #stageScalesNow(encoder: GPUCommandEncoder): () => Promise<void> {
    const tables = this.spec.tableRows.length;
    const staged = stage(this.#device, encoder, this.#state.tableScales, 0, tables * 4);
    return async () => this.#setHostScales(await readStaged(staged));
  }

  #setHostScales(bytes: ArrayBuffer): void {
    this.#hostScales = new Float32Array(bytes, 0, this.spec.tableRows.length);
    this.#scalesStale = false;
  }

  #check(chunk: BatchChunk, count: number, batch: number, kind: Kind, lr: number): void {
    this.#assertLive();
    validateChunk(chunk, this.spec);
    if (batch > this.#maxBatch) {
      throw new RangeError(
        `Expected a batch of at most ${this.#maxBatch} (the engine's maxBatch) but found ${batch}`,
      );
    }
    if (count > chunk.samples) {
      throw new RangeError(`Expected ${count} samples in the chunk but found ${chunk.samples}`);
    }
    if (kind !== "predict" && !(lr >= 0)) {
      throw new RangeError(`Expected a learning rate >= 0 but found ${lr}`);
    }
  }

  #assertLive(): void {
    if (this.#disposed) throw new Error("Expected a live engine but it was disposed");
  }

  /** The QAT settings of the next step (null while paused or without QAT). */
  #active(): QuantConfig | null {
    return this.#quantActive ? this.#quant : null;
  }

  /**
   * LSQ's steps from the weights, once, before the first quantized call: null when there is
   * nothing to do, so that calls record and submit synchronously (the runner relies on a call
   * having read its chunk when it returns); concurrent calls share one preparation and resume in
   * call order.
   */
  #prepareQat(): Promise<void> | null {
    const q = this.#active();
    if (!q || q.quantizer !== "lsq" || this.#lsqReady) return null;
    if (q.embeddingBits === null && q.mlpBits === null) return null;
    return this.#qatPreparing ??= this.#initLsqSteps(q);
  }

  async #initLsqSteps(q: QuantConfig): Promise<void> {
    writeInitialLsqSteps(this.#state, await this.readParams(), q);
    if (q.embeddingBits !== null) this.#scalesFound = true;
    this.#lsqReady = true;
  }

  /** Whether table scales are found at training step `step` (negative: predicting, cached). */
  #refreshAt(step: number): boolean {
    const q = this.#active();
    if (!q || q.embeddingBits === null) return false;
    const refresh = !this.#scalesFound || (step >= 0 && step % q.scalePeriod === 0);
    if (refresh) this.#scalesFound = true;
    return refresh;
  }

  /** Runs `body` in a new turn (see `SubmitQueue.turn`), ending it however `body` settles. */
  async #inTurn<T>(body: (turn: SubmitTurn) => Promise<T>): Promise<T> {
    const turn = this.#submits.turn();
    try {
      const result = await body(turn);
      this.#throwIfGpuError();
      return result;
    } finally {
      turn.end();
    }
  }

  /**
   * Throws the first error the device reported outside an error scope since the last call: a
   * validation error makes a whole command buffer invalid, so nothing it held ran, and the
   * results read back are not those of the call.
   */
  #throwIfGpuError(): void {
    const message = this.#gpuError;
    if (message === null) return;
    this.#gpuError = null;
    throw new Error(
      `Expected the GPU to run this call's commands but it reported an error: ${message} ` +
        "(nothing of the failed submission ran; its results are not valid)",
    );
  }

  // ---------------------------------------------------------------- Engine

  async trainChunk(chunk: BatchChunk, options: TrainOptions): Promise<TrainChunkResult> {
    const start = performance.now();
    const iterations = batchCount(chunk);
    const batch = chunk.batchSize;
    const samples = iterations * batch;
    this.#check(chunk, samples, batch, "train", options.learningRate);
    const preparing = this.#prepareQat();
    if (preparing) await preparing;
    const phases = allocatePhaseSamples(iterations);
    const loss = new Float32Array(iterations);
    if (iterations === 0) return { iterations, loss, phases, wallMs: 0 };
    return this.#inTurn((turn) => this.#trainChunk(chunk, options, turn, start, phases, loss));
  }

  async #trainChunk(
    chunk: BatchChunk,
    options: TrainOptions,
    turn: SubmitTurn,
    start: number,
    phases: PhaseSamples,
    loss: Float32Array,
  ): Promise<TrainChunkResult> {
    const earlier = turn.earlierSubmitted();
    if (earlier) await earlier;
    const state = this.#state;
    const iterations = batchCount(chunk);
    const batch = chunk.batchSize;
    // Passes: sampled iterations get one per phase, the stretches between them one each. With
    // the GPU idle (the first chunk of a run), the first iterations go as soon as they are
    // recorded, each piece's samples uploaded just before it: Kaggle b16384 recorded 17 ms of a
    // chunk before its GPU started.
    const breaks = turn.ready() ? earlySubmitBreaks(iterations) : [];
    const { recording, writeUpTo } = this.#prepareTraining(chunk, options, breaks.length > 0);
    const quant = this.#active();
    let encoder = this.#device.createCommandEncoder();
    const timed = this.#gpu.timestamps;
    const passes = planPasses(iterations, timed, this.#timingEvery, breaks);
    if (timed) this.#timestamps.ensure(passes.length * 2);
    const refreshes = Array.from({ length: iterations }, (_, i) => this.#refreshAt(this.#step + i));
    let sent = 0; // iterations submitted ahead of the rest
    try {
      passes.forEach((p, n) => {
        const pass = this.#timestamps.beginPass(encoder, timed ? 2 * n : null);
        for (let i = p.first; i < p.first + p.count; i++) {
          for (const phase of p.phase ? [p.phase] : PASS_PHASES) {
            recordPhase(recording, pass, phase, i, batch, chunk, i * batch, quant, refreshes[i]);
          }
        }
        pass.end();
        const end = p.first + p.count;
        if (breaks.includes(end) && passes[n + 1]?.first === end) {
          writeUpTo?.(end * batch);
          turn.submitPart(encoder.finish());
          encoder = this.#device.createCommandEncoder();
          sent = end;
        }
      });
    } catch (error) {
      // What went ahead trains: count its steps, so that later scale refreshes stay on period.
      this.#step += sent;
      throw error;
    }
    const back = new ChunkReadback(this.#device, encoder, this.#drain);
    const lossesAt = back.add(state.input.losses, 0, iterations * 4);
    const stampsAt = timed
      ? back.add(this.#timestamps.resolve(encoder, passes.length * 2), 0, passes.length * 16)
      : -1;
    const scalesAt = readsTableScales(quant)
      ? back.add(state.tableScales, 0, this.spec.tableRows.length * 4)
      : -1;
    back.record();
    writeUpTo?.(iterations * batch);
    this.#step += iterations;
    await turn.submit(encoder.finish());
    // Deno's mapAsync call blocks the thread until the GPU is idle. Mapping once the call
    // before has returned its results, on a later task, lets a caller that keeps one chunk in
    // flight take them and record the next chunk while this one trains; the next chunk then
    // submits as this one maps (`mapping`) and trains during mapAsync's 10 ms sleep.
    await turn.earlierDone();
    await nextTask();
    const results = await back.read(turn);
    if (scalesAt >= 0) this.#setHostScales(results[scalesAt]);
    loss.set(new Float32Array(results[lossesAt], 0, iterations));
    const wallMs = performance.now() - start;
    const stampWords = stampsAt >= 0 ? new BigUint64Array(results[stampsAt]) : null;
    if (stampWords) attributePhases(phases, passes, stampWords);
    else for (let i = 0; i < iterations; i++) phases.forward[i] = wallMs / iterations;
    for (let i = 0; i < iterations; i++) {
      if (!Number.isFinite(loss[i])) throw new NonFiniteLossError(i, loss[i]);
    }
    if (!stampWords) return { iterations, loss, phases, wallMs };
    const deviceClockMs = deviceClockSpan(stampWords, passes.length);
    return { iterations, loss, phases, wallMs, deviceClockMs };
  }

  /**
   * Trains one step (a chunk of one batch) with every dispatch in a timestamped pass of its own,
   * and returns each dispatch's GPU time (see `kernel_profile.ts`); null when the adapter has no
   * timestamp queries. The step trains as in {@linkcode trainChunk}.
   */
  async profileStep(
    chunk: BatchChunk,
    options: TrainOptions,
    warmUpRounds = 0,
  ): Promise<KernelTime[] | null> {
    if (batchCount(chunk) !== 1) {
      throw new Error(`Expected a chunk of one batch to profile but found ${batchCount(chunk)}`);
    }
    this.#check(chunk, chunk.samples, chunk.batchSize, "train", 0);
    if (!this.#gpu.timestamps) return null;
    const preparing = this.#prepareQat();
    if (preparing) await preparing;
    return this.#inTurn(async (turn) => {
      const earlier = turn.earlierSubmitted();
      if (earlier) await earlier;
      const { recording } = this.#prepareTraining(chunk, options);
      const quant = this.#active();
      const refresh = this.#refreshAt(this.#step);
      const encoder = this.#device.createCommandEncoder();
      if (warmUpRounds > 0) {
        const pass = encoder.beginComputePass();
        // Every pipeline's layout has the iteration block at group 1: unset, the dispatch (and
        // with it the whole command buffer) would be invalid.
        pass.setBindGroup(1, recording.iterations, [0]);
        dispatch(pass, this.#warmUpKernel(warmUpRounds), WARM_UP_WORKGROUPS);
        pass.end();
      }
      const querySet = this.#device.createQuerySet({ type: "timestamp", count: 4096 });
      try {
        const profiler = new KernelProfiler(encoder, querySet);
        for (const phase of PASS_PHASES) {
          const pass = profiler.pass(phase);
          recordPhase(recording, pass, phase, 0, chunk.batchSize, chunk, 0, quant, refresh);
        }
        const bytes = profiler.dispatches * 16;
        const resolved = this.#state.buffers.create(
          "profile timestamps",
          bytes,
          GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
        );
        encoder.resolveQuerySet(querySet, 0, profiler.dispatches * 2, resolved, 0);
        const stamps = stage(this.#device, encoder, resolved, 0, bytes);
        const scales = this.#stageScales(encoder, quant);
        this.#step += 1;
        await turn.submit(encoder.finish());
        await turn.earlierDone();
        const reading = Promise.all([readStaged(stamps), scales?.()]);
        turn.mapping();
        const [data] = await reading;
        this.#state.buffers.destroy(resolved);
        return profiler.times(new BigUint64Array(data));
      } finally {
        querySet.destroy();
      }
    });
  }

  /** The FMA-peak kernel bound for `rounds` rounds (see {@linkcode profileGpuStep}). */
  #warmUpKernel(rounds: number): BoundKernel {
    if (this.#warmUp?.rounds !== rounds) this.#warmUp = bindWarmUp(this.#state, rounds);
    return this.#warmUp.kernel;
  }

  async predict(chunk: BatchChunk): Promise<Float32Array> {
    const samples = chunk.samples;
    const batch = Math.min(chunk.batchSize, this.#maxBatch);
    this.#check(chunk, samples, batch, "predict", 0);
    const preparing = this.#prepareQat();
    if (preparing) await preparing;
    const probabilities = new Float32Array(samples);
    if (samples === 0) return probabilities;
    return this.#inTurn((turn) => this.#predict(chunk, batch, turn, probabilities));
  }

  async #predict(
    chunk: BatchChunk,
    batch: number,
    turn: SubmitTurn,
    probabilities: Float32Array,
  ): Promise<Float32Array> {
    const earlier = turn.earlierSubmitted();
    if (earlier) await earlier;
    const state = this.#state;
    const samples = chunk.samples;
    const iterations = Math.ceil(samples / batch);
    this.#rebindIf(uploadChunk(state, chunk, samples));
    this.#rebindIf(writeIterations(state, iterations, batch, samples, MODE_PROBABILITIES, 0));
    this.#rebindIf(ensureInput(state, "probabilities", samples * 4));
    this.#rebindIf(ensureInput(state, "losses", iterations * 4));
    const recording = this.#recording();
    const quant = this.#active();
    const encoder = this.#device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    // Weights do not change while predicting: quantize once, with the cached table scales.
    if (quant) {
      recordPhase(recording, pass, "scale", 0, batch, chunk, 0, quant, this.#refreshAt(-1));
    }
    for (let i = 0; i < iterations; i++) {
      const rows = Math.min(batch, samples - i * batch);
      recordPhase(recording, pass, "forward", i, rows, chunk, i * batch, quant, false);
    }
    pass.end();
    const probs = stage(this.#device, encoder, state.input.probabilities, 0, samples * 4);
    const scales = this.#stageScales(encoder, quant);
    await turn.submit(encoder.finish());
    const reading = Promise.all([readStaged(probs), scales?.()]);
    turn.mapping();
    const [data] = await reading;
    probabilities.set(new Float32Array(data, 0, samples));
    return probabilities;
  }

  async traceStep(chunk: BatchChunk, options: TrainOptions): Promise<StepTrace> {
    const rows = chunk.batchSize;
    this.#check(chunk, rows, rows, "trace", options.learningRate);
    const preparing = this.#prepareQat();
    if (preparing) await preparing;
    return this.#inTurn((turn) => this.#traceStep(chunk, options, turn));
  }

  async #traceStep(chunk: BatchChunk, options: TrainOptions, turn: SubmitTurn): Promise<StepTrace> {
    const earlier = turn.earlierSubmitted();
    if (earlier) await earlier;
    const state = this.#state;
    const rows = chunk.batchSize;
    this.#rebindIf(uploadChunk(state, chunk, rows));
    this.#rebindIf(ensureLsqParts(state, chunk, rows, rows));
    this.#rebindIf(ensureSortKeys(state, chunk, rows, 1, this.#sortedUpdateFrom));
    const mode = MODE_GRADIENT | MODE_PROBABILITIES;
    this.#rebindIf(writeIterations(state, 1, rows, rows, mode, options.learningRate));
    this.#rebindIf(ensureInput(state, "probabilities", rows * 4));
    this.#rebindIf(ensureInput(state, "losses", 16));
    const recording = this.#recording();
    const quant = this.#active();
    const refresh = this.#refreshAt(this.#step);
    const L = state.layout;
    const device = this.#device;
    const encoder = device.createCommandEncoder();
    let pass = encoder.beginComputePass();
    for (const phase of ["scale", "forward", "backward"] as const) {
      recordPhase(recording, pass, phase, 0, rows, chunk, 0, quant, refresh);
    }
    pass.end();
    const dt = stage(device, encoder, state.interactionInputGrad, 0, rows * L.ldt * 4);
    const grads = stage(device, encoder, state.mlpGrad, 0, L.floats * 4);
    pass = encoder.beginComputePass();
    recordPhase(recording, pass, "update", 0, rows, chunk, 0, quant, refresh);
    pass.end();
    const probs = stage(device, encoder, state.input.probabilities, 0, rows * 4);
    const loss = stage(device, encoder, state.input.losses, 0, 4);
    const scales = this.#stageScales(encoder, quant);
    await turn.submit(encoder.finish());
    this.#step += 1;
    const [dtData, gradData, probData, lossData] = await Promise.all([
      readStaged(dt),
      readStaged(grads),
      readStaged(probs),
      readStaged(loss),
      scales?.(),
    ]);
    const embeddings = denseTableGradients(this.spec, chunk, rows, new Float32Array(dtData));
    return {
      probabilities: new Float32Array(probData, 0, rows).slice(),
      loss: new Float32Array(lossData)[0],
      gradients: { embeddings, ...unpackMlps(L, new Float32Array(gradData)) },
    };
  }

  async readTable(table: number): Promise<Float32Array> {
    this.#assertLive();
    if (!(Number.isInteger(table) && table >= 0 && table < this.spec.tableRows.length)) {
      throw new RangeError(
        `Expected a table in [0, ${this.spec.tableRows.length}) but found ${table}`,
      );
    }
    return await this.#inTurn(async (turn) => {
      const earlier = turn.earlierSubmitted();
      if (earlier) await earlier;
      const encoder = this.#device.createCommandEncoder();
      const read = stageTable(this.#state, encoder, table);
      await turn.submit(encoder.finish());
      return await read();
    });
  }

  async readParams(): Promise<Params> {
    this.#assertLive();
    return await this.#inTurn(async (turn) => {
      const earlier = turn.earlierSubmitted();
      if (earlier) await earlier;
      const encoder = this.#device.createCommandEncoder();
      const read = stageParams(this.#state, encoder);
      await turn.submit(encoder.finish());
      return await read();
    });
  }

  get quantization(): QuantConfig | null {
    return this.#quant;
  }

  setQuantizationActive(active: boolean): void {
    this.#quantActive = active;
  }

  async embeddingScales(): Promise<Float32Array> {
    this.#assertLive();
    if (!this.#scalesStale && this.#submits.inFlight === 0) return this.#hostScales.slice();
    return await this.#inTurn(async (turn) => {
      // Every earlier call refreshes the host copy when it reads back; only quantizeInPlace
      // leaves it stale, and then the scales are read back in this call's turn.
      await turn.earlierDone();
      if (this.#scalesStale) {
        const encoder = this.#device.createCommandEncoder();
        const read = this.#stageScalesNow(encoder);
        await turn.submit(encoder.finish());
        await read();
      }
      return this.#hostScales.slice();
    });
  }

  quantizeInPlace(config: Pick<QuantConfig, "embeddingBits" | "mlpBits" | "quantizeBias">): void {
    this.#assertLive();
    this.#submits.assertIdle("quantizeInPlace");
    const state = this.#state;
    // An iteration block must exist for the kernels' group 1.
    this.#rebindIf(writeIterations(state, 1, 1, 1, 0, 0));
    const encoder = this.#device.createCommandEncoder();
    const temporary = encodeQuantizeInPlace(state, this.#scaleKernels, encoder, config);
    this.#device.queue.submit([encoder.finish()]);
    for (const b of temporary) state.buffers.destroy(b);
    if (config.embeddingBits !== null) {
      this.#scalesFound = true;
      this.#scalesStale = true;
    }
  }

  memoryBytes(): number {
    return this.#state.buffers.bytes;
  }

  /** Data-parallel training's hooks (`dp_train.ts`). */
  dataParallelHooks(): GpuDataParallelHooks {
    checkDataParallelQuant(this.#quant);
    return {
      spec: this.spec,
      trainChunk: (chunk, options, exchange, batchesPerStep = 1) =>
        this.#inTurn(async (turn) => {
          const earlier = turn.earlierSubmitted();
          if (earlier) await earlier;
          await turn.earlierDone();
          return await this.#trainExchanging(chunk, options.learningRate, exchange, batchesPerStep);
        }),
    };
  }

  async #trainExchanging(
    chunk: BatchChunk,
    learningRate: number,
    exchange: GpuExchange,
    batchesPerStep: number,
  ): Promise<TrainChunkResult> {
    const iterations = batchCount(chunk);
    const batch = chunk.batchSize;
    const samples = iterations * batch;
    this.#check(chunk, samples, batch, "train", learningRate);
    const perStep = batchesPerStep;
    if (!Number.isInteger(perStep) || perStep < 1 || iterations % perStep !== 0) {
      throw new RangeError(
        `Expected whole steps of a positive integer of batches but found ${iterations} batches ` +
          `in steps of ${perStep}`,
      );
    }
    const state = this.#state;
    // The exchange updates the tables itself: no sort keys or LSQ parts (LSQ is refused).
    this.#uploadTraining(chunk, learningRate);
    // Scales found on a global step's first batch; its other shares see the same weights.
    const refreshes = Array.from(
      { length: iterations },
      (_, i) => i % perStep === 0 && this.#refreshAt(this.#step + i / perStep),
    );
    const recording = this.#recording();
    const quant = this.#active();
    const r = await trainChunkExchanging(
      { state, recording, quant, refreshes },
      chunk,
      iterations,
      batch,
      exchange,
    );
    this.#step += iterations / perStep;
    for (let i = 0; i < iterations; i++) {
      if (!Number.isFinite(r.loss[i])) throw new NonFiniteLossError(i, r.loss[i]);
    }
    return r;
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    try {
      await this.#device.queue.onSubmittedWorkDone();
    } finally {
      this.#timestamps.destroy();
      this.#drain?.dispose();
      this.#state.buffers.destroyAll();
      this.#device.destroy();
    }
  }
}

/**
 * The data-parallel hooks of `engine`, which must be a GPU engine (`dp_train.ts`): what a GPU
 * replica (`comm/gpu_replica.ts`) trains through.
 */
export function gpuDataParallelHooks(engine: Engine): GpuDataParallelHooks {
  if (!(engine instanceof GpuEngine)) {
    throw new TypeError(
      `Expected a GPU engine for GPU data parallelism but found ${engine.info.name}`,
    );
  }
  return engine.dataParallelHooks();
}
