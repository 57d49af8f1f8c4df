/**
 * Renders the report model as one self-contained HTML page: inline CSS, Chart.js inlined, the
 * chart data as JSON, CSV downloads as data URLs. Viewing it needs no network.
 *
 * @module
 */
import type { ChartSpec } from "./charts.ts";
import type { ComparedCell, ComparedTable } from "./compare.ts";
import { DIFF_THRESHOLDS } from "./compare.ts";
import {
  escapeHtml as esc,
  formatBytes,
  formatDiff,
  formatMetric,
  formatMs,
  formatSpread,
} from "./format.ts";
import { modelBytesComputed, partialOf, partialText, runMetric, variantMetric } from "./group.ts";
import { type MetricKey, METRICS, type PaperValue } from "./paper.ts";
import type { ReportModel, RunTiming } from "./report.ts";
import type { Interval } from "../record/stats.ts";

/** Options of {@linkcode renderReportHtml}. */
export interface RenderOptions {
  /** Chart.js UMD source, inlined. */
  chartJs: string;
  /** CSV files (name → text) offered as downloads. */
  csv?: Record<string, string>;
}

/** The report's style sheet, shared by the published site's pages. */
export const CSS = `
:root{--fg:#1d1d1f;--muted:#6b6b70;--line:#d9d9de;--bg2:#f5f5f7;--better:#d8f0d8;--worse:#f8d7d7;--accent:#4e79a7}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--fg);line-height:1.4}
header{background:#1f2a38;color:#fff;padding:1.2rem 2rem}
header h1{margin:0 0 .3rem;font-size:1.5rem}
header p{margin:.1rem 0;color:#c9d3df;font-size:.9rem}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:.4rem 2rem;z-index:2;font-size:.9rem}
nav a{margin-right:1rem;color:var(--accent);text-decoration:none}
main{padding:0 2rem 3rem;max-width:1500px}
h2{margin-top:2.2rem;border-bottom:2px solid var(--line);padding-bottom:.2rem}
h3{margin:1.4rem 0 .3rem}
p.note,.caption{color:var(--muted);font-size:.85rem;margin:.2rem 0 .6rem}
table{border-collapse:collapse;font-size:.82rem;margin:.4rem 0 1rem}
th,td{border:1px solid var(--line);padding:.25rem .45rem;text-align:right;vertical-align:top}
th{background:var(--bg2);font-weight:600}
td.l,th.l{text-align:left}
td.paper{background:#fafafa}
td.better{background:var(--better)}
td.worse{background:var(--worse)}
tr.notrun td{color:#9a9aa0}
tr.cont td.rowlabel{color:var(--muted)}
small,.sub{display:block;color:var(--muted);font-size:.72rem}
.diff{display:block;font-size:.72rem;font-weight:600}
td.better .diff{color:#1f6f1f}td.worse .diff{color:#9b1c1c}
.badge{display:inline-block;border-radius:3px;padding:0 .3rem;font-size:.72rem;background:var(--bg2);color:var(--muted);margin:.05rem .1rem .05rem 0}
.badge.hardware{background:#e3ecf7;color:#2b4f7a}.badge.subset{background:#efe6f5;color:#5b3a75}.badge.partial{background:#fff1d6;color:#7a5200}
.warn{background:#fff6d6;border:1px solid #ecd57a;padding:.5rem .8rem;border-radius:4px;font-size:.85rem}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:1rem}
figure.chart{margin:0;border:1px solid var(--line);border-radius:6px;padding:.5rem;background:#fff}
.canvas-box{position:relative;height:360px}
figcaption{color:var(--muted);font-size:.78rem;margin-top:.3rem}
dl.env{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;font-size:.85rem;margin:.3rem 0 1rem}
dl.env dt{font-weight:600}dl.env dd{margin:0}
details>summary{cursor:pointer;color:var(--accent);margin:.6rem 0}
.legend span{display:inline-block;padding:0 .4rem;margin-right:.5rem;border:1px solid var(--line)}
`;

