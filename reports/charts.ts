/**
 * The report's charts as Chart.js configurations (plain JSON: no callbacks), built from the
 * variants: test accuracy, AUC and training loss against iteration (the paper's Fig. 3),
 * stacked per-phase time (Fig. 1c), weight histograms FP32 vs quantized (Fig. 6),
 * communication bytes per iteration, memory and model size, and per-iteration timing traces.
 * Charts whose data no run recorded are left out, with a note saying which field feeds them.
 *
 * @module
 */
import type { ChartConfiguration, ChartDataset } from "chart.js";
import { PHASES } from "../engine/phases.ts";
import { runMetric, specOfRun, type Variant } from "./group.ts";
import type { LoadedRun, ReportRun } from "./load.ts";
import type { WeightHistogram } from "../record/schema_extra.ts";
import { median } from "../record/stats.ts";
import { rawSamples, TOTAL } from "./timing.ts";

/** One chart of the report. */
export interface ChartSpec {
  /** Canvas id, unique in the report. */
  id: string;
  /** Which figure it belongs to (`fig3`, `fig1c`, `fig6`, `comm`, `memory`, `trace`). */
  figure: string;
  title: string;
  /** One line under the chart. */
  caption?: string;
  config: ChartConfiguration;
  /** Iterations where dashed epoch lines are drawn. */
  epochLines?: number[];
}

/** The charts, and notes for figures that could not be drawn. */
export interface ChartSet {
  charts: ChartSpec[];
  /** Figure → why it is missing. */
  missing: Record<string, string>;
}

/** Colour of the i-th variant (Tableau 10). */
export function colorOf(i: number): string {
  const palette = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
  ];
  return palette[i % palette.length];
}

const PHASE_COLORS: Record<string, string> = {
  scale: "#4e79a7",
  forward: "#76b7b2",
  backward: "#edc948",
  communication: "#e15759",
  update: "#f28e2b",
};

const BASE_OPTIONS = {
  animation: false,
  responsive: true,
  maintainAspectRatio: false,
  normalized: true,
} as const;

const LEGEND = { position: "bottom", labels: { boxWidth: 12, font: { size: 11 } } } as const;

function title(text: string) {
  return { display: true, text, font: { size: 14 } };
}

function okRuns(v: Variant): LoadedRun[] {
  return v.runs.filter((r) => r.run.curve.length > 0);
}

/** Mean of the runs' curves at the iterations every run evaluated. */
function meanCurve(
  runs: readonly ReportRun[],
  pick: (p: ReportRun["curve"][number]) => number | undefined,
): { x: number; y: number }[] {
  if (runs.length === 0) return [];
  const common = runs.map((r) => new Set(r.curve.map((p) => p.iteration)));
  const iterations = runs[0].curve.map((p) => p.iteration).filter((it) =>
    common.every((s) => s.has(it))
  );
  return iterations.flatMap((it) => {
    const ys = runs.map((r) => pick(r.curve.find((p) => p.iteration === it)!));
    if (ys.some((y) => y === undefined || !Number.isFinite(y))) return [];
    return [{ x: it, y: ys.reduce((s: number, y) => s + y!, 0) / ys.length }];
  });
}

function epochBoundaries(runs: readonly ReportRun[]): number[] {
  const out = new Set<number>();
  for (const r of runs) {
    const epochs = r.config.epochs ?? 1;
    const perEpoch = r.config.trainSamples && r.config.batchSize
      ? Math.floor(r.config.trainSamples / r.config.batchSize)
      : undefined;
    if (!perEpoch) continue;
    for (let e = 1; e < epochs; e++) out.add(e * perEpoch);
  }
  return [...out].sort((a, b) => a - b);
}

/** When the runs evaluated their test set, in words: `every 1,000 iterations`. */
export function evaluatedWhen(runs: readonly ReportRun[]): string {
  const every = [...new Set(runs.map((r) => r.config.evalEvery))].sort((a, b) =>
    (a ?? 0) - (b ?? 0)
  );
  const text = (n: number | undefined) =>
    n === undefined
      ? "as recorded"
      : n > 0
      ? `every ${n.toLocaleString("en-US")} iterations`
      : "at the end of each epoch";
  if (every.length === 1) return `${text(every[0])} and at the end of each epoch`;
  return `${every.map(text).join(" or ")} (by run)`;
}

