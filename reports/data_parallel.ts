/**
 * The data-parallel tables by worker count: Table 4's bytes per worker per iteration and
 * Table 6's accuracy of each gradient setting with its difference from the same training on one
 * worker, beside the paper's (4 workers). Runs are those declared for `table4` / `table6`.
 *
 * @module
 */
import { getPath } from "./features.ts";
import type { Variant } from "./group.ts";
import { variantMetric } from "./group.ts";
import { paperNumber, TABLE_3A, TABLE_4A, TABLE_4B, TABLE_6 } from "./paper.ts";
import type { Spread } from "../record/stats.ts";

/** One setting (row) of a by-workers table. */
export interface WorkersRow {
  /** The compression preset (`sparse-int8`). */
  preset: string;
  /** The paper's label of the row. */
  label: string;
  /** The paper's value (4 workers; Table 4(b): 2), when published. */
  paper?: number;
  /** Paper value − the paper's single-worker reference (Table 6 only). */
  paperDelta?: number;
  /** Ours by worker count. */
  ours: Record<number, { value?: Spread; delta?: number; variant: Variant } | undefined>;
}

/** A by-workers table of one architecture. */
export interface WorkersTable {
  arch: string;
  workers: number[];
  rows: WorkersRow[];
  /** Table 6: the single-worker reference's accuracy. */
  single?: Spread;
}

const T4_PRESETS = [
  ["uncompressed", 0],
  ["sparse", 1],
  ["sparse-int8", 2],
] as const;
const T6_PRESETS = [
  ["sparse", 0],
  ["sparse-emb8", 1],
  ["sparse-int8", 2],
  ["sparse-int8-ec", 3],
] as const;

const presetOf = (v: Variant) =>
  getPath(v.runs[0].run.config, "dataParallel.compression") as string | undefined;
const tagged = (v: Variant, tag: string) => v.features.experiments.includes(tag);

/** Table 4 by workers: bytes per worker per iteration of each setting, per architecture. */
export function table4ByWorkers(variants: readonly Variant[]): WorkersTable[] {
  const runs = variants.filter((v) => tagged(v, "table4") && v.features.workers > 1);
  return archsOf(runs).map((arch) => {
    const mine = runs.filter((v) => v.arch === arch);
    const paper = arch === "kaggle" ? TABLE_4A : arch === "terabyte" ? TABLE_4B : undefined;
    return {
      arch,
      workers: workersOf(mine),
      rows: T4_PRESETS.map(([preset, i]) => ({
        preset,
        label: TABLE_4A.rows[i].label,
        paper: paperNumber(paper?.rows[i].values.commBytes),
        ours: Object.fromEntries(
          workersOf(mine).map((w) => {
            const v = mine.find((x) => x.features.workers === w && presetOf(x) === preset);
            return [w, v ? { value: variantMetric(v, "commBytes"), variant: v } : undefined];
          }),
        ),
      })),
    };
  });
}

/**
 * Table 6 by workers: the accuracy of each gradient setting and its difference from the
 * single-worker reference run (`table6`, one worker), per architecture.
 */
export function table6ByWorkers(variants: readonly Variant[]): WorkersTable[] {
  const runs = variants.filter((v) => tagged(v, "table6"));
  // The paper's single-GPU DQRM INT4 (Table 3(a)) is the reference of its Table 6 deltas.
  const paperSingle = paperNumber(
    TABLE_3A.rows.find((r) => r.label === "DQRM (Ours)")?.values.accuracy,
  );
  return archsOf(runs.filter((v) => v.features.workers > 1)).map((arch) => {
    const mine = runs.filter((v) => v.arch === arch);
    const ref = mine.find((v) => v.features.workers === 1);
    const single = ref ? variantMetric(ref, "accuracy") : undefined;
    const parallel = mine.filter((v) => v.features.workers > 1);
    return {
      arch,
      workers: workersOf(parallel),
      single,
      rows: T6_PRESETS.map(([preset, i]) => {
        const paper = arch === "kaggle" ? paperNumber(TABLE_6.rows[i].values.accuracy) : undefined;
        return {
          preset,
          label: TABLE_6.rows[i].label,
          paper,
          paperDelta: paper !== undefined && paperSingle !== undefined
            ? paper - paperSingle
            : undefined,
          ours: Object.fromEntries(
            workersOf(parallel).map((w) => {
              const v = parallel.find((x) => x.features.workers === w && presetOf(x) === preset);
              if (!v) return [w, undefined];
              const value = variantMetric(v, "accuracy");
              const delta = value && single ? value.mean - single.mean : undefined;
              return [w, { value, delta, variant: v }];
            }),
          ),
        };
      }),
    };
  });
}

function archsOf(variants: readonly Variant[]): string[] {
  return [...new Set(variants.map((v) => v.arch))].sort();
}

function workersOf(variants: readonly Variant[]): number[] {
  return [...new Set(variants.map((v) => v.features.workers).filter((w) => w > 1))].sort((a, b) =>
    a - b
  );
}
