/**
 * Training phases and their per-iteration timings (summarised by `summarize` in
 * `record/stats.ts`).
 *
 * @module
 */

/**
 * The phases of one training iteration. `scale` (finding quantization scales) and
 * `communication` (gradient exchange between workers) stay at zero until quantization and data
 * parallelism fill them.
 */
export const PHASES = ["scale", "forward", "backward", "communication", "update"] as const;

/** One training phase. */
export type Phase = typeof PHASES[number];

/** Per-iteration milliseconds of each phase over a chunk or a run. */
export type PhaseSamples = Record<Phase, Float64Array>;

/** Allocates zeroed per-iteration sample arrays for `iterations` iterations. */
export function allocatePhaseSamples(iterations: number): PhaseSamples {
  return Object.fromEntries(PHASES.map((p) => [p, new Float64Array(iterations)])) as PhaseSamples;
}