/**
 * A histogram's tensor in words: `table 6` (the recorded name) reads `embedding table #6
 * (12,517 rows)`, not the paper's Table 6; other names are kept.
 */
export function tensorLabel(tensor: string, run: ReportRun): string {
  const m = /^table (\d+)$/.exec(tensor);
  if (!m) return tensor;
  const rows = specOfRun(run)?.tableRows[Number(m[1])];
  return `embedding table #${m[1]}${
    rows === undefined ? "" : ` (${rows.toLocaleString("en-US")} rows)`
  }`;
}

/**
 * The quantized variants Fig. 6 shows (at most `max`, in report order): DQRM's always, then the
 * others, finished runs before those that did not finish.
 */
export function fig6Variants(candidates: readonly Variant[], max = 6): Variant[] {
  const finished = (v: Variant) => v.runs.some((r) => r.run.status === "ok");
  const dqrm = (v: Variant) => v.method === "dqrm";
  const ranked = [
    ...candidates.filter((v) => dqrm(v) && finished(v)),
    ...candidates.filter((v) => dqrm(v) && !finished(v)),
    ...candidates.filter((v) => !dqrm(v) && finished(v)),
    ...candidates.filter((v) => !dqrm(v) && !finished(v)),
  ];
  const chosen = new Set(ranked.slice(0, max));
  return candidates.filter((v) => chosen.has(v));
}

function curveCharts(arch: string, variants: readonly Variant[], index: Map<Variant, number>) {
  const charts: ChartSpec[] = [];
  const withCurves = variants.filter((v) => okRuns(v).length > 0);
  if (withCurves.length === 0) return charts;
  const lines = epochBoundaries(withCurves.flatMap((v) => v.runs.map((r) => r.run)));
  const defs = [
    {
      key: "accuracy",
      label: "Test accuracy (%)",
      pick: (p: ReportRun["curve"][number]) => 100 * p.accuracy,
    },
    { key: "auc", label: "Test ROC AUC", pick: (p: ReportRun["curve"][number]) => p.auc },
    {
      key: "loss",
      label: "Training loss",
      pick: (p: ReportRun["curve"][number]) => p.trainLoss ?? undefined,
    },
  ] as const;
  for (const d of defs) {
    const datasets = withCurves.map((v): ChartDataset<"line", { x: number; y: number }[]> => {
      const runs = okRuns(v).map((r) => r.run);
      const c = colorOf(index.get(v)!);
      return {
        label: runs.length > 1 ? `${v.label} (mean of ${runs.length})` : v.label,
        data: meanCurve(runs, d.pick),
        borderColor: c,
        backgroundColor: c,
        pointRadius: 2,
        borderWidth: 2,
        tension: 0,
      };
    }).filter((ds) => ds.data.length > 0);
    if (datasets.length === 0) continue;
    charts.push({
      id: `fig3-${d.key}-${arch}`,
      figure: "fig3",
      title: `${d.label} vs iteration — ${arch}`,
      caption: d.key === "loss"
        ? "Mean training loss since the previous test point (paper Fig. 3c/d)."
        : `Test set evaluated ${
          evaluatedWhen(withCurves.flatMap((v) => v.runs.map((r) => r.run)))
        }; dashed lines separate epochs (paper Fig. 3a/b).`,
      epochLines: lines,
      config: {
        type: "line",
        data: { datasets },
        options: {
          ...BASE_OPTIONS,
          plugins: { title: title(`${d.label} — ${arch}`), legend: LEGEND },
          scales: {
            x: { type: "linear", title: { display: true, text: "iteration" } },
            y: { title: { display: true, text: d.label } },
          },
        },
      },
    });
  }
  return charts;
}

