/**
 * The full report of a results folder: its runs grouped into variants, the paper's tables with
 * our figures beside them, the charts, per-run timing statistics with ratios to the FP32
 * baseline, and the environments. {@linkcode writeReport} writes it as one self-contained HTML
 * file (Chart.js inlined) and the tables as CSV files.
 *
 * @module
 */
import { table4ByWorkers, table6ByWorkers, type WorkersTable } from "./data_parallel.ts";
import { stringify } from "csv-stringify/sync";
import { buildCharts, type ChartSet } from "./charts.ts";
import { compareAll, type ComparedTable } from "./compare.ts";
import { writeFileAtomic } from "../record/files.ts";
import { groupVariants, runLabel, runMetric, type Variant } from "./group.ts";
import { type LoadedRun, loadResults, type SkippedFile } from "./load.ts";
import { paperNumber } from "./paper.ts";
import { renderReportHtml } from "./report_html.ts";
import type { Ratio } from "../record/stats.ts";
import { phasesOf, timingRatio, type TimingStats, timingStats, TOTAL } from "./timing.ts";

/** Timing of one phase of one run, with its ratio to the reference run. */
export interface PhaseRow {
  phase: string;
  stats: TimingStats;
  /** This run's median / the reference run's median, with a 95% interval. */
  ratio?: Ratio;
}

/** The timings of one run. */
export interface RunTiming {
  variant: Variant;
  run: LoadedRun;
  label: string;
  phases: PhaseRow[];
  /** Label of the run its ratios are relative to. */
  reference?: string;
}

/** Runs that share one environment. */
export interface EnvironmentGroup {
  /** Field → value. */
  fields: [string, string][];
  runs: string[];
}

/** Everything the report shows. */
export interface ReportModel {
  title: string;
  resultsDir: string;
  generatedAt: string;
  runs: LoadedRun[];
  skipped: SkippedFile[];
  variants: Variant[];
  tables: ComparedTable[];
  charts: ChartSet;
  timing: RunTiming[];
  environments: EnvironmentGroup[];
  /** What the raw input of runs on real data held: lines, samples, bad lines skipped. */
  inputs: InputGroup[];
  /** Tables 4 and 6 by worker count. */
  dataParallel: { table4: WorkersTable[]; table6: WorkersTable[] };
}

/** Options of {@linkcode buildReport}. */
export interface BuildOptions {
  /** Page title (default: "dqrm-bench report"). */
  title?: string;
  /** Time stamp shown (default: now). */
  generatedAt?: string;
}

/** The FP32 single-worker variant each architecture's timings are compared with. */
function referenceOf(variants: readonly Variant[], arch: string): LoadedRun | undefined {
  const v = variants.find((x) =>
    x.arch === arch && x.features.embeddingBits === 32 && x.features.mlpBits === 32 &&
    x.features.workers === 1 && x.runs.some((r) => r.run.status === "ok")
  );
  return v?.runs.find((r) => r.run.status === "ok");
}

function timingRows(variants: readonly Variant[]): RunTiming[] {
  const out: RunTiming[] = [];
  const refStats = new Map<LoadedRun, Map<string, TimingStats | undefined>>();
  const statsOf = (r: LoadedRun) => {
    let m = refStats.get(r);
    if (!m) {
      m = new Map(phasesOf(r.run).map((p) => [p, timingStats(r.run, p)]));
      refStats.set(r, m);
    }
    return m;
  };
  for (const v of variants) {
    const ref = referenceOf(variants, v.arch);
    const refVariant = ref ? variants.find((x) => x.runs.includes(ref)) : undefined;
    for (const r of v.runs) {
      const mine = statsOf(r);
      const phases: PhaseRow[] = [];
      const refTotal = ref ? statsOf(ref).get(TOTAL)?.median ?? 0 : 0;
      for (const [phase, stats] of mine) {
        // A phase this run never exercised (the scale phase of FP32) has nothing to show.
        if (!stats || (stats.p90 < 1e-3 && stats.median < 1e-3)) continue;
        const row: PhaseRow = { phase, stats };
        const rs = ref && ref !== r ? statsOf(ref).get(phase) : undefined;
        // A ratio to a phase the reference barely exercised says nothing.
        if (rs && rs.median >= 1e-2 && rs.median >= 0.01 * refTotal && stats.median > 0) {
          row.ratio = timingRatio(stats, rs);
        }
        phases.push(row);
      }
      out.push({
        variant: v,
        run: r,
        label: runLabel(v, r),
        phases,
        ...(ref && refVariant && ref !== r ? { reference: runLabel(refVariant, ref) } : {}),
      });
    }
  }
  return out;
}