/**
 * The page's own script: draws every chart from the embedded JSON (`#chart-data`), then sets
 * `data-charts-drawn` on the body (what the browser check waits for).
 */
export const CLIENT = `
(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("chart-data").textContent);
  Chart.defaults.animation = false;
  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.register({
    id: "epochLines",
    afterDatasetsDraw: function (chart, args, opts) {
      if (!opts || !opts.at || !opts.at.length) return;
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
      ctx.save();
      ctx.setLineDash([5, 4]);
      ctx.strokeStyle = "#222";
      ctx.lineWidth = 1;
      opts.at.forEach(function (v) {
        var px = x.getPixelForValue(v);
        if (px < area.left || px > area.right) return;
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
      });
      ctx.restore();
    }
  });
  var drawn = 0;
  specs.forEach(function (s) {
    var canvas = document.getElementById(s.id);
    if (!canvas) { console.error("no canvas for chart " + s.id); return; }
    try {
      var cfg = s.config;
      cfg.options = cfg.options || {};
      cfg.options.plugins = cfg.options.plugins || {};
      cfg.options.plugins.epochLines = { at: s.epochLines || [] };
      new Chart(canvas, cfg);
      drawn++;
    } catch (e) {
      console.error("chart " + s.id + " failed: " + e);
    }
  });
  document.body.setAttribute("data-charts-drawn", String(drawn));
})();
`;

function paperText(key: MetricKey, v: PaperValue | undefined): string {
  if (v === undefined) return "–";
  if (typeof v === "number") return formatMetric(key, v);
  return v.text;
}

function ciText(ci: Interval, fmt: (x: number) => string): string {
  if (ci.method === "none" || !Number.isFinite(ci.lo)) return "–";
  return `[${fmt(ci.lo)}, ${fmt(ci.hi)}]`;
}

function ratioText(r: { ratio: number; lo: number; hi: number } | undefined): string {
  if (!r || !Number.isFinite(r.ratio)) return "–";
  const f = (x: number) => x.toFixed(x >= 10 ? 1 : 3);
  return Number.isFinite(r.lo) ? `×${f(r.ratio)} [${f(r.lo)}, ${f(r.hi)}]` : `×${f(r.ratio)}`;
}

function oursCell(key: MetricKey, cell: ComparedCell, notRun: boolean, status?: string): string {
  if (notRun) return `<td class="ours">not run</td>`;
  if (!cell.ours) return `<td class="ours">${esc(status ?? "–")}</td>`;
  const cls = cell.diffClass === "better" || cell.diffClass === "worse" ? ` ${cell.diffClass}` : "";
  const parts = [esc(formatSpread(key, cell.ours))];
  if (cell.fullTables !== undefined) {
    parts.push(`<small>${esc(formatBytes(cell.fullTables))} at full tables</small>`);
  }
  if (cell.computed) parts.push(`<small>computed from bits</small>`);
  if (cell.oursVsBaseline !== undefined) {
    parts.push(`<small>(${esc(formatDiff(key, cell.oursVsBaseline, false))})</small>`);
  }
  if (cell.diff !== undefined) {
    parts.push(
      `<span class="diff" title="ours − paper">Δ ${
        esc(formatDiff(key, cell.diff, cell.ratio ?? false))
      }</span>`,
    );
  }
  return `<td class="ours${cls}">${parts.join("")}</td>`;
}

function paperCell(key: MetricKey, cell: ComparedCell): string {
  const parts = [esc(paperText(key, cell.paper))];
  if (cell.paperVsBaseline !== undefined) {
    parts.push(`<small>(${esc(formatDiff(key, cell.paperVsBaseline, false))})</small>`);
  }
  return `<td class="paper">${parts.join("")}</td>`;
}