function phaseChart(arch: string, variants: readonly Variant[]): ChartSpec | undefined {
  const timed = variants.filter((v) => v.runs.some((r) => r.run.timing?.total?.n));
  if (timed.length === 0) return undefined;
  const phaseNames = new Set<string>();
  for (const v of timed) {
    for (const r of v.runs) {
      for (const [p, s] of Object.entries(r.run.timing?.phases ?? {})) {
        if (s.median > 0) phaseNames.add(p);
      }
    }
  }
  const ordered = [
    ...(PHASES as readonly string[]).filter((p) => phaseNames.has(p)),
    ...[...phaseNames].filter((p) => !(PHASES as readonly string[]).includes(p)).sort(),
  ];
  const datasets = ordered.map((p, i): ChartDataset<"bar", number[]> => ({
    label: p,
    data: timed.map((v) => {
      const meds = v.runs.map((r) => r.run.timing?.phases[p]?.median).filter((x): x is number =>
        x !== undefined
      );
      return meds.length ? median(meds) : 0;
    }),
    backgroundColor: PHASE_COLORS[p] ?? colorOf(i + 5),
  }));
  return {
    id: `fig1c-phases-${arch}`,
    figure: "fig1c",
    title: `Time per iteration by phase — ${arch}`,
    caption:
      "Median ms per iteration of each phase (warm-up excluded; median over a variant's runs), stacked (paper Fig. 1c).",
    config: {
      type: "bar",
      data: { labels: timed.map((v) => v.label), datasets },
      options: {
        ...BASE_OPTIONS,
        plugins: {
          title: title(`ms per iteration by phase — ${arch}`),
          legend: LEGEND,
        },
        scales: {
          x: { stacked: true },
          y: { stacked: true, title: { display: true, text: "ms / iteration" } },
        },
      },
    },
  };
}

/** Step-line points of a histogram, as a density (fraction of values per unit). */
function densityPoints(h: WeightHistogram): { x: number; y: number }[] {
  const total = h.counts.reduce((s, c) => s + c, 0) || 1;
  const bins = h.counts.length;
  const width = (h.max - h.min) / bins || 1;
  const pts = h.counts.map((c, i) => ({ x: h.min + i * width, y: c / total / width }));
  pts.push({ x: h.max, y: h.counts[bins - 1] / total / width });
  return pts;
}

function pickSnapshots(iterations: number[], max = 4): number[] {
  const u = [...new Set(iterations)].sort((a, b) => a - b);
  if (u.length <= max) return u;
  return Array.from({ length: max }, (_, i) => u[Math.round(i * (u.length - 1) / (max - 1))]);
}

function histogramCharts(arch: string, variants: readonly Variant[]): ChartSpec[] {
  const withHist = variants.filter((v) => v.runs[0].run.weightHistograms?.length);
  if (withHist.length === 0) return [];
  const reference = withHist.find((v) =>
    v.features.embeddingBits === 32 && v.features.mlpBits === 32
  );
  const refHists = reference?.runs[0].run.weightHistograms ?? [];
  const charts: ChartSpec[] = [];
  const quantized = fig6Variants(withHist.filter((v) => v !== reference));
  const targets = quantized.length ? quantized : reference ? [reference] : [];
  for (const v of targets) {
    const hists = v.runs[0].run.weightHistograms!;
    const tensors = [...new Set(hists.map((h) => h.tensor))].slice(0, 2);
    for (const tensor of tensors) {
      const mine = hists.filter((h) => h.tensor === tensor);
      for (const it of pickSnapshots(mine.map((h) => h.iteration))) {
        const at = mine.filter((h) => h.iteration === it);
        const ref = refHists.find((h) =>
          h.tensor === tensor && h.iteration === it && h.kind === "weights"
        );
        const datasets: ChartDataset<"line", { x: number; y: number }[]>[] = [];
        const add = (h: WeightHistogram, label: string, color: string, fill: boolean) =>
          datasets.push({
            label,
            data: densityPoints(h),
            stepped: "after",
            borderColor: color,
            backgroundColor: color + (fill ? "66" : "00"),
            fill,
            pointRadius: 0,
            borderWidth: fill ? 1 : 1.5,
          });
        if (ref && v !== reference) {
          add(ref, `FP32 training (${reference!.label})`, "#4e79a7", true);
        }
        for (const h of at) {
          const bits = h.bits
            ? `INT${h.bits}`
            : v.features.embeddingBits < 32
            ? `INT${v.features.embeddingBits}`
            : "FP32";
          if (h.kind === "quantized") add(h, `${bits} quantized (${v.label})`, "#f28e2b", true);
          else {add(
              h,
              `${v === reference ? "FP32" : "FP32 shadow"} weights (${v.label})`,
              v === reference ? "#4e79a7" : "#59a14f",
              v === reference,
            );}
        }
        const epoch = at[0]?.epoch;
        const what = tensorLabel(tensor, v.runs[0].run);
        const when = `iteration ${it.toLocaleString("en-US")}${
          epoch !== undefined ? ` (epoch ${+epoch.toFixed(2)})` : ""
        }`;
        charts.push({
          id: `fig6-${arch}-${v.id}-${tensor.replace(/[^a-z0-9]+/gi, "_")}-${it}`,
          figure: "fig6",
          title: `${what}, ${v.label}, ${when}`,
          config: {
            type: "line",
            data: { datasets },
            options: {
              ...BASE_OPTIONS,
              plugins: {
                title: title(`${what}, ${when} — ${v.label}`),
                legend: LEGEND,
              },
              scales: {
                x: { type: "linear", title: { display: true, text: "weight value" } },
                y: { title: { display: true, text: "density" } },
              },
            },
          },
        });
      }
    }
  }
  return charts;
}

