/**
 * Which interaction kernels a model's shape takes and how they are dispatched: the register-tiled
 * pair (`kernels/interaction_tiled.ts`) where vectors are a multiple of 4 floats wide, else the
 * kernels staged in workgroup memory where a sample fits, else the per-value ones reading global
 * memory. All give the same bits.
 *
 * @module
 */
import type { KernelSource } from "./pipelines.ts";
import { interactionBackwardKernel } from "./kernels/interaction_backward.ts";
import { interactionForwardKernel, interactionStages } from "./kernels/interaction_forward.ts";
import {
  interactionBackwardTiledKernel,
  interactionForwardTiledKernel,
  interactionTiling,
} from "./kernels/interaction_tiled.ts";

/** The interaction kernels' variants. */
export type InteractionMode = "tiled" | "staged" | "global";

/** The interaction's kernels for one shape and their grids: x workgroups, samples per y. */
export interface InteractionPlan {
  mode: InteractionMode;
  forward: KernelSource;
  backward: KernelSource;
  /** Workgroups along x of the forward and the backward. */
  forwardX: number;
  backwardX: number;
  /** Samples per workgroup along y of the forward and the backward. */
  forwardSamples: number;
  backwardSamples: number;
}

/** The fastest variant that applies to `f` vectors of `d` floats, R's rows `ldr` floats apart. */
export function interactionMode(f: number, d: number, ldr?: number): InteractionMode {
  if (interactionTiling(f, d, ldr)) return "tiled";
  return interactionStages(f, d) ? "staged" : "global";
}

/**
 * The kernels of `mode` (default: {@linkcode interactionMode}) for `f` vectors of `d` floats and
 * R rows of `ldr` floats.
 */
export function planInteraction(
  f: number,
  d: number,
  ldr: number,
  mode: InteractionMode = interactionMode(f, d, ldr),
): InteractionPlan {
  if (mode === "tiled") {
    const tiling = interactionTiling(f, d, ldr);
    if (!tiling) throw new RangeError(`interaction: ${f} vectors of ${d} floats cannot be tiled`);
    return {
      mode,
      forward: interactionForwardTiledKernel(f, d),
      backward: interactionBackwardTiledKernel(f, d),
      forwardX: 1,
      backwardX: 1,
      forwardSamples: tiling.forwardSamples,
      backwardSamples: tiling.backwardSamples,
    };
  }
  const staged = mode === "staged";
  if (staged && !interactionStages(f, d)) {
    throw new RangeError(`interaction: ${f} vectors of ${d} floats exceed workgroup memory`);
  }
  return {
    mode,
    forward: interactionForwardKernel(f, d, staged),
    backward: interactionBackwardKernel(f, d, staged),
    // Staged: one workgroup a sample; else one invocation a value (workgroups of 64).
    forwardX: staged ? 1 : Math.ceil(ldr / 64),
    backwardX: staged ? 1 : Math.ceil((f * d) / 64),
    forwardSamples: 1,
    backwardSamples: 1,
  };
}