function renderPaperTable(t: ComparedTable): string {
  const cols = t.table.columns;
  const head1 = [
    `<th class="l" rowspan="2">${esc(t.table.labelHeader)}</th>`,
    t.table.settingLabel ? `<th rowspan="2">${esc(t.table.settingLabel)}</th>` : "",
    `<th class="l" rowspan="2">Our run (variant) and conditions</th>`,
    ...cols.map((c) => `<th colspan="2">${esc(METRICS[c].label)}</th>`),
  ].join("");
  const head2 = cols.map(() => `<th>paper</th><th>ours</th>`).join("");
  const body = t.rows.map((r) => {
    const notRun = !r.variant;
    const cls = [notRun ? "notrun" : "", r.continuation ? "cont" : ""].filter(Boolean).join(" ");
    const v = r.variant;
    const variantCell = v
      ? `<strong>${esc(v.label)}</strong>${
        v.runs.length > 1 ? ` <span class="badge">${v.runs.length} runs</span>` : ""
      }${
        r.badges.map((b) =>
          `<span class="badge ${b.kind}" title="${esc(b.title)}">${esc(b.text)}</span>`
        ).join("")
      }${r.conditions.map((c) => `<span class="badge">${esc(c)}</span>`).join("")}${
        r.failures.map((f) => `<small>${esc(f)}</small>`).join("")
      }`
      : "—";
    const status = v && v.runs.every((x) => x.run.status !== "ok")
      ? v.runs[0].run.status.replace(/-/g, " ")
      : undefined;
    const cells = cols.map((c) =>
      paperCell(c, r.cells[c]) + oursCell(c, r.cells[c], notRun, status)
    ).join("");
    return `<tr${cls ? ` class="${cls}"` : ""}><td class="l rowlabel">${
      r.continuation ? "↳ " : ""
    }${esc(r.row.label)}${r.row.note ? `<small>${esc(r.row.note)}</small>` : ""}</td>${
      t.table.settingLabel ? `<td>${esc(r.row.setting ?? "")}</td>` : ""
    }<td class="l">${variantCell}</td>${cells}</tr>`;
  }).join("\n");
  const table = `<table class="paper-table" id="table-${esc(t.table.id)}">
<thead><tr>${head1}</tr><tr>${head2}</tr></thead>
<tbody>
${body}
</tbody></table>`;
  const intro = `<p class="note">${esc(t.table.caption)}. Paper: ${esc(t.table.platform)}.${
    t.table.note ? ` ${esc(t.table.note)}` : ""
  }</p>`;
  if (t.matched === 0) {
    return `<h3>${
      esc(t.table.title)
    }</h3>${intro}<details><summary>No run matches this table yet: show the paper's figures</summary>${table}</details>`;
  }
  return `<h3>${
    esc(t.table.title)
  }</h3>${intro}<p class="note">${t.matched} of ${t.table.rows.length} rows matched.</p>${table}`;
}

