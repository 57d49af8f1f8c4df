/**
 * The published site's pages: the index of every results folder and series, and one history
 * page per series with a Chart.js trend chart per figure (bands where the figure has an
 * interval or repeats; gate failures and step changes marked). Pages are self-contained (inline
 * CSS, Chart.js inlined), so the site needs no network to view.
 *
 * @module
 */
import type { ChartConfiguration } from "chart.js";
import { escapeHtml as esc, formatBytes, formatMs } from "./format.ts";
import {
  figureDef,
  type HistoryPoint,
  type PointFinding,
  type PublishedFolder,
  type Series,
} from "./history.ts";
import { CLIENT, CSS, jsonForScript } from "./report_html.ts";

const SITE_CSS = `${CSS}
tr.regressed td{background:var(--worse)}
.mark{display:inline-block;border-radius:3px;padding:0 .3rem;font-size:.72rem;font-weight:600;margin:.05rem .1rem}
.mark.gate{background:#d62728;color:#fff}.mark.step{background:#ff7f0e;color:#fff}.mark.better{background:#2ca02c;color:#fff}
td.l ul{margin:.1rem 0;padding-left:1rem}
code{font-size:.8rem}
`;

/** Chart.js defaults the site sets before drawing: datasets named `_…` stay out of legends. */
const LEGEND_FILTER =
  `Chart.defaults.plugins.legend.labels.filter=function(item){return item.text.charAt(0)!=="_"};`;

/** A figure's value as text. */
export function formatFigure(key: string, v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "–";
  switch (figureDef(key).unit) {
    case "ms":
      return formatMs(v);
    case "samples/s":
      return v.toFixed(0);
    case "ratio":
      return `×${v.toFixed(3)}`;
    case "bytes":
      return formatBytes(v);
    case "metric":
      return key === "accuracy" ? `${(100 * v).toFixed(3)}%` : v.toFixed(4);
  }
}

/** A commit as shown: 10 hex digits, `*` when dirty, or `unknown`. */
export function commitText(commit: string | null, dirty: boolean | null): string {
  return commit ? `${commit.slice(0, 10)}${dirty ? "*" : ""}` : "unknown";
}

function page(title: string, header: string, body: string, chartJs?: string, charts?: unknown) {
  const scripts = chartJs !== undefined
    ? `<script>${chartJs.replace(/<\/script/gi, "<\\/script")}</script>
<script>${LEGEND_FILTER}</script>
<script type="application/json" id="chart-data">${jsonForScript(charts ?? [])}</script>
<script>${CLIENT}</script>`
    : `<script>document.body.setAttribute("data-charts-drawn", "0");</script>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${SITE_CSS}</style></head>
<body>
<header>${header}</header>
${body}
${scripts}
</body></html>
`;
}

/** What the index shows. */
export interface IndexModel {
  title: string;
  folders: readonly PublishedFolder[];
  series: readonly Series[];
  generatedAt: string;
}

