/**
 * The CPU engine's gather: dense features copied and embedding bags summed into the interaction
 * input T, for any range of batch rows and any tables, so that training (tables split between
 * threads) and prediction (row tiles, every table) share it. A row's values do not depend on
 * the range it is gathered in.
 *
 * @module
 */
import type { BatchChunk } from "../batch.ts";
import { dorefa, levels, type QuantConfig } from "../quant.ts";
import type { ModelSpec } from "../spec.ts";
import type { CpuLayout } from "./layout.ts";
import type { PackedGather } from "./packed_tables.ts";
import type { Kernels } from "./wasm.ts";

/** Gathers rows of a batch into the engine's memory; see the module documentation. */
export class RowGather {
  readonly #f32: Float32Array;
  readonly #layout: CpuLayout;
  readonly #spec: ModelSpec;
  readonly #tables: Float32Array[];
  readonly #quantTables: Float32Array[] | null;
  readonly #scales: Float32Array;
  readonly #packed: PackedGather | null;
  readonly #k: Kernels;

  /**
   * Views of the engine's memory, FP32 tables (or packed ones) and table scales; `kernels` over
   * the engine's memory.
   */
  constructor(options: {
    f32: Float32Array;
    kernels: Kernels;
    layout: CpuLayout;
    spec: ModelSpec;
    tables: Float32Array[];
    quantTables: Float32Array[] | null;
    scales: Float32Array;
    packed: PackedGather | null;
  }) {
    this.#f32 = options.f32;
    this.#layout = options.layout;
    this.#spec = options.spec;
    this.#tables = options.tables;
    this.#quantTables = options.quantTables;
    this.#scales = options.scales;
    this.#packed = options.packed;
    this.#k = options.kernels;
  }

  /** Copies the dense features of batch rows [r0, r1) (samples from `s0`) into the input. */
  dense(chunk: BatchChunk, s0: number, r0: number, r1: number): void {
    const f32 = this.#f32;
    const L = this.#layout;
    const nDense = this.#spec.denseFeatures;
    const ld0 = L.bottom[0].ldx;
    const dense = chunk.dense;
    for (let r = r0; r < r1; r++) {
      const src = (s0 + r) * nDense;
      const dst = L.dense / 4 + r * ld0;
      for (let q = 0; q < nDense; q++) f32[dst + q] = dense[src + q];
    }
  }

  /**
   * Sums the bags of table `t` of batch rows [r0, r1) into T, under the quantization `active`
   * (null: FP32 or packed tables as they are).
   */
  table(
    t: number,
    chunk: BatchChunk,
    s0: number,
    r0: number,
    r1: number,
    active: QuantConfig | null,
  ): void {
    const f32 = this.#f32;
    const L = this.#layout;
    const d = this.#spec.embeddingDim;
    const tBase = L.t / 4;
    const idx = chunk.indices[t], off = chunk.offsets[t];
    if (this.#packed) {
      const base = tBase + r0 * L.ldt + (t + 1) * L.dimP;
      this.#packed.gather(t, f32, base, L.ldt, idx, off, s0 + r0, r1 - r0);
      return;
    }
    const bits = active?.embeddingBits ?? null;
    const perRow = bits !== null && active!.gatheredRowsOnly;
    const useDorefa = active?.quantizer === "dorefa";
    const n = bits === null ? 0 : levels(bits);
    // HAWQ reads its fake-quantized whole-table copy; DQRM quantizes the gathered rows.
    const table = bits !== null && !perRow ? this.#quantTables![t] : this.#tables[t];
    const scale = this.#scales[t];
    if (perRow && !useDorefa && oneRowBags(off, s0 + r0, s0 + r1)) {
      // Bags of one row (Criteo's): the rows copied, then fake-quantized in place by a SIMD
      // kernel, each value as the first term of a sum from +0 as below (the same bits).
      for (let r = r0; r < r1; r++) {
        const dst = tBase + r * L.ldt + (t + 1) * L.dimP, src = idx[off[s0 + r]] * d;
        for (let q = 0; q < d; q++) f32[dst + q] = table[src + q];
      }
      const at = (tBase + r0 * L.ldt + (t + 1) * L.dimP) * 4;
      this.#k.fakeQuantizeTerms(at, L.ldt, d, r1 - r0, scale, n);
      return;
    }
    for (let r = r0; r < r1; r++) {
      const dst = tBase + r * L.ldt + (t + 1) * L.dimP;
      const a = off[s0 + r], e = off[s0 + r + 1];
      if (perRow && useDorefa) {
        for (let q = 0; q < d; q++) f32[dst + q] = 0;
        for (let j = a; j < e; j++) {
          const src = idx[j] * d;
          for (let q = 0; q < d; q++) f32[dst + q] += dorefa(table[src + q], scale, bits!);
        }
      } else if (perRow) {
        for (let q = 0; q < d; q++) f32[dst + q] = 0;
        for (let j = a; j < e; j++) {
          const src = idx[j] * d;
          for (let q = 0; q < d; q++) f32[dst + q] += fakeQuantizeTerm(table[src + q], scale, n);
        }
      } else if (e - a === 1) {
        const src = idx[a] * d;
        for (let q = 0; q < d; q++) f32[dst + q] = table[src + q];
      } else {
        for (let q = 0; q < d; q++) f32[dst + q] = 0;
        for (let j = a; j < e; j++) {
          const src = idx[j] * d;
          for (let q = 0; q < d; q++) f32[dst + q] += table[src + q];
        }
      }
    }
  }
}

/** Whether every bag of samples [s0, s1) holds exactly one row. */
function oneRowBags(offsets: ArrayLike<number>, s0: number, s1: number): boolean {
  for (let s = s0; s < s1; s++) if (offsets[s + 1] - offsets[s] !== 1) return false;
  return true;
}

/**
 * `fakeQuantize(x, s, n)` of quant.ts as a term of a sum that starts at +0: V8 does not inline
 * `Math.round` (it cost 10 ns a value, most of DQRM's gather), while `Math.floor(v + 0.5)` is
 * exact for a float32 `v` and equals `Math.round(v)` but for the sign of a zero, which such a sum
 * does not see (+0 + -0 = +0). The same half-even rounding and clamp follow.
 */
export function fakeQuantizeTerm(x: number, s: number, n: number): number {
  const v = Math.fround(x / s);
  let r = Math.floor(v + 0.5);
  if (r - v === 0.5 && r % 2 !== 0) r -= 1;
  const q = r > n ? n : r < -n - 1 ? -n - 1 : r;
  return Math.fround(q * s);
}