function renderRuns(model: ReportModel): string {
  const head = [
    "Variant",
    "Runs",
    "Status",
    "Iterations",
    "Best accuracy",
    "Best AUC",
    "Final log loss",
    "Training loss",
    "Teacher AUC (ceiling)",
    "ms/it median [95% CI] (phase sum)",
    "samples/s (wall clock)",
    "Peak RSS",
    "Model size",
  ];
  const rows = model.variants.map((v) => {
    const statuses = [...new Set(v.runs.map((r) => r.run.status))].join(", ");
    const partials = v.runs.map((r) => partialOf(r.run)).filter((p) => p !== undefined);
    const first = v.runs[0].run;
    const total = model.timing.find((t) => t.variant === v)?.phases.find((p) =>
      p.phase === "total"
    );
    const mean = (xs: (number | undefined)[]) => {
      const ok = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
      return ok.length ? ok.reduce((s, x) => s + x, 0) / ok.length : undefined;
    };
    const wall = mean(
      v.runs.map((r) => r.run.timing?.wallMsPerIteration).filter((x) => x !== 0),
    );
    const cells = [
      `<td class="l">${esc(v.label)}<small>${
        esc(v.runs.map((r) => r.path).join(", "))
      }</small></td>`,
      `<td>${v.runs.length}</td>`,
      `<td class="l">${esc(statuses)}${
        partials.map((p) => ` <span class="badge partial">${esc(partialText(p))}</span>`).join("")
      }${
        v.runs.filter((r) => r.run.error).map((r) => `<small>${esc(r.run.error!)}</small>`).join("")
      }</td>`,
      `<td>${esc(v.runs.map((r) => r.run.iterations).join(", "))}</td>`,
      `<td>${esc(formatSpread("accuracy", variantMetric(v, "accuracy")))}</td>`,
      `<td>${esc(formatSpread("auc", variantMetric(v, "auc")))}</td>`,
      `<td>${esc(formatMetric("trainLoss", mean(v.runs.map((r) => r.run.final?.logLoss))))}</td>`,
      `<td>${esc(formatSpread("trainLoss", variantMetric(v, "trainLoss")))}</td>`,
      `<td>${esc(formatMetric("auc", first.ceiling?.auc))}</td>`,
      `<td>${
        total
          ? `${esc(formatMs(total.stats.median))}<small>${
            esc(ciText(total.stats.ci, (x) => x.toFixed(2)))
          }${v.runs.length > 1 ? " (first run)" : ""}</small>`
          : "–"
      }</td>`,
      `<td>${esc(mean(v.runs.map((r) => r.run.timing?.samplesPerSecond))?.toFixed(0) ?? "–")}${
        wall === undefined ? "" : `<small>wall ${esc(formatMs(wall))}/it</small>`
      }</td>`,
      `<td>${esc(formatBytes(mean(v.runs.map((r) => r.run.memory?.peakRssBytes))))}</td>`,
      `<td>${esc(formatBytes(mean(v.runs.map((r) => runMetric(r.run, "modelBytes")))))}${
        v.runs.every((r) => modelBytesComputed(r.run)) ? "<small>computed</small>" : ""
      }</td>`,
    ];
    return `<tr>${cells.join("")}</tr>`;
  });
  return `<table id="runs-table"><thead><tr>${
    head.map((h, i) => `<th${i === 0 ? ' class="l"' : ""}>${esc(h)}</th>`).join("")
  }</tr></thead><tbody>
${rows.join("\n")}
</tbody></table>`;
}

function renderTiming(timing: readonly RunTiming[]): string {
  const head = [
    "Phase",
    "n",
    "Median",
    "MAD",
    "p10 – p90",
    "95% CI of median",
    "Outliers",
    "Ratio to reference [95% CI]",
  ];
  const blocks = timing.map((t) => {
    const warnings = t.phases.flatMap((p) => p.stats.warnings.map((w) => `${p.phase}: ${w}`));
    const source = t.phases[0]?.stats.source === "samples"
      ? "raw per-iteration samples"
      : "recorded summary (no raw samples): CI approximated from MAD";
    const rows = t.phases.map((p) => {
      const s = p.stats;
      return `<tr><td class="l">${esc(p.phase)}</td><td>${s.n}</td><td>${
        esc(formatMs(s.median))
      }</td><td>${esc(formatMs(s.mad))}</td><td>${
        esc(`${s.p10.toFixed(3)} – ${s.p90.toFixed(3)}`)
      }</td><td>${esc(ciText(s.ci, (x) => x.toFixed(3)))}</td><td>${s.outliers ?? "–"}</td><td>${
        esc(ratioText(p.ratio))
      }</td></tr>`;
    }).join("") ||
      `<tr><td class="l" colspan="8">no timed iterations (${t.run.run.iterations} trained, all warm-up)</td></tr>`;
    return `<tr class="group"><th class="l" colspan="8">${esc(t.label)} <span class="badge">${
      esc(t.run.path)
    }</span><span class="badge">${esc(source)}</span>${
      t.reference ? `<span class="badge">reference: ${esc(t.reference)}</span>` : ""
    }</th></tr>${rows}${
      warnings.length
        ? `<tr><td class="l" colspan="8"><small>${warnings.map(esc).join("<br>")}</small></td></tr>`
        : ""
    }`;
  });
  return `<table id="timing-table"><thead><tr>${
    head.map((h, i) => `<th${i === 0 ? ' class="l"' : ""}>${esc(h)}</th>`).join("")
  }</tr></thead><tbody>${blocks.join("\n")}</tbody></table>`;
}