/** Renders `index.html`: the folders, newest first, and every series by machine. */
export function renderIndexHtml(m: IndexModel): string {
  const folders = [...m.folders].sort((a, b) => b.date.localeCompare(a.date));
  const rows = folders.map((f) =>
    `<tr><td class="l">${esc(f.date.replace("T", " ").slice(0, 19))}</td><td class="l">${
      esc(f.suites.join(", "))
    }</td><td class="l">${esc(f.engines.join(", "))}</td><td class="l">${
      esc(f.devices.join("; "))
    }<small>${f.machines.map((x) => `machine ${esc(x.fingerprint)}`).join(", ")}</small></td>
<td class="l"><code>${
      f.commits.map((c) => esc(commitText(c.commit, c.dirty))).join(", ")
    }</code></td>
<td>${esc(f.seeds.join(", "))}</td><td>${f.runs.length}${
      f.notOk ? `<small>${f.notOk} not ok</small>` : ""
    }</td><td class="l"><a href="runs/${esc(f.id)}/report.html">report</a><small>${
      esc(f.source)
    }</small></td></tr>`
  ).join("\n");
  const machines = new Map<string, Series[]>();
  for (const s of m.series) {
    machines.set(s.machine.fingerprint, [...(machines.get(s.machine.fingerprint) ?? []), s]);
  }
  const history = [...machines.values()].map((list) => {
    const mach = list[0].machine;
    return `<h3>Machine ${esc(mach.fingerprint)}: ${esc(mach.label)}</h3>
<table><tr><th class="l">Suite</th><th class="l">Run</th><th class="l">Method</th><th class="l">Engine</th><th>Commits</th><th>Latest ms/it</th><th>Latest AUC</th><th class="l">Marks</th><th class="l">History</th></tr>
${
      list.map((s) => {
        const last = s.points.at(-1)!;
        const gates = s.points.filter((p) => p.regressions.length).length;
        const steps = s.points.flatMap((p) => p.steps).filter((x) => x.worse).length;
        return `<tr${gates ? ' class="regressed"' : ""}><td class="l">${
          esc(s.suite)
        }</td><td class="l">${esc(s.run)}</td><td class="l">${esc(s.method)}</td><td class="l">${
          esc(s.engine)
        }</td><td>${s.points.length}</td><td>${
          formatFigure("ms.total", last.figures["ms.total"]?.value)
        }</td><td>${formatFigure("auc", last.figures.auc?.value)}</td><td class="l">${
          gates ? `<span class="mark gate">gate fails at ${gates}</span>` : ""
        }${
          steps ? `<span class="mark step">${steps} worse step(s)</span>` : ""
        }</td><td class="l"><a href="history/${esc(s.id)}.html">history</a></td></tr>`;
      }).join("\n")
    }</table>`;
  }).join("\n");
  const body =
    `<nav><a href="#folders">Results folders</a><a href="#history">History</a><a href="history.json">history.json</a></nav>
<main>
<section id="folders"><h2>Results folders</h2>
<p class="note">Every results folder published, newest first, each linking to its full report. Commit: the checkout the runs were measured at (<code>*</code>: with uncommitted changes; unknown: a result older than provenance, or measured outside a git checkout). Machine: a fingerprint of OS, CPU model, cores, memory and, for GPU runs, the adapter.</p>
<table><tr><th class="l">Date (UTC)</th><th class="l">Suite</th><th class="l">Engine</th><th class="l">Adapter or CPU model</th><th class="l">Commit</th><th>Seeds</th><th>Runs</th><th class="l">Report</th></tr>
${rows}</table></section>
<section id="history"><h2>History by machine</h2>
<p class="note">One history per suite, run and machine: figures are never compared across machines. <span class="mark gate">gate fails</span> the regression gate (<code>deno task regress</code>, default tolerances) fails between a point and the previous point of the same machine; <span class="mark step">worse step</span> a lasting change of level for the worse (asv-style step detection).</p>
${history || `<p class="note">No series.</p>`}</section>
</main>`;
  return page(
    m.title,
    `<h1>${esc(m.title)}</h1><p>${m.folders.length} results folders · ${m.series.length} series · ${
      new Set(m.series.map((s) => s.machine.fingerprint)).size
    } machines · published ${esc(m.generatedAt)}</p>`,
    body,
  );
}

/** Which figure a gate finding is about (`timing.forward` → `ms.forward`), if one. */
export function findingFigure(f: Pick<PointFinding, "what">): string | undefined {
  const w = f.what;
  if (w.startsWith("timing.")) return `ms.${w.slice(7)}`;
  if (w === "memory.peakRssBytes") return "peakRssBytes";
  if (w === "memory.modelFileBytes") return "modelFileBytes";
  const m = w.match(/^(?:final|curve\[\d+\]@\d+)\.(auc|accuracy|logLoss)$/);
  return m ? m[1] : undefined;
}

function pointLabel(p: HistoryPoint): string {
  return `${commitText(p.commit, p.dirty)} ${p.date.slice(5, 16).replace("T", " ")}`;
}

/** The trend chart of one figure of a series (plain JSON: no callbacks). */
export function historyChart(s: Series, key: string): ChartConfiguration {
  const def = figureDef(key);
  const labels = s.points.map(pointLabel);
  const v = s.points.map((p) => p.figures[key]);
  const banded = v.some((x) => x && x.hi > x.lo);
  const gateAt = s.points.map((p, i) =>
    p.regressions.some((f) => (findingFigure(f) ?? key) === key) ? v[i]?.value ?? null : null
  );
  const stepAt = s.points.map((p, i) =>
    p.steps.some((x) => x.figure === key) ? v[i]?.value ?? null : null
  );
  const datasets: Record<string, unknown>[] = [];
  if (banded) {
    const band = def.unit === "ms" ? "95% CI of the median" : "range of repeats";
    datasets.push(
      {
        label: `_${band} (low)`,
        data: v.map((x) => x?.lo ?? null),
        borderWidth: 0,
        pointRadius: 0,
        fill: false,
      },
      {
        label: band,
        data: v.map((x) => x?.hi ?? null),
        borderWidth: 0,
        pointRadius: 0,
        fill: "-1",
        backgroundColor: "rgba(78,121,167,0.22)",
      },
    );
  }
  datasets.push({
    label: def.label,
    data: v.map((x) => x?.value ?? null),
    borderColor: "#4e79a7",
    backgroundColor: "#4e79a7",
    pointRadius: 4,
    fill: false,
  });
  if (gateAt.some((x) => x !== null)) {
    datasets.push({
      label: "gate fails",
      data: gateAt,
      showLine: false,
      pointStyle: "triangle",
      pointRadius: 11,
      backgroundColor: "#d62728",
      borderColor: "#d62728",
    });
  }
  if (stepAt.some((x) => x !== null)) {
    datasets.push({
      label: "step change",
      data: stepAt,
      showLine: false,
      pointStyle: "rectRot",
      pointRadius: 9,
      backgroundColor: "rgba(255,127,14,0.8)",
      borderColor: "#ff7f0e",
    });
  }
  return {
    type: "line",
    data: { labels, datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      plugins: { title: { display: true, text: def.label } },
      scales: {
        x: { title: { display: true, text: "commit and run date (UTC), oldest first" } },
        y: { title: { display: true, text: def.unit }, beginAtZero: false },
      },
    },
  } as unknown as ChartConfiguration;
}

