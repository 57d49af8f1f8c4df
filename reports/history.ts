/**
 * The history of published results: every results folder, and for each suite × run × machine
 * the key figures over commits (ms/it by phase, samples/s, QAT overhead, final AUC, accuracy and
 * log loss, peak memory, model size). Runs at one commit on one machine are repeats of one
 * point; consecutive points are checked with the regression gate (`regress.ts`, its default
 * tolerances) and every figure's steps are found as airspeed velocity does (`steps.ts`). Figures
 * are never compared across machines: a series is one machine's.
 *
 * @module
 */
import type { ReportRun } from "./load.ts";
import { type Machine, machineOf } from "../record/provenance.ts";
import { compareWithBaseline, DEFAULT_TOLERANCE, type Finding, makeBaseline } from "./regress.ts";
import { detectSteps } from "./steps.ts";
import { phasesOf, timingStats, TOTAL } from "./timing.ts";
import { median, normalQuantile } from "../record/stats.ts";

/** A results folder as published: what the index lists. */
export interface PublishedFolder {
  /** Folder name in the site (`runs/ID/`): date, commit and a hash of the results. */
  id: string;
  /** The path it was published from. */
  source: string;
  publishedAt: string;
  suites: string[];
  /** Engines of its runs (`cpu`, `gpu`). */
  engines: string[];
  /** Devices its engines ran on: the GPU adapter or the CPU model. */
  devices: string[];
  machines: Machine[];
  /** Commits its runs were measured at (one unless the folder was resumed across commits). */
  commits: { commit: string | null; dirty: boolean | null }[];
  /** Earliest run start. */
  date: string;
  seeds: number[];
  /** Run names. */
  runs: string[];
  /** Runs whose status is not ok. */
  notOk: number;
}

/** A published folder with its runs. */
export interface FolderRuns {
  folder: PublishedFolder;
  runs: readonly ReportRun[];
}

/** A figure charted over history. */
export interface FigureDef {
  key: string;
  label: string;
  unit: "ms" | "samples/s" | "ratio" | "metric" | "bytes";
  /** Whether a larger value is worse (times, sizes, loss). */
  higherIsWorse: boolean;
}

/** Figures every series may have; `ms.PHASE` figures are added per phase timed. */
export const FIGURES: readonly FigureDef[] = [
  { key: "ms.total", label: "ms/it (phase sum)", unit: "ms", higherIsWorse: true },
  { key: "samplesPerSecond", label: "samples/s (wall)", unit: "samples/s", higherIsWorse: false },
  { key: "qatOverhead", label: "QAT overhead (× FP32 ms/it)", unit: "ratio", higherIsWorse: true },
  { key: "auc", label: "final test AUC", unit: "metric", higherIsWorse: false },
  { key: "accuracy", label: "final test accuracy", unit: "metric", higherIsWorse: false },
  { key: "logLoss", label: "final test log loss", unit: "metric", higherIsWorse: true },
  { key: "peakRssBytes", label: "peak memory (RSS)", unit: "bytes", higherIsWorse: true },
  { key: "modelFileBytes", label: "model size", unit: "bytes", higherIsWorse: true },
];

/** The definition of a figure key (`ms.forward` included). */
export function figureDef(key: string): FigureDef {
  const known = FIGURES.find((f) => f.key === key);
  if (known) return known;
  if (key.startsWith("ms.")) {
    return { key, label: `ms/it ${key.slice(3)}`, unit: "ms", higherIsWorse: true };
  }
  throw new RangeError(`Expected a known figure key but found '${key}'`);
}

/** One figure at one point: the median over its repeats and its band. */
export interface FigureValue {
  value: number;
  /** Band: for timings the union of the repeats' 95% intervals of the median; else min–max. */
  lo: number;
  hi: number;
  /** Repeats with this figure. */
  n: number;
}

/** A figure's step at a point. */
export interface PointStep {
  figure: string;
  before: number;
  after: number;
  ratio: number;
  /** The new level is worse. */
  worse: boolean;
}

/** A gate finding at a point, with the folder whose run failed it. */
export interface PointFinding extends Pick<Finding, "kind" | "what" | "detail"> {
  folder: string;
}

