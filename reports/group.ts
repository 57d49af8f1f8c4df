/**
 * Groups runs into variants — runs whose configs are equal but for their name and seed, i.e.
 * repetitions of one experiment — labels each variant by its run name or by the config fields
 * that tell it apart from the others, and reads the report's figures from a run.
 *
 * @module
 */
import { archSpec, type ModelSpec, ModelSpecSchema } from "../engine/spec.ts";
import { paperTableRows, type RunFeatures, runFeatures } from "./features.ts";
import type { LoadedRun, ReportRun } from "./load.ts";
import type { MetricKey } from "./paper.ts";
import { type Spread, spreadOf } from "../record/stats.ts";

/** Runs of one configuration (repetitions differ only in name and seed). */
export interface Variant {
  /** Canonical config without name, seed and experiment tags. */
  key: string;
  /** Short id, unique in the report: `v1`, `v2`, … */
  id: string;
  /**
   * Short label: the runs' common name when every variant has one unique name, else the
   * method followed by the config fields that tell this variant apart.
   */
  label: string;
  /** The config fields that tell this variant apart (`embeddingBits=4 · scalePeriod=200`). */
  details: string;
  arch: string;
  method: string;
  features: RunFeatures;
  runs: LoadedRun[];
}

/**
 * Config fields that never tell variants apart: the run's name and seed, and the paper tables it
 * was declared for (the same run serves several).
 */
const IGNORED = new Set(["name", "seed", "experiments"]);

/** The paper's methods first, in its order; others after, alphabetically. */
const METHOD_ORDER = ["fp32", "ptq", "pact", "lsq", "hawq", "qat", "dqrm"];

/** Flattens a nested object into dot paths. */
export function flatten(obj: unknown, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
    out[prefix] = obj;
    return out;
  }
  for (const [k, v] of Object.entries(obj)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (typeof v === "object" && v !== null && !Array.isArray(v)) Object.assign(out, flatten(v, p));
    else out[p] = v;
  }
  return out;
}

