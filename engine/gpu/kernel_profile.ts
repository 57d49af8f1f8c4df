/**
 * Per-kernel GPU time: a stand-in for a compute pass that records every dispatch in a compute
 * pass of its own with timestamps, so that one training step's kernels can be timed one by one
 * (`GpuEngine.profileStep`, `deno task profile:gpu`). Each pass costs more host time to encode
 * than a dispatch in a shared pass, and the timestamps include a pass's own start and end, so
 * the sum over kernels slightly exceeds a phase's time in one pass: for finding where time goes,
 * not for headline figures.
 *
 * @module
 */
import type { Phase } from "../phases.ts";
import { FMA_PEAK, FMA_PEAK_WORKGROUP, fmaPeakUniform } from "./kernels/fma_peak.ts";
import type { BoundKernel } from "./pipelines.ts";
import type { GpuState } from "./state.ts";

/** Workgroups of the profiler's warm-up dispatch (a few per SM of a large GPU). */
export const WARM_UP_WORKGROUPS = 8192;

/**
 * The FMA-peak kernel bound for `rounds` rounds over {@linkcode WARM_UP_WORKGROUPS} workgroups:
 * untimed work before a profiled step, so that an idle GPU's clock comes up first.
 */
export function bindWarmUp(
  state: GpuState,
  rounds: number,
): { rounds: number; kernel: BoundKernel } {
  const binder = state.binder;
  const out = state.buffers.create(
    "warm-up",
    WARM_UP_WORKGROUPS * FMA_PEAK_WORKGROUP * 4,
    GPUBufferUsage.STORAGE,
  );
  const kernel = binder.bind(FMA_PEAK, [binder.uniform("warm-up", fmaPeakUniform(rounds)), out]);
  return { rounds, kernel };
}

/** One dispatch's GPU time in a profiled step. */
export interface KernelTime {
  phase: Phase;
  /** The kernel's name (its pipeline's label). */
  kernel: string;
  /** Workgroups dispatched (x, y, z). */
  grid: [number, number, number];
  ms: number;
}

/** What a dispatch needs again in a pass of its own. */
interface Recorded {
  phase: Phase;
  kernel: string;
  grid: [number, number, number];
}

/**
 * Hands out {@linkcode ProfilingPass}es over one encoder and query set, and reads each
 * dispatch's time from the resolved timestamps.
 */
export class KernelProfiler {
  readonly #encoder: GPUCommandEncoder;
  readonly #querySet: GPUQuerySet;
  readonly #recorded: Recorded[] = [];

  constructor(encoder: GPUCommandEncoder, querySet: GPUQuerySet) {
    this.#encoder = encoder;
    this.#querySet = querySet;
  }

  /** Dispatches recorded so far (two timestamps each). */
  get dispatches(): number {
    return this.#recorded.length;
  }

  /** A stand-in pass for `phase`: pass it where the engine records into a compute pass. */
  pass(phase: Phase): GPUComputePassEncoder {
    return new ProfilingPass(this, phase) as unknown as GPUComputePassEncoder;
  }

  /** Records one dispatch in a timestamped pass of its own. */
  dispatch(
    phase: Phase,
    pipeline: GPUComputePipeline,
    groups: Map<number, [GPUBindGroup, number[]]>,
    grid: [number, number, number],
  ): void {
    const n = this.#recorded.length;
    if (2 * n + 2 > this.#querySet.count) {
      throw new Error(
        `Expected at most ${this.#querySet.count / 2} dispatches in a profiled step but found more`,
      );
    }
    const pass = this.#encoder.beginComputePass({
      timestampWrites: {
        querySet: this.#querySet,
        beginningOfPassWriteIndex: 2 * n,
        endOfPassWriteIndex: 2 * n + 1,
      },
    });
    pass.setPipeline(pipeline);
    for (const [index, [group, offsets]] of groups) pass.setBindGroup(index, group, offsets);
    pass.dispatchWorkgroups(...grid);
    pass.end();
    this.#recorded.push({ phase, kernel: pipeline.label, grid });
  }

  /** Each dispatch's time, from the resolved timestamps of this profiler's query set. */
  times(stamps: BigUint64Array): KernelTime[] {
    return this.#recorded.map((r, n) => ({
      ...r,
      ms: Math.max(0, Number(stamps[2 * n + 1] - stamps[2 * n])) / 1e6,
    }));
  }
}

/**
 * The part of `GPUComputePassEncoder` the engine's recording uses: pipeline and bind groups are
 * remembered, and each dispatch goes to the profiler with them.
 */
class ProfilingPass {
  readonly #profiler: KernelProfiler;
  readonly #phase: Phase;
  #pipeline: GPUComputePipeline | null = null;
  readonly #groups = new Map<number, [GPUBindGroup, number[]]>();

  constructor(profiler: KernelProfiler, phase: Phase) {
    this.#profiler = profiler;
    this.#phase = phase;
  }

  setPipeline(pipeline: GPUComputePipeline): void {
    this.#pipeline = pipeline;
  }

  setBindGroup(index: number, group: GPUBindGroup, offsets: number[] = []): void {
    this.#groups.set(index, [group, [...offsets]]);
  }

  dispatchWorkgroups(x: number, y = 1, z = 1): void {
    if (!this.#pipeline) {
      throw new Error("Expected a pipeline set before a dispatch but found none");
    }
    this.#profiler.dispatch(this.#phase, this.#pipeline, this.#groups, [x, y, z]);
  }

  end(): void {}
}