function renderCharts(charts: readonly ChartSpec[], figure: string, missing?: string): string {
  const mine = charts.filter((c) => c.figure === figure);
  if (mine.length === 0) return `<p class="note">${esc(missing ?? "No data.")}</p>`;
  return `<div class="charts">${
    mine.map((c) =>
      `<figure class="chart"><div class="canvas-box"><canvas id="${
        esc(c.id)
      }" role="img" aria-label="${esc(c.title)}"></canvas></div>${
        c.caption ? `<figcaption>${esc(c.caption)}</figcaption>` : ""
      }</figure>`
    ).join("\n")
  }</div>`;
}

function renderInputs(model: ReportModel): string {
  const n = (x: number) => x.toLocaleString("en-US");
  return model.inputs.map((g) =>
    `<h3>Input data: ${esc(g.source)}</h3><dl class="env"><dt>Lines read</dt><dd>${
      n(g.lines)
    }</dd><dt>Samples kept</dt><dd>${n(g.samples)}</dd><dt>Sub-sampled away</dt><dd>${
      n(g.subsampled)
    }</dd><dt>Bad lines skipped</dt><dd>${n(g.bad)}${
      g.badLines.length ? `: ${esc(g.badLines.join("; "))}` : ""
    }</dd><dt>Runs</dt><dd>${esc(g.runs.join(", "))}</dd></dl>`
  ).join("\n");
}

function renderEnvironment(model: ReportModel): string {
  if (model.environments.length === 0) {
    return `<p class="note">No run recorded its environment.</p>`;
  }
  return model.environments.map((g, i) =>
    `${model.environments.length > 1 ? `<h3>Environment ${i + 1}</h3>` : ""}<dl class="env">${
      g.fields.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")
    }<dt>Runs</dt><dd>${esc(g.runs.join(", "))}</dd></dl>`
  ).join("\n");
}

/** JSON safe to embed in a `<script>` element. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(
    /\u2028|\u2029/g,
    (c) => c === "\u2028" ? "\\u2028" : "\\u2029",
  );
}

/**
 * Renders the report as one self-contained HTML page.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderReportHtml } from "./report_html.ts";
 * import { buildReport } from "./report.ts";
 * const dir = await Deno.makeTempDir();
 * const html = renderReportHtml(await buildReport(dir), { chartJs: "" });
 * assert.match(html, /No result files/);
 * await Deno.remove(dir);
 * ```
 */