function valueText(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

/**
 * Groups runs into variants, ordered by architecture, then method (the paper's first), then
 * label. A variant is labelled by its runs' name when each variant has one name of its own,
 * else by its method and every config field whose value differs between variants.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { groupVariants } from "./group.ts";
 * import type { LoadedRun } from "./load.ts";
 * const run = (name: string, seed: number, lr: number) =>
 *   ({ path: `${name}-${seed}.json`, run: { config: { name, seed, method: "fp32", arch: "kaggle", learningRate: lr } } }) as unknown as LoadedRun;
 * const v = groupVariants([run("a", 1, 0.1), run("a", 2, 0.1), run("b", 1, 0.05)]);
 * assert.deepEqual(v.map((x) => [x.label, x.details, x.runs.length]), [["a", "learningRate=0.1", 2], ["b", "learningRate=0.05", 1]]);
 * ```
 */
export function groupVariants(runs: readonly LoadedRun[]): Variant[] {
  const byKey = new Map<string, { flat: Record<string, unknown>; runs: LoadedRun[] }>();
  for (const r of runs) {
    const flat = Object.fromEntries(
      Object.entries(flatten(r.run.config)).filter(([k]) => !IGNORED.has(k)).sort(([a], [b]) =>
        a < b ? -1 : a > b ? 1 : 0
      ),
    );
    const key = JSON.stringify(flat);
    const g = byKey.get(key) ?? { flat, runs: [] };
    g.runs.push(r);
    byKey.set(key, g);
  }
  const groups = [...byKey.entries()];
  const allKeys = new Set(groups.flatMap(([, g]) => Object.keys(g.flat)));
  const differing = [...allKeys].filter((k) => {
    if (k === "method") return false;
    const values = new Set(groups.map(([, g]) => JSON.stringify(g.flat[k])));
    return values.size > 1;
  });
  // Keep the config's own field order; name a field by its last segment when that is unique.
  const order = Object.keys(flatten(runs[0]?.run.config ?? {}));
  differing.sort((a, b) => rank(order, a) - rank(order, b));
  const last = (k: string) => k.slice(k.lastIndexOf(".") + 1);
  const shortName = (k: string) =>
    differing.filter((d) => last(d) === last(k)).length > 1 ? k : last(k);
  const names = groups.map(([, g]) => new Set(g.runs.map((r) => r.run.config.name)));
  const byName = names.every((n) => n.size === 1) &&
    new Set(names.map((n) => [...n][0])).size === groups.length;
  const variants = groups.map(([key, g], i): Omit<Variant, "id"> => {
    const first = g.runs[0].run;
    const details = differing.filter((k) => g.flat[k] !== undefined)
      .map((k) => k === "arch" ? valueText(g.flat[k]) : `${shortName(k)}=${valueText(g.flat[k])}`)
      .join(" · ");
    return {
      key,
      label: byName ? [...names[i]][0] : [first.config.method, details].filter(Boolean).join(" · "),
      details,
      arch: first.config.arch,
      method: first.config.method,
      features: runFeatures(first),
      runs: [...g.runs].sort((a, b) =>
        (a.run.config.seed ?? 0) - (b.run.config.seed ?? 0) || a.path.localeCompare(b.path)
      ),
    };
  });
  variants.sort((a, b) =>
    a.arch.localeCompare(b.arch) || methodRank(a.method) - methodRank(b.method) ||
    a.label.localeCompare(b.label, undefined, { numeric: true })
  );
  return variants.map((v, i) => ({ ...v, id: `v${i + 1}` }));
}

function rank(order: string[], key: string): number {
  const i = order.indexOf(key);
  return i < 0 ? order.length : i;
}

function methodRank(method: string): number {
  const i = METHOD_ORDER.indexOf(method.toLowerCase());
  return i < 0 ? METHOD_ORDER.length : i;
}

/** A short label of one run within its variant: its seed, and its file when seeds repeat. */
export function runLabel(variant: Variant, run: LoadedRun): string {
  const seeds = variant.runs.map((r) => r.run.config.seed);
  const seed = run.run.config.seed;
  const unique = seeds.filter((s) => s === seed).length === 1;
  if (variant.runs.length === 1) return variant.label;
  return `${variant.label} (seed ${seed ?? "?"}${unique ? "" : `, ${run.path}`})`;
}

/** The model spec a run recorded, or its architecture's at its table scale. */
export function specOfRun(run: ReportRun): ModelSpec | undefined {
  const parsed = ModelSpecSchema.safeParse(run.spec);
  if (parsed.success) return parsed.data;
  const scale = run.config.tableScale ?? 1;
  const arch = run.config.arch;
  return arch === "kaggle" || arch === "terabyte" ? archSpec(arch, scale) : undefined;
}

/**
 * Model size computed from the spec and bit widths, for runs that recorded no model file:
 * embeddings at their bits plus one FP32 scale per table, MLP weights at their bits plus one
 * FP32 scale per output row when quantized, biases in FP32.
 */
export function computedModelBytes(run: ReportRun): number | undefined {
  const spec = specOfRun(run);
  if (!spec) return undefined;
  const f = runFeatures(run);
  const emb = spec.tableRows.reduce((s, n) => s + n * spec.embeddingDim, 0);
  let bytes = emb * f.embeddingBits / 8 + (f.embeddingBits < 32 ? 4 * spec.tableRows.length : 0);
  for (const widths of [spec.bottomMlp, spec.topMlp]) {
    for (let l = 1; l < widths.length; l++) {
      const rows = widths[l], cols = widths[l - 1];
      bytes += rows * cols * f.mlpBits / 8 + 4 * rows + (f.mlpBits < 32 ? 4 * rows : 0);
    }
  }
  return Math.ceil(bytes);
}

/**
 * Model size the run's method would have with the paper's full tables (computed from bits), for
 * runs on scaled-down tables or real data with fewer table rows; undefined for full-table runs.
 */
export function fullTableModelBytes(run: ReportRun): number | undefined {
  const paperRows = paperTableRows(run.config.arch);
  const rows = specOfRun(run)?.tableRows.reduce((s, n) => s + n, 0);
  // Full tables: at scale 1 with the paper's rows (real data may have fewer).
  const smaller = paperRows !== undefined && rows !== undefined && rows < paperRows;
  if ((run.config.tableScale ?? 1) === 1 && !smaller) return undefined;
  return computedModelBytes({ ...run, spec: undefined, config: { ...run.config, tableScale: 1 } });
}

/** Where to read a figure: the default (best test point, last loss), an epoch's end, or the peak. */
export type MetricPoint = number | "peak" | undefined;

/** The model file size a run recorded (`memory.modelFileBytes`), if any. */
export function modelFileBytes(run: ReportRun): number | undefined {
  const b = run.memory?.modelFileBytes;
  return typeof b === "number" && b > 0 ? b : undefined;
}

/** Whether the model size of a run is computed (no model file size recorded). */
export function modelBytesComputed(run: ReportRun): boolean {
  return modelFileBytes(run) === undefined;
}

/** Whether a run's reported figures are its last test (post-training quantization). */
function reportsFinal(run: ReportRun): boolean {
  const pt = (run.config as Record<string, unknown>).postTraining;
  return (pt !== undefined && pt !== null) || run.config.method.toLowerCase() === "ptq";
}

/**
 * One figure of one run, or undefined when the run does not have it. Accuracy and AUC are the
 * best periodic test (as DLRM reports them) unless `at` names an epoch — or the final test for
 * post-training quantization, whose earlier tests are of the FP32 model; the training loss is
 * the last recorded one.
 */
export function runMetric(run: ReportRun, key: MetricKey, at?: MetricPoint): number | undefined {
  const curve = run.curve;
  const atEpoch = typeof at === "number"
    ? curve.find((p) => p.epoch !== undefined && Math.abs(p.epoch - at) < 1e-6)
    : undefined;
  if (typeof at === "number" && !atEpoch && (key === "accuracy" || key === "auc")) {
    return undefined;
  }
  const summary = reportsFinal(run) ? run.final ?? run.best : run.best ?? run.final;
  switch (key) {
    case "accuracy":
      return atEpoch?.accuracy ?? summary?.accuracy;
    case "auc":
      return atEpoch?.auc ?? summary?.auc;
    case "trainLoss": {
      const ok = (x: number | null | undefined): x is number =>
        typeof x === "number" && Number.isFinite(x);
      const p = atEpoch ?? curve.findLast((c) => ok(c.trainLoss));
      return ok(p?.trainLoss) ? p.trainLoss : undefined;
    }
    case "msPerIteration":
      return run.timing?.total && run.timing.total.n > 0 ? run.timing.total.median : undefined;
    case "modelBytes":
      return modelFileBytes(run) ?? computedModelBytes(run);
    case "commBytes":
      return run.communication?.bytesPerIteration.total;
  }
}

/**
 * How much of its training a run stopped by its time budget did (`partial` of its result), or
 * undefined for a run that finished or never trained.
 */
export function partialOf(run: ReportRun): { iterations: number; of: number } | undefined {
  const p = (run as { partial?: unknown }).partial;
  if (typeof p !== "object" || p === null) return undefined;
  const { iterations, of } = p as Record<string, unknown>;
  return typeof iterations === "number" && typeof of === "number" && of > 0
    ? { iterations, of }
    : undefined;
}

/** `partial (k of n it)`: the badge of a partly trained run. */
export function partialText(p: { iterations: number; of: number }): string {
  return `partial (${p.iterations.toLocaleString("en-US")} of ${p.of.toLocaleString("en-US")} it)`;
}

/**
 * The runs whose figures a variant reports: its finished runs, or, when none finished, its
 * partly trained ones (stopped by their time budget, then evaluated).
 */
export function reportedRuns(variant: Variant): LoadedRun[] {
  const ok = variant.runs.filter((r) => r.run.status === "ok");
  return ok.length ? ok : variant.runs.filter((r) => partialOf(r.run) && r.run.curve.length);
}

/** Whether a variant's figures are of partly trained runs only. */
export function variantIsPartial(variant: Variant): boolean {
  const runs = reportedRuns(variant);
  return runs.length > 0 && runs.every((r) => partialOf(r.run) !== undefined);
}

/** A figure over a variant's reported runs ({@linkcode reportedRuns}): mean, spread, count. */
export function variantMetric(
  variant: Variant,
  key: MetricKey,
  at?: MetricPoint,
): Spread | undefined {
  return spreadOf(reportedRuns(variant).map((r) => runMetric(r.run, key, at)));
}
