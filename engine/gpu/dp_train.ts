/**
 * Data-parallel training of a GPU engine (one replica): every iteration's forward and backward
 * passes are submitted, then an exchange (`comm/gpu_replica.ts`) compresses this replica's
 * gradients on the GPU, exchanges them and writes the global gradient (the MLP's into the
 * engine's gradient buffer, the tables' as an update to record); then the update step: SGD of the
 * MLP and the exchange's table update. One submit and at least one readback per iteration: the
 * price of exchanging gradients every step.
 *
 * @module
 */
import type { BatchChunk } from "../batch.ts";
import type { TrainChunkResult } from "../engine.ts";
import { allocatePhaseSamples } from "../phases.ts";
import { pactActive, type QuantConfig } from "../quant.ts";
import type { ModelSpec } from "../spec.ts";
import type { KernelBinder } from "./binder.ts";
import type { GpuLayout } from "./layout.ts";
import { ITER_STRIDE } from "./pipelines.ts";
import { type Recording, recordMlpUpdate, recordPhase } from "./record.ts";
import type { GpuState } from "./state.ts";
import { largestBag } from "./input.ts";
import { readStaged, stage } from "./submit.ts";
import type { TablePlan } from "./table_plan.ts";

/** A GPU replica's buffers for the exchange, as they are for the chunk being trained. */
export interface GpuReplicaBuffers {
  device: GPUDevice;
  binder: KernelBinder;
  spec: ModelSpec;
  layout: GpuLayout;
  plan: TablePlan;
  /** The packed MLP gradients (`layout.ts`); the exchange writes the global ones here. */
  mlpGrad: GPUBuffer;
  /** dT of the batch. */
  dT: GPUBuffer;
  /** The chunk input (`input.ts`). */
  input: { tableDirectory: GPUBuffer; indices: GPUBuffer; offsets: GPUBuffer };
  segments: GPUBuffer;
  /** The arenas of arena group `g`. */
  groupArenas(g: number): GPUBuffer[];
  /** Binds iteration `i`'s block (the batch) as group 1 of `pass`. */
  bindIteration(pass: GPUComputePassEncoder, i: number): void;
}

/** One update step's table part, recorded after the MLP's SGD. */
export interface GpuTableStep {
  /** Writes the global MLP gradient into the engine's (where the host has not uploaded it). */
  recordMlpGradient?: (pass: GPUComputePassEncoder) => void;
  recordTables(pass: GPUComputePassEncoder): void;
}

/** What a data-parallel replica does around its GPU engine's iterations. */
export interface GpuExchange {
  /** Once per chunk, after its upload: the buffers of this chunk; `entries` per table at most. */
  prepare(buffers: GpuReplicaBuffers, entries: number): void;
  /**
   * After iteration `i`'s backward pass (batch rows `[s0, s0 + rows)` of the chunk): the global
   * gradient, or null for no step after this iteration (a simulated worker before the last).
   */
  step(i: number, rows: number, s0: number): Promise<GpuTableStep | null>;
  /** After the chunk (frees what `prepare` made). */
  finish(): void;
}

/** Data-parallel training's hooks of a GPU engine (`gpuDataParallelHooks`). */
export interface GpuDataParallelHooks {
  spec: ModelSpec;
  /**
   * Trains every full batch of `chunk`, calling `exchange` after each backward pass.
   * `batchesPerStep` batches make one global step (default 1; K for K simulated workers, whose
   * shares of a step see the same weights): QAT's scale period counts global steps, as it does
   * on K GPU ranks, and table scales are found on a step's first batch.
   */
  trainChunk(
    chunk: BatchChunk,
    options: { learningRate: number },
    exchange: GpuExchange,
    batchesPerStep?: number,
  ): Promise<TrainChunkResult>;
}

/** Throws for the QAT settings whose learned parameters the exchange does not average. */
export function checkDataParallelQuant(quant: QuantConfig | null): void {
  if (quant && (quant.quantizer === "lsq" || pactActive(quant))) {
    throw new RangeError(
      `Expected QAT without learned steps or clips for GPU data parallelism but found ` +
        `${quant.quantizer}`,
    );
  }
}

/**
 * The iterations of one chunk with an exchange after each backward pass (the engine has
 * uploaded the chunk and written its iteration blocks).
 */
export async function trainChunkExchanging(
  o: {
    state: GpuState;
    recording: Recording;
    quant: QuantConfig | null;
    /** Whether iteration i finds new table scales (QAT). */
    refreshes: boolean[];
  },
  chunk: BatchChunk,
  iterations: number,
  batch: number,
  exchange: GpuExchange,
): Promise<TrainChunkResult> {
  const start = performance.now();
  const { state, recording, quant } = o;
  const device = state.device;
  const group = recording.iterations;
  exchange.prepare({
    device,
    binder: state.binder,
    spec: state.spec,
    layout: state.layout,
    plan: state.plan,
    mlpGrad: state.mlpGrad,
    dT: state.interactionInputGrad,
    // A snapshot: the engine replaces input buffers that must grow.
    input: {
      tableDirectory: state.input.tableDirectory,
      indices: state.input.indices,
      offsets: state.input.offsets,
    },
    segments: state.segments,
    groupArenas: (g) => state.groupArenas(g),
    bindIteration: (pass, i) => pass.setBindGroup(1, group, [i * ITER_STRIDE]),
  }, largestBag(chunk, batch));
  const phases = allocatePhaseSamples(iterations);
  const quantizedMlp = quant?.mlpBits ? quant : null;
  const pact = pactActive(quant);
  try {
    for (let i = 0; i < iterations; i++) {
      const t0 = performance.now();
      let encoder = device.createCommandEncoder();
      let pass = encoder.beginComputePass();
      for (const phase of ["scale", "forward", "backward"] as const) {
        recordPhase(recording, pass, phase, i, batch, chunk, i * batch, quant, o.refreshes[i]);
      }
      pass.end();
      device.queue.submit([encoder.finish()]);
      const t1 = performance.now();
      const step = await exchange.step(i, batch, i * batch);
      const t2 = performance.now();
      if (step) {
        encoder = device.createCommandEncoder();
        pass = encoder.beginComputePass();
        pass.setBindGroup(1, group, [i * ITER_STRIDE]);
        step.recordMlpGradient?.(pass);
        recordMlpUpdate(recording, pass, quantizedMlp, pact);
        step.recordTables(pass);
        // Rows written outside the update phase, every step: scale finding reads the tables.
        state.blockMaxima.stale = true;
        state.blockMaxima.fallback = true;
        pass.end();
        device.queue.submit([encoder.finish()]);
      }
      // Host time: the GPU's share of compute is inside the exchange's first wait.
      phases.forward[i] = t1 - t0;
      phases.communication[i] = t2 - t1;
      phases.update[i] = performance.now() - t2;
    }
    const encoder = device.createCommandEncoder();
    const losses = stage(device, encoder, state.input.losses, 0, iterations * 4);
    device.queue.submit([encoder.finish()]);
    const loss = new Float32Array(await readStaged(losses), 0, iterations).slice();
    return { iterations, loss, phases, wallMs: performance.now() - start };
  } finally {
    exchange.finish();
  }
}