export function renderReportHtml(model: ReportModel, options: RenderOptions): string {
  const { charts, missing } = model.charts;
  const failed = model.runs.filter((r) => r.run.status !== "ok");
  const archs = [...new Set(model.variants.map((v) => v.arch))];
  const th = DIFF_THRESHOLDS;
  const summary = model.runs.length
    ? `<p>${model.runs.length} result file${
      model.runs.length > 1 ? "s" : ""
    } in ${model.variants.length} variant${
      model.variants.length > 1 ? "s" : ""
    } (runs whose configs differ only in name and seed are repetitions of one variant), architecture${
      archs.length > 1 ? "s" : ""
    } ${esc(archs.join(", "))}.${
      failed.length ? ` ${failed.length} run(s) did not finish.` : ""
    }</p>`
    : `<p class="warn">No result files found in ${esc(model.resultsDir)}.</p>`;
  const skipped = model.skipped.length
    ? `<div class="warn"><strong>${model.skipped.length} file(s) skipped:</strong><ul>${
      model.skipped.map((s) => `<li>${esc(s.path)}: ${esc(s.reason)}</li>`).join("")
    }</ul></div>`
    : "";
  const csvLinks = options.csv
    ? `<p>${
      Object.entries(options.csv).map(([name, text]) =>
        `<a download="${esc(name)}" href="data:text/csv;charset=utf-8,${
          esc(encodeURIComponent(text))
        }">${esc(name)}</a>`
      ).join(" · ")
    }</p><p class="note">The same files are written to <code>csv/</code> beside this report.</p>`
    : "";
  const chartData = charts.map((c) => ({
    id: c.id,
    config: c.config,
    epochLines: c.epochLines ?? [],
  }));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(model.title)}</title>
<style>${CSS}</style></head>
<body>
<header><h1>${esc(model.title)}</h1>
<p>Results: ${esc(model.resultsDir)} · generated ${esc(model.generatedAt)}</p>
<p>Reproducing <em>DQRM: Deep Quantized Recommendation Models</em> — our figures beside the paper's.</p></header>
<nav><a href="#summary">Summary</a><a href="#paper">Paper tables</a><a href="#fig3">Fig. 3 curves</a><a href="#fig1c">Fig. 1c phases</a><a href="#fig6">Fig. 6 histograms</a><a href="#comm">Communication</a><a href="#dp">Tables 4, 6 by workers</a><a href="#memory">Memory</a><a href="#timing">Timing statistics</a><a href="#environment">Environment</a><a href="#downloads">CSV</a></nav>
<main>
<section id="summary"><h2>Summary</h2>
${summary}${skipped}
${model.runs.length ? renderRuns(model) : ""}
<p class="note">Accuracy and AUC are the best periodic test (as DLRM reports them; mean ± sd over a variant's runs); training loss is the mean loss over the last evaluation interval. Teacher AUC is the synthetic data's own ceiling. A run marked partial was stopped by its time budget after the iterations shown, then evaluated: its figures are those of a partly trained model. Two times: ms/it is the median of the sum of an iteration's timed phases (warm-up excluded, what the paper's tables and Fig. 1c compare); samples/s is wall clock over the whole training (batch × 1000 / wall ms/it, filling the training data and warm-up included), so it is lower than batch × 1000 / ms/it.</p>
</section>
<section id="paper"><h2>The paper's tables, with our figures</h2>
<p class="note legend">Each metric shows the paper's published value and ours side by side; Δ is ours − paper (a ratio × for times, sizes and bytes; sizes of runs on scaled-down tables are compared at the full tables, computed from their bits). Values in parentheses are differences from the table's baseline row, as the paper's Table 2 writes them: the paper's from its baseline, ours from our baseline run. <span class="better" style="background:var(--better)">green</span> ours better than the paper, <span style="background:var(--worse)">red</span> worse, beyond: accuracy ±${
    (100 * th.accuracy.abs!).toFixed(1)
  } pp, AUC ±${th.auc.abs}, loss ±${th.trainLoss.abs}, time ×${th.msPerIteration.ratio}, size and bytes ×${th.modelBytes.ratio}. A run stands beside a row when its method, bit widths, scale period, workers and gradient compression match; badges name where its conditions differ from the paper's (synthetic data, fewer epochs) — read such differences as context, not as failures. Three badges mean a figure is shown but not compared (no colour, no Δ): <span class="badge hardware">hardware</span> our device class (CPU or GPU) differs from the paper's, so times are not compared; <span class="badge subset">subset</span> our data is a subset of the paper's (tables scaled down, or real data with fewer table rows or samples), so accuracy, AUC and loss are not compared and model sizes are compared at the paper's full tables; <span class="badge partial">partial</span> the run was stopped by its time budget, so its accuracy, AUC and loss are of a partly trained model.</p>
${model.tables.map(renderPaperTable).join("\n")}
</section>
<section id="fig3"><h2>Test accuracy, AUC and training loss against iteration (Fig. 3)</h2>
${renderCharts(charts, "fig3", missing.fig3)}</section>
<section id="fig1c"><h2>Time per iteration by phase (Fig. 1c)</h2>
${renderCharts(charts, "fig1c", missing.fig1c)}
${renderCharts(charts, "trace", missing.trace)}</section>
<section id="fig6"><h2>Weight distributions: FP32 vs INT8 vs INT4 (Fig. 6)</h2>
${renderCharts(charts, "fig6", missing.fig6)}</section>
<section id="comm"><h2>Communication per iteration</h2>
${renderCharts(charts, "comm", missing.comm)}</section>
<section id="dp"><h2>Data parallelism by workers (Tables 4 and 6)</h2>
${renderDataParallel(model)}</section>
<section id="memory"><h2>Memory and model size</h2>
${renderCharts(charts, "memory", missing.memory)}</section>
<section id="timing"><h2>Timing statistics</h2>
<p class="note">Every timing is per iteration, warm-up iterations excluded. Median and MAD (median absolute deviation) are robust to the slow outliers of a shared machine; the 95% confidence interval of the median is distribution-free (order statistics) when raw samples were recorded, else approximated from the MAD (median ± 1.96·1.2533·1.4826·MAD/√n). Outliers: samples above median + 5·1.4826·MAD. A comparison with the FP32 reference run is the ratio of medians with its 95% interval (bootstrap, or log-normal from the two intervals).</p>
${model.timing.length ? renderTiming(model.timing) : `<p class="note">No timings.</p>`}
</section>
<section id="environment"><h2>Environment</h2>
${renderEnvironment(model)}
${renderInputs(model)}</section>
<section id="downloads"><h2>CSV export</h2>
${csvLinks || `<p class="note">No CSV files.</p>`}</section>
</main>
<script>${options.chartJs.replace(/<\/script/gi, "<\\/script")}</script>
<script type="application/json" id="chart-data">${jsonForScript(chartData)}</script>
<script>${CLIENT}</script>
</body></html>
`;
}

