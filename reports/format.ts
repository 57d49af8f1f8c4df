/**
 * Number formatting shared by the HTML report and the command-line tools.
 *
 * @module
 */
import type { MetricKey } from "./paper.ts";

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Bytes with a decimal unit: `2.161 GB`, `509.0 kB`. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return "–";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = bytes, u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) v /= 1000, u++;
  return `${v.toFixed(u === 0 ? 0 : v >= 100 ? 1 : 3)} ${units[u]}`;
}

/** Milliseconds with about three significant digits. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "–";
  const a = Math.abs(ms);
  return `${ms.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3)} ms`;
}

/** A metric's value as the paper writes it. */
export function formatMetric(key: MetricKey, v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "–";
  switch (key) {
    case "accuracy":
      return `${(100 * v).toFixed(3)}%`;
    case "auc":
      return v.toFixed(4);
    case "trainLoss":
      return v.toFixed(3);
    case "msPerIteration":
      return formatMs(v);
    case "modelBytes":
    case "commBytes":
      return formatBytes(v);
  }
}

/** A difference of a metric: `+0.062 pp`, `-0.0007`, or a ratio `×1.50`. */
export function formatDiff(key: MetricKey, diff: number | undefined, ratio: boolean): string {
  if (diff === undefined || !Number.isFinite(diff)) return "";
  if (ratio) {
    return `×${diff >= 10 ? diff.toFixed(1) : diff >= 0.1 ? diff.toFixed(2) : diff.toPrecision(2)}`;
  }
  const sign = diff > 0 ? "+" : diff < 0 ? "−" : "±";
  const a = Math.abs(diff);
  switch (key) {
    case "accuracy":
      return `${sign}${(100 * a).toFixed(3)} pp`;
    case "auc":
      return `${sign}${a.toFixed(4)}`;
    default:
      return `${sign}${a.toFixed(3)}`;
  }
}

/** A spread of a metric across runs: the value, then `± sd (n=3)` when repeated. */
export function formatSpread(
  key: MetricKey,
  s: { mean: number; sd: number; n: number } | undefined,
): string {
  if (!s) return "–";
  const v = formatMetric(key, s.mean);
  if (s.n < 2) return v;
  const sd = key === "accuracy"
    ? `${(100 * s.sd).toFixed(3)} pp`
    : key === "modelBytes" || key === "commBytes"
    ? formatBytes(s.sd)
    : key === "msPerIteration"
    ? formatMs(s.sd)
    : s.sd.toFixed(4);
  return `${v} ± ${sd} (n=${s.n})`;
}
