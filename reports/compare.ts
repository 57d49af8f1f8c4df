/**
 * Lays our variants beside the paper's tables: for each paper row, the variants whose features
 * match it (one sub-row each, or a "not run" row), our figure beside the paper's in every
 * column, the difference, whether it is large enough to highlight, and each side's difference
 * from its own baseline row (the paper's Table 2 layout).
 *
 * @module
 */
import type { RunFeatures } from "./features.ts";
import {
  fullTableModelBytes,
  type MetricPoint,
  modelBytesComputed,
  partialOf,
  partialText,
  reportedRuns,
  type Variant,
  variantIsPartial,
  variantMetric,
} from "./group.ts";
import {
  type MetricKey,
  METRICS,
  PAPER_TABLES,
  paperDeviceClass,
  paperNumber,
  type PaperRow,
  type PaperTable,
  type PaperValue,
  type RowMatch,
} from "./paper.ts";
import type { Spread } from "../record/stats.ts";

/** How our figure compares with the paper's. */
export type DiffClass = "better" | "worse" | "same" | "none";

/** One cell: the paper's value and ours. */
export interface ComparedCell {
  paper?: PaperValue;
  ours?: Spread;
  /** Our model size was computed, not measured from a model file. */
  computed?: boolean;
  /** Our model size at the paper's full tables (runs on scaled tables), computed from bits. */
  fullTables?: number;
  /** Ours − paper (a ratio for times, sizes and bytes). */
  diff?: number;
  /** `diff` is a ratio. */
  ratio?: boolean;
  diffClass: DiffClass;
  /** Paper value − the paper's baseline row (additive metrics only). */
  paperVsBaseline?: number;
  /** Our value − our baseline row's. */
  oursVsBaseline?: number;
}

/**
 * A badge on a row: `hardware` (our device class differs from the paper's: times are not
 * compared), `subset` (our data is a subset of the paper's: figures are not compared, sizes at
 * the paper's full tables), `partial` (stopped by its time budget: figures of a partly trained
 * model are not compared).
 */
export interface RowBadge {
  kind: "hardware" | "subset" | "partial";
  text: string;
  /** What it means, for a tooltip. */
  title: string;
}

/** One row of a compared table. */
export interface ComparedRow {
  row: PaperRow;
  /** The matched variant; undefined when no run matches. */
  variant?: Variant;
  /** A second or later variant matching the same paper row. */
  continuation: boolean;
  /** How our run's conditions differ from the paper's. */
  conditions: string[];
  /** Hardware, subset and partial badges. */
  badges: RowBadge[];
  /** Errors of failed runs of the variant. */
  failures: string[];
  cells: Record<string, ComparedCell>;
}

/** A paper table with our figures. */
export interface ComparedTable {
  table: PaperTable;
  rows: ComparedRow[];
  /** Paper rows with at least one matching variant. */
  matched: number;
}

/** Highlight thresholds: `abs` for additive metrics, `ratio` (max/min) for multiplicative. */
export const DIFF_THRESHOLDS: Record<MetricKey, { abs?: number; ratio?: number }> = {
  accuracy: { abs: 0.001 },
  auc: { abs: 0.001 },
  trainLoss: { abs: 0.01 },
  msPerIteration: { ratio: 1.25 },
  modelBytes: { ratio: 1.02 },
  commBytes: { ratio: 1.02 },
};

const RATIO_METRICS = new Set<MetricKey>(["msPerIteration", "modelBytes", "commBytes"]);

/** Epochs the paper trained for each table's runs. */
const PAPER_EPOCHS: Record<string, number> = { "9": 20 };

/** Whether a variant's features satisfy a row's criteria. */
export function matches(features: RunFeatures, match: RowMatch): boolean {
  for (const [k, want] of Object.entries(match)) {
    if (want === undefined) continue;
    if (k === "method") {
      if (!(want as readonly string[]).includes(features.method)) return false;
    } else if (k === "minEpochs") {
      if (!(features.epochs >= (want as number))) return false;
    } else if (features[k as keyof RunFeatures] !== want) {
      return false;
    }
  }
  return true;
}

function conditionsOf(table: PaperTable, f: RunFeatures): string[] {
  const out: string[] = [];
  if (f.data !== "criteo" && f.data !== "unknown") out.push(`${f.data} data`);
  const epochs = PAPER_EPOCHS[table.id] ?? 5;
  if (f.epochs < epochs) {
    out.push(`${f.epochs} epoch${f.epochs === 1 ? "" : "s"} (paper ${epochs})`);
  }
  return out;
}

const DEVICE_NAMES: Record<string, string> = { cpu: "CPU", gpu: "GPU" };

/** The badges of a variant beside a row of `table`. */
function badgesOf(table: PaperTable, variant: Variant): RowBadge[] {
  const out: RowBadge[] = [];
  const paperDevice = paperDeviceClass(table);
  const ours = variant.features.deviceClass;
  if (
    table.columns.includes("msPerIteration") && paperDevice && ours !== "unknown" &&
    ours !== paperDevice
  ) {
    out.push({
      kind: "hardware",
      text: `${DEVICE_NAMES[ours] ?? ours}, paper ${DEVICE_NAMES[paperDevice]}`,
      title: `Our run trained on a ${DEVICE_NAMES[ours] ?? ours}, the paper on ${
        table.platform.split(",")[0]
      }: times are shown, not compared`,
    });
  }
  if (variant.features.subset) {
    out.push({
      kind: "subset",
      text: `subset: ${variant.features.subset}`,
      title:
        "Our data is a subset of the paper's: accuracy, AUC and loss are shown, not compared; model sizes are compared at the paper's full tables, computed from bits",
    });
  }
  if (variantIsPartial(variant)) {
    const p = partialOf(reportedRuns(variant)[0].run)!;
    out.push({
      kind: "partial",
      text: partialText(p),
      title:
        `Stopped by its time budget after ${p.iterations} of ${p.of} iterations, then evaluated: accuracy, AUC and loss of a partly trained model, shown, not compared`,
    });
  }
  return out;
}

