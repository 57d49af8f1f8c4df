/**
 * The training methods the GPU benches time (INT4 tables and MLP), each with the whole-table
 * passes it makes per iteration: reads or writes of every table's bytes, its memory-traffic
 * floor; and the suite and scale the GPU tools take. Shared by `bench:gpu`, `profile:gpu` and
 * `probe:gpu-chunks`.
 *
 * @module
 */
import type { QuantConfig } from "../engine/quant.ts";
import { dqrm, hawq, lsq, pact } from "../suites/experiments.ts";
import { stepTableMaxima } from "../engine/gpu/state.ts";
import { BLOCK_MAX_FLOATS } from "../engine/gpu/kernels/block_max.ts";
import { kaggleSpec, type ModelSpec, terabyteSpec } from "../engine/spec.ts";
import { numberFlag, suiteArg, UsageError } from "./args.ts";

/**
 * The GPU tools' architecture: the suite named first (kaggle by default, or terabyte), its
 * `--scale` (default 1: full tables) and the model spec they make.
 */
export function suiteSpecArgs(
  positionals: readonly string[],
  scaleValue: string | undefined,
): { suite: "kaggle" | "terabyte"; scale: number; spec: ModelSpec } {
  const suite = suiteArg(positionals, ["kaggle", "terabyte"] as const, "kaggle");
  const scale = numberFlag("scale", scaleValue, 0, 1) ?? 1;
  return { suite, scale, spec: suite === "kaggle" ? kaggleSpec(scale) : terabyteSpec(scale) };
}

/**
 * A method's quantization (null: FP32), how often it finds every table's max |w| (per step), and
 * the other whole-table passes it makes per step (reads or writes of every table's bytes).
 */
export interface GpuMethod {
  quant: QuantConfig | null;
  maximaPerStep: number;
  otherPasses: number;
}

/** The methods by name. */
export const GPU_METHODS: Readonly<Record<string, GpuMethod>> = {
  fp32: { quant: null, maximaPerStep: 0, otherPasses: 0 },
  // the maxima every 200 steps
  dqrm: { quant: dqrm(4, 4, 200), maximaPerStep: 1 / 200, otherPasses: 0 },
  "dqrm-p1": { quant: dqrm(4, 4, 1), maximaPerStep: 1, otherPasses: 0 },
  // the maxima, then the quantized copy's read and write, every step
  hawq: { quant: hawq(4, 4), maximaPerStep: 1, otherPasses: 2 },
  // DoReFa's per-table maximum every step
  pact: { quant: pact(4, 4), maximaPerStep: 1, otherPasses: 0 },
  // learned steps: only gathered rows
  lsq: { quant: lsq(4, 4), maximaPerStep: 0, otherPasses: 0 },
};

/**
 * A method's whole-table passes per step, its memory-traffic floor. With incremental maxima
 * (the engine's default) finding the maxima reads the block maxima, a u32 per
 * `BLOCK_MAX_FLOATS` floats, kept current after each update by rereading only the touched rows'
 * blocks (a few KiB a row, not counted); without, it reads every table.
 */
export function tablePasses(method: GpuMethod, incrementalMaxima: boolean): number {
  // Block maxima are kept only for methods finding maxima often (`stepTableMaxima`).
  const kept = incrementalMaxima && stepTableMaxima(method.quant);
  const maximaPass = kept ? 1 / BLOCK_MAX_FLOATS : 1;
  return method.maximaPerStep * maximaPass + method.otherPasses;
}

/** The names of a `--methods` list, checked against {@linkcode GPU_METHODS}. */
export function methodsFlag(value: string | undefined, fallback: string): string[] {
  const methods = (value ?? fallback).split(",").map((m) => m.trim());
  for (const m of methods) {
    if (!(m in GPU_METHODS)) {
      throw new UsageError(
        `--methods expects names from ${Object.keys(GPU_METHODS).join(", ")} but found '${m}'`,
      );
    }
  }
  return methods;
}

/** A `--batch-size` list: integers in [1, 65535]. */
export function batchSizesFlag(value: string | undefined, fallback: string): number[] {
  const batches = (value ?? fallback).split(",").map((s) => Number(s.trim()));
  if (batches.some((b) => !Number.isInteger(b) || b < 1 || b > 65535)) {
    throw new UsageError(
      `--batch-size expects a list of integers in [1, 65535] but found '${value}'`,
    );
  }
  return batches;
}