function renderDataParallel(model: ReportModel): string {
  const { table4, table6 } = model.dataParallel;
  if (!table4.length && !table6.length) {
    return `<p class="note">No Table 4 or Table 6 runs (bench --experiment table4,table6).</p>`;
  }
  const pp = (x: number | undefined) =>
    x === undefined || !Number.isFinite(x) ? "–" : `${x >= 0 ? "+" : ""}${(100 * x).toFixed(2)} pp`;
  const t4 = table4.map((t) =>
    `<h3>Table 4 (${esc(t.arch)}): bytes per worker per iteration</h3>
<p class="caption">Counted exactly on the suite's training batches (each worker's slice of every global batch; row ids and per-table counts included); nothing is trained, so the uncompressed row is computed, not all-reduced. The paper measured ${
      t.arch === "terabyte" ? "2" : "4"
    } workers.</p>
<table><tr><th class="l">Setting</th><th>Paper</th>${
      t.workers.map((w) => `<th>${w} workers</th>`).join("")
    }</tr>${
      t.rows.map((r) =>
        `<tr><td class="l">${esc(r.label)}</td><td class="paper">${formatBytes(r.paper)}</td>${
          t.workers.map((w) => `<td>${formatBytes(r.ours[w]?.value?.mean)}</td>`).join("")
        }</tr>`
      ).join("")
    }</table>`
  ).join("\n");
  const t6 = table6.map((t) =>
    `<h3>Table 6 (${esc(t.arch)}): test accuracy by gradient setting and workers</h3>
<p class="caption">Each cell: our best test accuracy and, below, its difference from the same training on one worker (${
      t.single ? formatMetric("accuracy", t.single.mean) : "no single-worker run"
    }). The paper's column: 4 GPUs, with its difference from its single-GPU DQRM INT4 (Table 3(a), 79.071%).</p>
<table><tr><th class="l">Setting</th><th>Paper (4 workers)</th>${
      t.workers.map((w) => `<th>${w} workers</th>`).join("")
    }</tr>${
      t.rows.map((r) =>
        `<tr><td class="l">${esc(r.label)}</td><td class="paper">${
          formatMetric("accuracy", r.paper)
        }<small>${pp(r.paperDelta)}</small></td>${
          t.workers.map((w) => {
            const c = r.ours[w];
            return `<td>${formatMetric("accuracy", c?.value?.mean)}<small>${
              pp(c?.delta)
            }</small></td>`;
          }).join("")
        }</tr>`
      ).join("")
    }</table>`
  ).join("\n");
  return t4 + t6;
}