function environmentGroups(runs: readonly LoadedRun[]): EnvironmentGroup[] {
  const groups = new Map<string, EnvironmentGroup>();
  for (const r of runs) {
    const e = r.run.environment;
    if (!e) continue;
    const fields: [string, string][] = [
      ["Deno", e.deno ?? "?"],
      ["V8", e.v8 ?? "?"],
      ["TypeScript", e.typescript ?? "?"],
      ["OS", `${e.os ?? "?"} / ${e.arch ?? "?"}`],
      ["CPU", `${e.cpu ?? "?"}${e.cores ? `, ${e.cores} logical cores` : ""}`],
      ["Memory", e.memoryBytes ? `${(e.memoryBytes / 2 ** 30).toFixed(1)} GiB` : "?"],
      [
        "Engine",
        `${e.engine?.name ?? "?"} on ${e.engine?.device ?? "?"}${
          e.engine?.threads ? `, ${e.engine.threads} thread${e.engine.threads > 1 ? "s" : ""}` : ""
        }`,
      ],
    ];
    for (const [k, v] of Object.entries(e.engine?.details ?? {})) {
      fields.push([`engine.${k}`, typeof v === "string" ? v : JSON.stringify(v)]);
    }
    const key = JSON.stringify(fields);
    const g = groups.get(key) ?? { fields, runs: [] };
    g.runs.push(r.path);
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** Runs that read the same raw input, and what it held (from their `inputLines`). */
export interface InputGroup {
  /** The data's source (or cache) as the runs recorded it. */
  source: string;
  lines: number;
  samples: number;
  subsampled: number;
  bad: number;
  /** One line per kind of bad line: count and first sites. */
  badLines: string[];
  runs: string[];
}

function inputGroups(runs: readonly LoadedRun[]): InputGroup[] {
  const groups = new Map<string, InputGroup>();
  for (const r of runs) {
    const input = r.run.inputLines;
    if (!input) continue;
    const data = r.run.config.data as { source?: string; cache?: string } | undefined;
    const source = data?.source ?? data?.cache ?? "?";
    const key = JSON.stringify([source, input]);
    const g = groups.get(key) ?? {
      source,
      lines: input.lines,
      samples: input.samples,
      subsampled: input.subsampled,
      bad: input.bad,
      badLines: Object.entries(input.badLines).map(([kind, b]) =>
        `${kind}: ${b.count.toLocaleString("en-US")} (first at ${
          b.first.map((f) => `${f.file}:${f.line}`).join(", ")
        })`
      ),
      runs: [],
    };
    g.runs.push(r.path);
    groups.set(key, g);
  }
  return [...groups.values()];
}

/**
 * Reads a results folder (sub-folders included) and builds the report's model.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildReport } from "./report.ts";
 * const dir = await Deno.makeTempDir();
 * const model = await buildReport(dir);
 * assert.equal(model.runs.length, 0);
 * await Deno.remove(dir);
 * ```
 */
export async function buildReport(dir: string, options: BuildOptions = {}): Promise<ReportModel> {
  const { runs, skipped } = await loadResults(dir);
  const variants = groupVariants(runs);
  return {
    title: options.title ?? "dqrm-bench report",
    resultsDir: dir,
    generatedAt: options.generatedAt ?? new Date().toISOString(),
    runs,
    skipped,
    variants,
    tables: compareAll(variants),
    charts: buildCharts(variants),
    timing: timingRows(variants),
    environments: environmentGroups(runs),
    inputs: inputGroups(runs),
    dataParallel: { table4: table4ByWorkers(variants), table6: table6ByWorkers(variants) },
  };
}

const num = (x: number | undefined) => x === undefined || !Number.isFinite(x) ? "" : x;

/**
 * The report's tables as CSV files (file name → text): one per paper table (paper value, ours,
 * sd, n, difference for every column), every run's figures, and every run's timings.
 */
export function reportCsv(model: ReportModel): Record<string, string> {
  const files: Record<string, string> = {};
  for (const t of model.tables) {
    const header = ["table", "row", "setting", "variant", "runs", "conditions"];
    for (const c of t.table.columns) {
      header.push(
        `${c}_paper`,
        `${c}_paper_text`,
        `${c}_ours`,
        `${c}_ours_sd`,
        `${c}_ours_n`,
        `${c}_diff`,
      );
    }
    const rows = t.rows.map((r) => {
      const out: (string | number)[] = [
        t.table.id,
        r.row.label,
        r.row.setting ?? "",
        r.variant?.label ?? "",
        r.variant?.runs.length ?? 0,
        [...r.badges.map((b) => b.text), ...r.conditions].join("; "),
      ];
      for (const c of t.table.columns) {
        const cell = r.cells[c];
        const p = cell.paper;
        out.push(
          num(paperNumber(p)),
          typeof p === "object" ? p.text : "",
          num(cell.ours?.mean),
          num(cell.ours?.sd),
          cell.ours?.n ?? 0,
          num(cell.diff),
        );
      }
      return out;
    });
    files[`table-${t.table.id}.csv`] = stringify([header, ...rows]);
  }
  const runHeader = [
    "path",
    "variant",
    "method",
    "arch",
    "seed",
    "status",
    "iterations",
    "best_accuracy",
    "best_auc",
    "final_accuracy",
    "final_auc",
    "final_log_loss",
    "train_loss",
    "teacher_auc",
    "ms_per_iteration_median",
    "samples_per_second",
    "peak_rss_bytes",
    "model_bytes",
  ];
  const runRows = model.variants.flatMap((v) =>
    v.runs.map((r) => [
      r.path,
      v.label,
      v.method,
      v.arch,
      num(r.run.config.seed),
      r.run.status,
      r.run.iterations,
      num(r.run.best?.accuracy),
      num(r.run.best?.auc),
      num(r.run.final?.accuracy),
      num(r.run.final?.auc),
      num(r.run.final?.logLoss),
      num(runMetric(r.run, "trainLoss")),
      num(r.run.ceiling?.auc),
      num(runMetric(r.run, "msPerIteration")),
      num(r.run.timing?.samplesPerSecond),
      num(r.run.memory?.peakRssBytes),
      num(runMetric(r.run, "modelBytes")),
    ])
  );
  files["runs.csv"] = stringify([runHeader, ...runRows]);
  const timingHeader = [
    "path",
    "run",
    "phase",
    "n",
    "median_ms",
    "mad_ms",
    "p10_ms",
    "p90_ms",
    "ci_lo_ms",
    "ci_hi_ms",
    "ci_method",
    "outliers",
    "source",
    "ratio_to_reference",
    "ratio_ci_lo",
    "ratio_ci_hi",
    "reference",
  ];
  const timingData = model.timing.flatMap((t) =>
    t.phases.map((p) => [
      t.run.path,
      t.label,
      p.phase,
      p.stats.n,
      num(p.stats.median),
      num(p.stats.mad),
      num(p.stats.p10),
      num(p.stats.p90),
      num(p.stats.ci.lo),
      num(p.stats.ci.hi),
      p.stats.ci.method,
      p.stats.outliers ?? "",
      p.stats.source,
      num(p.ratio?.ratio),
      num(p.ratio?.lo),
      num(p.ratio?.hi),
      t.reference ?? "",
    ])
  );
  files["timing.csv"] = stringify([timingHeader, ...timingData]);
  return files;
}

/**
 * Reads Chart.js's self-contained UMD bundle from the npm cache (fetching the package on first
 * use), ready to inline: no network is needed to view the report.
 */
export async function chartJsSource(): Promise<string> {
  // Importing the package makes Deno fetch it into its cache; the UMD bundle sits beside the ESM
  // entry point but is not exported, so it is read as a file.
  await import("chart.js");
  const entry = import.meta.resolve("chart.js");
  const src = await Deno.readTextFile(new URL("./chart.umd.min.js", entry));
  return src.replace(/\n?\/\/# sourceMappingURL=\S*\s*$/, "\n");
}

/** Options of {@linkcode writeReport}. */
export interface WriteOptions extends BuildOptions {
  /** Output HTML path (default `DIR/report.html`); CSV files go to `csv/` beside it. */
  out?: string;
  /** Skip the CSV files. */
  noCsv?: boolean;
}

/** What {@linkcode writeReport} wrote. */
export interface WrittenReport {
  html: string;
  csv: string[];
  model: ReportModel;
}

/**
 * Builds the report of a results folder and writes it: one self-contained HTML file and the
 * tables as CSV files.
 */
export async function writeReport(dir: string, options: WriteOptions = {}): Promise<WrittenReport> {
  const model = await buildReport(dir, options);
  const csv = reportCsv(model);
  const html = renderReportHtml(model, { chartJs: await chartJsSource(), csv });
  const out = options.out ?? `${dir}/report.html`;
  await writeFileAtomic(out, html);
  const written: string[] = [];
  if (!options.noCsv) {
    const csvDir = `${out.replace(/[^/]*$/, "") || "./"}csv`;
    await Deno.mkdir(csvDir, { recursive: true });
    for (const [name, text] of Object.entries(csv)) {
      await writeFileAtomic(`${csvDir}/${name}`, text);
      written.push(`${csvDir}/${name}`);
    }
  }
  return { html: out, csv: written, model };
}
