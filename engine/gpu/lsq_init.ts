/**
 * LSQ's initial steps, from the weights at the first quantized call, as the CPU engine sets them
 * at its first quantized step: a table's step is `2 mean|w| / sqrt(n)` (float64 sum), a row's the
 * same over the row in float32.
 *
 * @module
 */
import type { Params } from "../params.ts";
import { levels, type QuantConfig } from "../quant.ts";
import { writeTo } from "./buffers.ts";
import type { GpuState } from "./state.ts";

/** Writes LSQ's initial table steps (as the table scales) and MLP row steps of `params`. */
export function writeInitialLsqSteps(state: GpuState, params: Params, q: QuantConfig): void {
  const queue = state.device.queue;
  if (q.embeddingBits !== null) {
    const n = levels(q.embeddingBits);
    const steps = Float32Array.from(params.embeddings, (t) => lsqTableStep(t, n));
    writeTo(queue, state.tableScales, 0, steps);
  }
  if (q.mlpBits !== null) {
    const L = state.layout;
    const steps = new Float32Array(L.rows);
    const n = levels(q.mlpBits);
    [...L.bottom, ...L.top].forEach((l, i) => {
      const w = (i < L.bottom.length ? params.bottom[i] : params.top[i - L.bottom.length])
        .weight;
      for (let r = 0; r < l.outputs; r++) {
        steps[l.scaleOffset + r] = lsqRowStep(w.subarray(r * l.inputs, (r + 1) * l.inputs), n);
      }
    });
    writeTo(queue, state.qat.rowSteps!, 0, steps);
  }
}

/** LSQ's initial step of a table, `2 mean|w| / sqrt(n)` (float64, as the CPU engine). */
function lsqTableStep(table: Float32Array, n: number): number {
  let sum = 0;
  for (let i = 0; i < table.length; i++) sum += Math.abs(table[i]);
  return Math.max((2 * sum) / table.length / Math.sqrt(n), 1e-8);
}

/** LSQ's initial step of a weight row, in float32 as the CPU engine's `lsqInitRows`. */
function lsqRowStep(row: Float32Array, n: number): number {
  const f = Math.fround;
  let sum = 0;
  for (let c = 0; c < row.length; c++) sum = f(sum + Math.abs(row[c]));
  return Math.max(f(f(f(2 * sum) / row.length) / f(Math.sqrt(n))), f(1e-8));
}