/** Renders one series' history page (it sits in `history/`, beside `../runs/`). */
export function renderHistoryHtml(s: Series, chartJs: string): string {
  const charts = s.figures.map((k, i) => ({ id: `fig-${i}`, config: historyChart(s, k) }));
  const figures = charts.map((c, i) =>
    `<figure class="chart"><div class="canvas-box"><canvas id="${c.id}"></canvas></div><figcaption>${
      esc(figureDef(s.figures[i]).label)
    }</figcaption></figure>`
  ).join("\n");
  const shown = s.figures.filter((k) => !k.startsWith("ms.") || k === "ms.total");
  const rows = s.points.map((p, i) => {
    const marks = [
      ...p.repeats.filter((r) => r.status !== "ok").map((r) =>
        `<li><span class="badge partial">${esc(r.status)}</span> ${
          esc(r.error ?? "")
        } (not charted) <small>folder ${esc(r.folder)}</small></li>`
      ),
      ...p.regressions.map((f) =>
        `<li><span class="mark gate">gate</span> ${esc(f.detail)} <small>folder ${
          esc(f.folder)
        }</small></li>`
      ),
      ...p.steps.map((x) =>
        `<li><span class="mark ${x.worse ? "step" : "better"}">step</span> ${
          esc(figureDef(x.figure).label)
        } ${esc(formatFigure(x.figure, x.before))} → ${esc(formatFigure(x.figure, x.after))} (×${
          x.ratio.toFixed(3)
        })</li>`
      ),
    ];
    return `<tr${p.regressions.length ? ' class="regressed"' : ""}><td>${
      i + 1
    }</td><td class="l"><code>${esc(commitText(p.commit, p.dirty))}</code></td><td class="l">${
      esc(p.date.replace("T", " ").slice(0, 19))
    }</td><td class="l">${
      p.folders.map((id) => `<a href="../runs/${esc(id)}/report.html">${esc(id)}</a>`).join("<br>")
    }</td>${
      shown.map((k) => {
        const f = p.figures[k];
        return `<td>${esc(formatFigure(k, f?.value))}${
          f && f.n > 1 ? `<small>${f.n} repeats</small>` : ""
        }</td>`;
      }).join("")
    }<td class="l">${`${i === 0 ? "first point" : marks.length ? "" : "gate passes"}${
      marks.length ? `<ul>${marks.join("")}</ul>` : ""
    }`}</td></tr>`;
  }).join("\n");
  const title = `${s.suite} · ${s.run} · ${s.machine.label}`;
  const body =
    `<nav><a href="../index.html">Index</a><a href="#points">Points</a><a href="#charts">Charts</a><a href="../history.json">history.json</a></nav>
<main>
<section id="points"><h2>Points</h2>
<p class="note">One point per commit on this machine (runs at one commit are repeats: the figure is their median, the band their range, or for times the union of their 95% intervals of the median). Each point after the first is checked with the regression gate against the previous point's latest run: deterministic figures within 1e-6, times failing only when the 95% interval of the ratio of medians lies wholly above ×3, peak memory within ×1.5. Steps: a lasting change of level of at least 10% for times and memory, 5% for metrics (piecewise-constant L1 fit, as asv does); phases the gate deems too small to compare (under 0.5 ms/it) are not searched for steps.</p>
<table><tr><th>#</th><th class="l">Commit</th><th class="l">Date (UTC)</th><th class="l">Reports</th>${
      shown.map((k) => `<th>${esc(figureDef(k).label)}</th>`).join("")
    }<th class="l">Against the previous point</th></tr>
${rows}</table></section>
<section id="charts"><h2>Trends</h2>
${
      figures
        ? `<div class="charts">${figures}</div>`
        : `<p class="note">Nothing to chart: no run of this series finished (see the points above).</p>`
    }</section>
</main>`;
  return page(
    title,
    `<h1>${esc(s.suite)} · ${esc(s.run)} (${esc(s.method)}, ${esc(s.engine)})</h1><p>Machine ${
      esc(s.machine.fingerprint)
    }: ${esc(s.machine.label)} · ${s.points.length} commits</p>`,
    body,
    chartJs,
    charts,
  );
}