/** Whether a badge means `key` is shown but not judged better or worse than the paper's. */
function notCompared(key: MetricKey, badges: readonly RowBadge[]): boolean {
  return badges.some((b) =>
    b.kind === "hardware"
      ? key === "msPerIteration"
      : key === "accuracy" || key === "auc" || key === "trainLoss"
  );
}

function classify(key: MetricKey, diff: number | undefined, ratio: boolean): DiffClass {
  if (diff === undefined || !Number.isFinite(diff)) return "none";
  const th = DIFF_THRESHOLDS[key];
  const higherBetter = METRICS[key].better === "higher";
  if (ratio) {
    const r = th.ratio ?? 1.1;
    if (diff <= r && diff >= 1 / r) return "same";
    return (diff > 1) === higherBetter ? "better" : "worse";
  }
  if (Math.abs(diff) <= (th.abs ?? 0)) return "same";
  return (diff > 0) === higherBetter ? "better" : "worse";
}

/**
 * Compares variants with one paper table.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareTable } from "./compare.ts";
 * import { TABLE_2 } from "./paper.ts";
 * const t = compareTable(TABLE_2, []);
 * assert.equal(t.rows.length, 4);
 * assert.equal(t.matched, 0);
 * ```
 */
export function compareTable(table: PaperTable, variants: readonly Variant[]): ComparedTable {
  // Runs declared for this table (`config.experiments`, e.g. "table3") win over runs that only
  // happen to have the same features (a longer Table 9 run of the same method).
  const tag = `table${table.id.replace(/[a-z]$/, "")}`;
  const matchesOf = (row: PaperRow) => {
    let found = variants.filter((v) => matches(v.features, row.match));
    const tagged = found.filter((v) => v.features.experiments.includes(tag));
    if (tagged.length) found = tagged;
    if (row.prefer) {
      const preferred = found.filter((v) => matches(v.features, row.prefer!));
      if (preferred.length) found = preferred;
    }
    return found;
  };
  const baseRow = table.rows.find((r) => r.baseline);
  const baseVariant = baseRow ? matchesOf(baseRow)[0] : undefined;
  const rows: ComparedRow[] = [];
  let matched = 0;
  for (const row of table.rows) {
    const found = matchesOf(row);
    if (found.length) matched++;
    const list: (Variant | undefined)[] = found.length ? found : [undefined];
    list.forEach((variant, i) => {
      const badges = variant ? badgesOf(table, variant) : [];
      const cells: Record<string, ComparedCell> = {};
      for (const key of table.columns) {
        cells[key] = cellOf(key, row, variant, baseRow, baseVariant);
        if (notCompared(key, badges)) {
          // Shown, not compared: no colour and no difference.
          cells[key].diffClass = "none";
          delete cells[key].diff;
        }
      }
      rows.push({
        row,
        variant,
        continuation: i > 0,
        conditions: variant ? conditionsOf(table, variant.features) : [],
        badges,
        failures: variant
          ? variant.runs.filter((r) => r.run.status !== "ok" && !partialOf(r.run)).map((r) =>
            `${r.path}: ${r.run.status}${r.run.error ? ` (${r.run.error})` : ""}`
          )
          : [],
        cells,
      });
    });
  }
  return { table, rows, matched };
}

function cellOf(
  key: MetricKey,
  row: PaperRow,
  variant: Variant | undefined,
  baseRow: PaperRow | undefined,
  baseVariant: Variant | undefined,
): ComparedCell {
  const at: MetricPoint = row.at;
  const paper = row.values[key];
  const ours = variant ? variantMetric(variant, key, at) : undefined;
  const p = paperNumber(paper);
  const ratio = RATIO_METRICS.has(key);
  const exact = typeof paper === "number";
  // Sizes of scaled-down tables are compared at the paper's full tables.
  const full = key === "modelBytes" && variant
    ? fullTableModelBytes(variant.runs[0].run)
    : undefined;
  // Uncompressed gradients of scaled-down tables are smaller by the scale: not comparable.
  const scaledDense = key === "commBytes" && variant !== undefined &&
    variant.features.tableScale !== 1 && !variant.features.sparseEmbeddingGradients;
  const mine = scaledDense ? undefined : full ?? ours?.mean;
  const diff = mine !== undefined && p !== undefined && exact
    ? (ratio ? mine / p : mine - p)
    : undefined;
  const cell: ComparedCell = { diffClass: classify(key, diff, ratio), ratio };
  if (paper !== undefined) cell.paper = paper;
  if (ours) cell.ours = ours;
  if (diff !== undefined && Number.isFinite(diff)) cell.diff = diff;
  if (key === "modelBytes" && variant) {
    cell.computed = variant.runs.every((r) => modelBytesComputed(r.run));
    if (full !== undefined) cell.fullTables = full;
  }
  if (!ratio && baseRow && baseRow !== row) {
    const pb = baseRow.values[key];
    if (typeof paper === "number" && typeof pb === "number") cell.paperVsBaseline = paper - pb;
    const ob = baseVariant ? variantMetric(baseVariant, key, baseRow.at) : undefined;
    if (ours && ob && baseVariant !== variant) cell.oursVsBaseline = ours.mean - ob.mean;
  }
  return cell;
}

/** Compares variants with every paper table. */
export function compareAll(variants: readonly Variant[]): ComparedTable[] {
  return PAPER_TABLES.map((t) => compareTable(t, variants));
}