/** One commit of one series on its machine. */
export interface HistoryPoint {
  commit: string | null;
  dirty: boolean | null;
  /** Earliest run start among its repeats. */
  date: string;
  /** Folder ids of its repeats, oldest first. */
  folders: string[];
  figures: Record<string, FigureValue>;
  /**
   * Each repeat's own figures and status, by folder id (a run that did not finish charts
   * nothing: its figures would be those of a partly trained model).
   */
  repeats: { folder: string; status: string; error?: string; figures: Record<string, number> }[];
  /** What the regression gate says against the previous point (empty: it passes). */
  regressions: PointFinding[];
  steps: PointStep[];
}

/** The history of one run of one suite on one machine. */
export interface Series {
  /** File-name-safe id: `SUITE--RUN--FINGERPRINT`. */
  id: string;
  suite: string;
  run: string;
  method: string;
  engine: string;
  machine: Machine;
  /** Figure keys present, in chart order. */
  figures: string[];
  points: HistoryPoint[];
}

/** Provenance of a run (migrated results always have it; others get it from their environment). */
export function provenanceOf(run: ReportRun) {
  return run.provenance ??
    { commit: null, dirty: null, machine: machineOf(run.environment ?? {}) };
}

/** Phases under this (ms/it) are not charted: the method does not run them. */
export const MIN_PHASE_MS = 0.01;

/** The key figures of a run, with intervals for timings; `fp32Total` gives the QAT overhead. */
export function runFigures(
  run: ReportRun,
  fp32Total: number | undefined,
): Record<string, { value: number; lo: number; hi: number }> {
  const out: Record<string, { value: number; lo: number; hi: number }> = {};
  const put = (k: string, v: number | undefined, lo = v, hi = v) => {
    if (typeof v === "number" && Number.isFinite(v)) {
      out[k] = { value: v, lo: Number.isFinite(lo) ? lo! : v, hi: Number.isFinite(hi) ? hi! : v };
    }
  };
  if (run.status !== "ok") return out;
  for (const phase of phasesOf(run)) {
    const s = timingStats(run, phase);
    // A phase the method does not run (FP32's scale) times a few microseconds of bookkeeping.
    if (!s || !(s.median >= MIN_PHASE_MS)) continue;
    put(`ms.${phase}`, s.median, s.ci.lo, s.ci.hi);
  }
  put("samplesPerSecond", run.timing?.samplesPerSecond || undefined);
  const total = out[`ms.${TOTAL}`]?.value;
  if (run.config.method !== "fp32" && total !== undefined && fp32Total) {
    put("qatOverhead", total / fp32Total);
  }
  put("auc", run.final?.auc);
  put("accuracy", run.final?.accuracy);
  put("logLoss", run.final?.logLoss);
  put("peakRssBytes", run.memory?.peakRssBytes || undefined);
  put("modelFileBytes", run.memory?.modelFileBytes || undefined);
  return out;
}

/** A run's series id. */
export function seriesId(suite: string, run: string, machine: Machine): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "_");
  return `${safe(suite)}--${safe(run)}--${machine.fingerprint}`;
}

interface Member {
  folder: PublishedFolder;
  run: ReportRun;
  figures: Record<string, { value: number; lo: number; hi: number }>;
}

/**
 * Builds every series from the published folders: runs grouped by suite, run name and machine;
 * in each, repeats at one commit (and dirty flag) merged into one point; points ordered by
 * their first run's date; each point gated against the one before and every figure's steps found.
 */
export function buildHistory(folders: readonly FolderRuns[]): Series[] {
  const bySeries = new Map<string, { series: Omit<Series, "points">; members: Member[] }>();
  for (const { folder, runs } of folders) {
    // Once per run: the FP32 search below compares every pair of runs' machines.
    const provenances = runs.map(provenanceOf);
    for (const [i, run] of runs.entries()) {
      const suite = run.suite ?? folder.suites[0] ?? "unknown";
      const p = provenances[i];
      const fp32 = runs.find((r, j) =>
        r.config.method === "fp32" && (r.suite ?? suite) === suite &&
        provenances[j].machine.fingerprint === p.machine.fingerprint && r.status === "ok"
      );
      const fp32Total = fp32 ? timingStats(fp32, TOTAL)?.median : undefined;
      const id = seriesId(suite, run.config.name, p.machine);
      let entry = bySeries.get(id);
      if (!entry) {
        entry = {
          series: {
            id,
            suite,
            run: run.config.name,
            method: run.config.method,
            engine: run.config.engine ?? run.environment?.engine?.name ?? "unknown",
            machine: p.machine,
            figures: [],
          },
          members: [],
        };
        bySeries.set(id, entry);
      }
      entry.members.push({ folder, run, figures: runFigures(run, fp32Total) });
    }
  }
  return [...bySeries.values()].map(({ series, members }) => buildSeries(series, members))
    .sort((a, b) => a.id.localeCompare(b.id));
}

