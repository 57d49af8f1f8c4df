/**
 * The weight histograms a run records of one embedding table: its weights at the start and at
 * every epoch's end, their minmax-quantized values under QAT, and the table after post-training
 * quantization.
 *
 * @module
 */
import type { Engine } from "../engine/engine.ts";
import { fakeQuantize, levels } from "../engine/quant.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { histogramOf, type WeightHistogram } from "../record/schema_extra.ts";

/**
 * The table whose weight histograms a run records: the paper's Fig. 6 shows one table's weights,
 * table 6 (12,517 rows in Kaggle). Specs with fewer tables use their last one.
 */
const HISTOGRAM_TABLE = 6;

/** Bins of every recorded weight histogram. */
const HISTOGRAM_BINS = 64;

/** The weight histograms of one run, in the order they were taken. */
export class WeightHistograms {
  /** The histograms taken so far. */
  readonly records: WeightHistogram[] = [];
  /** The table they show. */
  readonly table: number;
  readonly #tensor: string;

  constructor(spec: ModelSpec) {
    this.table = Math.min(HISTOGRAM_TABLE, spec.tableRows.length - 1);
    this.#tensor = `table ${this.table}`;
  }

  /**
   * Records the table's weights; with `quantizedBits` (minmax QAT active), also their values
   * quantized at the engine's current scale, once it has one.
   */
  async record(
    engine: Engine,
    iteration: number,
    epoch: number,
    quantizedBits: number | null,
  ): Promise<void> {
    const tensor = this.#tensor;
    const values = await engine.readTable(this.table);
    this.records.push(
      histogramOf(values, HISTOGRAM_BINS, { tensor, iteration, epoch, kind: "weights" }),
    );
    if (quantizedBits === null) return;
    const s = (await engine.embeddingScales())[this.table];
    if (!(s > 0)) return;
    const n = levels(quantizedBits);
    const q = values.map((v) => fakeQuantize(v, s, n));
    this.records.push(
      histogramOf(q, HISTOGRAM_BINS, {
        tensor,
        iteration,
        epoch,
        kind: "quantized",
        bits: quantizedBits,
      }),
    );
  }

  /** Records the table after post-training quantization at `bits` (its weights are the levels). */
  async recordQuantizedInPlace(
    engine: Engine,
    iteration: number,
    epoch: number,
    bits: number,
  ): Promise<void> {
    const values = await engine.readTable(this.table);
    this.records.push(histogramOf(values, HISTOGRAM_BINS, {
      tensor: this.#tensor,
      iteration,
      epoch,
      kind: "quantized",
      bits,
    }));
  }
}
