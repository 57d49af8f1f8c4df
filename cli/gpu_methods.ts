/**
 * The training methods the GPU benches time (INT4 tables and MLP), each with the whole-table
 * passes it makes per iteration: reads or writes of every table's bytes, its memory-traffic
 * floor. Shared by `bench:gpu` and `profile:gpu`.
 *
 * @module
 */
import type { QuantConfig } from "../engine/quant.ts";
import { dqrm, hawq, lsq, pact } from "../suites/experiments.ts";
import { UsageError } from "./args.ts";

/** A method's quantization (null: FP32) and its whole-table passes per iteration. */
export interface GpuMethod {
  quant: QuantConfig | null;
  tablePasses: number;
}

/** The methods by name. */
export const GPU_METHODS: Readonly<Record<string, GpuMethod>> = {
  fp32: { quant: null, tablePasses: 0 },
  // a max-|w| read of every table every 200 steps
  dqrm: { quant: dqrm(4, 4, 200), tablePasses: 1 / 200 },
  "dqrm-p1": { quant: dqrm(4, 4, 1), tablePasses: 1 },
  // the max-|w| read, then the quantized copy's read and write, every step
  hawq: { quant: hawq(4, 4), tablePasses: 3 },
  // DoReFa's per-table maximum every step
  pact: { quant: pact(4, 4), tablePasses: 1 },
  // learned steps: only gathered rows
  lsq: { quant: lsq(4, 4), tablePasses: 0 },
};

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
