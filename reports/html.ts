/**
 * A minimal self-contained HTML summary of a suite's results: one table, inline CSS, no
 * scripts or network.
 *
 * @module
 */
import type { RunResult } from "./schema.ts";

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const fmt = (x: number | undefined, digits = 4) =>
  x === undefined || Number.isNaN(x) ? "–" : x.toFixed(digits);

const gb = (bytes: number) => (bytes / 1e9).toFixed(3);

/** Renders the results of one suite as an HTML page. */
export function renderSummaryHtml(suite: string, results: RunResult[]): string {
  const head = [
    "run",
    "status",
    "engine",
    "iterations",
    "ms/it (median)",
    "fwd",
    "bwd",
    "upd",
    "samples/s",
    "accuracy",
    "AUC",
    "log loss",
    "best acc",
    "best AUC",
    "teacher AUC",
    "params GB",
    "peak RSS GB",
  ];
  const rows = results.map((r) => {
    const p = r.timing.phases;
    const cells = [
      r.config.name,
      r.status === "ok" ? "ok" : `failed: ${r.error ?? ""}`,
      `${r.environment.engine.name} ×${r.environment.engine.threads}`,
      String(r.iterations),
      `${fmt(r.timing.total.median, 3)} ± ${fmt(r.timing.total.mad, 3)}`,
      fmt(p.forward?.median, 3),
      fmt(p.backward?.median, 3),
      fmt(p.update?.median, 3),
      r.timing.samplesPerSecond.toFixed(0),
      fmt(r.final?.accuracy),
      fmt(r.final?.auc),
      fmt(r.final?.logLoss),
      fmt(r.best?.accuracy),
      fmt(r.best?.auc),
      fmt(r.ceiling?.auc),
      gb(r.memory.parameterBytes),
      gb(r.memory.peakRssBytes),
    ];
    return `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`;
  });
  const env = results[0]?.environment;
  const envLine = env
    ? `Deno ${env.deno} (V8 ${env.v8}), ${env.os}/${env.arch}, ${env.cpu}, engine device: ${env.engine.device}`
    : "no results";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dqrm-bench: ${escapeHtml(suite)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.env{color:#555;font-size:.85rem}
</style></head><body>
<h1>dqrm-bench — ${escapeHtml(suite)}</h1>
<p class="env">${escapeHtml(envLine)}</p>
<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead>
<tbody>
${rows.join("\n")}
</tbody></table>
<p class="env">Timings: per-iteration medians (warm-up excluded) ± median absolute deviation, in ms.
Metrics: test set at the end of training; best = best periodic test. Teacher AUC: the synthetic
data's own ceiling.</p>
</body></html>
`;
}