function startOf(m: Member): string {
  return m.run.startedAt ?? m.folder.date;
}

function buildSeries(series: Omit<Series, "points">, members: Member[]): Series {
  members.sort((a, b) =>
    startOf(a).localeCompare(startOf(b)) || a.folder.id.localeCompare(b.folder.id)
  );
  // Repeats: one commit (and dirty flag); a run of unknown commit is a point of its own.
  const groups = new Map<string, Member[]>();
  for (const m of members) {
    const p = provenanceOf(m.run);
    const key = p.commit === null ? `folder:${m.folder.id}` : `${p.commit}:${p.dirty}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const keys = new Set<string>();
  for (const m of members) for (const k of Object.keys(m.figures)) keys.add(k);
  const phaseKeys = [...keys].filter((k) => k.startsWith("ms.") && k !== `ms.${TOTAL}`);
  const figures = [
    ...FIGURES.map((f) => f.key).filter((k) => keys.has(k)),
    ...phaseKeys,
  ];
  const points: HistoryPoint[] = [...groups.values()].map((g) => {
    const p = provenanceOf(g[0].run);
    const merged: Record<string, FigureValue> = {};
    for (const k of figures) {
      const have = g.map((m) => m.figures[k]).filter((v) => v !== undefined);
      if (!have.length) continue;
      const values = have.map((v) => v.value);
      merged[k] = {
        value: median(values),
        lo: Math.min(...have.map((v) => v.lo)),
        hi: Math.max(...have.map((v) => v.hi)),
        n: have.length,
      };
    }
    return {
      commit: p.commit,
      dirty: p.dirty,
      date: startOf(g[0]),
      folders: g.map((m) => m.folder.id),
      figures: merged,
      repeats: g.map((m) => ({
        folder: m.folder.id,
        status: m.run.status,
        ...(m.run.error ? { error: m.run.error } : {}),
        figures: Object.fromEntries(Object.entries(m.figures).map(([k, v]) => [k, v.value])),
      })),
      regressions: [],
      steps: [],
    };
  });
  const groupList = [...groups.values()];
  for (let i = 1; i < points.length; i++) {
    points[i].regressions = gate(groupList[i - 1], groupList[i]);
  }
  for (const k of figures) markSteps(points, k);
  return { ...series, figures, points };
}

/**
 * The regression gate between two points: a baseline made of the earlier point's latest run,
 * each run of the later point compared with it (as `deno task regress` would).
 */
function gate(previous: Member[], current: Member[]): PointFinding[] {
  const base = previous.at(-1)!;
  const baseline = makeBaseline("previous point", [base.run], { createdAt: startOf(base) });
  const out: PointFinding[] = [];
  for (const m of current) {
    for (const f of compareWithBaseline(baseline, [m.run]).regressions) {
      out.push({ folder: m.folder.id, kind: f.kind, what: f.what, detail: f.detail });
    }
  }
  return out;
}

/** The 95% normal quantile: a band's half-width over it is one standard deviation. */
const Z95 = normalQuantile(0.975);

function markSteps(points: HistoryPoint[], key: string): void {
  const at = points.map((p, i) => ({ i, v: p.figures[key] })).filter((x) => x.v !== undefined);
  if (at.length < 2) return;
  const def = figureDef(key);
  // Phases the gate deems too small to compare are too noisy for steps too.
  const level = median(at.map((x) => x.v!.value));
  if (def.unit === "ms" && level < DEFAULT_TOLERANCE.timingFloorMs) return;
  // One point's noise: half its band over z (a 95% interval, or the range of its repeats).
  const widths = at.map((x) => (x.v!.hi - x.v!.lo) / (2 * Z95)).filter((w) => w > 0);
  const noise = widths.length ? median(widths) : 0;
  // Times and memory of a shared machine wander by several percent: 10% for them, asv's 5% else.
  const minRelative = def.unit === "metric" ? 0.05 : 0.1;
  for (const s of detectSteps(at.map((x) => x.v!.value), { noise, minRelative })) {
    const worse = def.higherIsWorse ? s.after > s.before : s.after < s.before;
    points[at[s.at].i].steps.push({
      figure: key,
      before: s.before,
      after: s.after,
      ratio: s.ratio,
      worse,
    });
  }
}