function commChart(arch: string, variants: readonly Variant[]): ChartSpec | undefined {
  const withComm = variants.filter((v) => v.runs.some((r) => r.run.communication));
  if (withComm.length === 0) return undefined;
  const parts = ["embedding", "mlp", "scales", "total"] as const;
  const colors = ["#4e79a7", "#f28e2b", "#59a14f", "#555555"];
  const datasets = parts.map((p, i): ChartDataset<"bar", (number | null)[]> => ({
    label: p,
    data: withComm.map((v) => {
      const c = v.runs.find((r) => r.run.communication)!.run.communication!;
      const b = c.bytesPerIteration[p];
      return b === undefined ? null : b / 1e6;
    }),
    backgroundColor: colors[i],
  })).filter((d) => d.data.some((x) => x !== null));
  return {
    id: `comm-${arch}`,
    figure: "comm",
    title: `Communication per iteration — ${arch}`,
    caption: "Bytes one worker sends per iteration, by part (log scale; paper Table 4).",
    config: {
      type: "bar",
      data: { labels: withComm.map((v) => v.label), datasets },
      options: {
        ...BASE_OPTIONS,
        plugins: {
          title: title(`MB sent per iteration per worker — ${arch}`),
          legend: LEGEND,
        },
        scales: { y: { type: "logarithmic", title: { display: true, text: "MB / iteration" } } },
      },
    },
  };
}

function memoryChart(arch: string, variants: readonly Variant[]): ChartSpec | undefined {
  if (variants.length === 0) return undefined;
  const mean = (xs: (number | undefined)[]) => {
    const ok = xs.filter((x): x is number => x !== undefined && x > 0);
    return ok.length ? ok.reduce((s, x) => s + x, 0) / ok.length / 1e6 : null;
  };
  const series = [
    { label: "peak RSS", color: "#4e79a7", get: (r: ReportRun) => r.memory?.peakRssBytes },
    { label: "engine memory", color: "#76b7b2", get: (r: ReportRun) => r.memory?.engineBytes },
    { label: "FP32 parameters", color: "#bab0ac", get: (r: ReportRun) => r.memory?.parameterBytes },
    {
      label: "model size (file, or computed)",
      color: "#f28e2b",
      get: (r: ReportRun) => runMetric(r, "modelBytes"),
    },
  ];
  const datasets = series.map((s): ChartDataset<"bar", (number | null)[]> => ({
    label: s.label,
    data: variants.map((v) => mean(v.runs.map((r) => s.get(r.run)))),
    backgroundColor: s.color,
  })).filter((d) => d.data.some((x) => x !== null));
  if (datasets.length === 0) return undefined;
  return {
    id: `memory-${arch}`,
    figure: "memory",
    title: `Memory and model size — ${arch}`,
    caption:
      "Peak resident memory, engine memory, FP32 parameter bytes and model size (the model file when recorded, else computed from bits), log scale.",
    config: {
      type: "bar",
      data: { labels: variants.map((v) => v.label), datasets },
      options: {
        ...BASE_OPTIONS,
        plugins: {
          title: title(`Memory and model size (MB) — ${arch}`),
          legend: LEGEND,
        },
        scales: { y: { type: "logarithmic", title: { display: true, text: "MB" } } },
      },
    },
  };
}

/** Medians of consecutive blocks, so a long trace stays at most `max` points. */
function blockMedians(
  values: readonly number[],
  offset: number,
  max = 400,
): { x: number; y: number }[] {
  const block = Math.max(1, Math.ceil(values.length / max));
  const out: { x: number; y: number }[] = [];
  for (let i = 0; i < values.length; i += block) {
    out.push({ x: offset + i + 1, y: median(values.slice(i, i + block)) });
  }
  return out;
}

function traceChart(arch: string, variants: readonly Variant[], index: Map<Variant, number>) {
  const traced = variants.filter((v) => v.runs[0].run.timingSamples);
  if (traced.length === 0) return undefined;
  const datasets: ChartDataset<"line", { x: number; y: number }[]>[] = [];
  for (const v of traced) {
    const run = v.runs[0].run;
    const raw = rawSamples(run, TOTAL) ?? [];
    const warm = run.timingSamples!.warmup;
    const c = colorOf(index.get(v)!);
    if (warm > 0) {
      datasets.push({
        label: `${v.label} warm-up`,
        data: blockMedians(raw.slice(0, warm), 0, 50),
        borderColor: "#999999",
        backgroundColor: "#999999",
        pointRadius: 0,
        borderWidth: 1,
      });
    }
    datasets.push({
      label: v.label,
      data: blockMedians(raw.slice(warm), warm),
      borderColor: c,
      backgroundColor: c,
      pointRadius: 0,
      borderWidth: 1.5,
    });
  }
  return {
    id: `trace-${arch}`,
    figure: "trace",
    title: `ms per iteration over the run — ${arch}`,
    caption:
      "Whole-iteration time (medians of blocks of iterations when long); grey: warm-up iterations, excluded from every statistic.",
    config: {
      type: "line",
      data: { datasets },
      options: {
        ...BASE_OPTIONS,
        plugins: {
          title: title(`ms per iteration over the run — ${arch}`),
          legend: LEGEND,
        },
        scales: {
          x: { type: "linear", title: { display: true, text: "iteration" } },
          y: { type: "logarithmic", title: { display: true, text: "ms / iteration" } },
        },
      },
    },
  } satisfies ChartSpec;
}

/**
 * Builds every chart the variants' data supports, per architecture.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildCharts } from "./charts.ts";
 * const set = buildCharts([]);
 * assert.equal(set.charts.length, 0);
 * assert.ok(set.missing.fig6);
 * ```
 */
export function buildCharts(variants: readonly Variant[]): ChartSet {
  const index = new Map(variants.map((v, i) => [v, i]));
  const archs = [...new Set(variants.map((v) => v.arch))];
  const charts: ChartSpec[] = [];
  for (const arch of archs) {
    const vs = variants.filter((v) => v.arch === arch);
    charts.push(...curveCharts(arch, vs, index));
    const phases = phaseChart(arch, vs);
    if (phases) charts.push(phases);
    charts.push(...histogramCharts(arch, vs));
    const comm = commChart(arch, vs);
    if (comm) charts.push(comm);
    const mem = memoryChart(arch, vs);
    if (mem) charts.push(mem);
    const trace = traceChart(arch, vs, index);
    if (trace) charts.push(trace);
  }
  const has = (f: string) => charts.some((c) => c.figure === f);
  const missing: Record<string, string> = {};
  if (!has("fig3")) missing.fig3 = "No run recorded a test curve (field `curve`).";
  if (!has("fig1c")) missing.fig1c = "No run recorded phase timings (field `timing.phases`).";
  if (!has("fig6")) {
    missing.fig6 =
      "No run recorded weight histograms (optional field `weightHistograms`, record/schema_extra.ts).";
  }
  if (!has("comm")) {
    missing.comm =
      "No run recorded communication bytes (optional field `communication`; data-parallel runs).";
  }
  if (!has("memory")) missing.memory = "No run recorded memory (field `memory`).";
  if (!has("trace")) {
    missing.trace =
      "No run recorded raw per-iteration timings (optional field `timingSamples`); intervals below come from the recorded summaries.";
  }
  return { charts, missing };
}
