/**
 * `deno task report RESULTS_DIR [options]`: rebuilds the HTML report (and its CSV tables) of a
 * results folder from its JSON results.
 *
 * @module
 */
import { loadResults } from "../reports/load.ts";
import { writeReport } from "../reports/report.ts";
import { defineCli, FLAGS, parseCli, runMain, UsageError } from "./args.ts";

const CLI = defineCli({
  usage: "deno task report RESULTS_DIR [options]",
  description: `Reads every JSON result under RESULTS_DIR (sub-folders included) and writes one
self-contained HTML report (Chart.js inlined; no network needed to view it) and the
tables as CSV files in csv/ beside it.`,
  options: {
    out: { ...FLAGS.out, help: "HTML file to write", default: "RESULTS_DIR/report.html" },
    title: { type: "string", arg: "TEXT", help: "page title", default: '"dqrm-bench report"' },
    "no-csv": { type: "boolean", help: "do not write the CSV files" },
    check: {
      type: "boolean",
      help: "open the report in headless Chromium (/usr/bin/chromium), fail on a console " +
        "error or a blank chart, and save a screenshot beside it",
    },
  },
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    throw new UsageError(`expected one results folder but found ${positionals.length}`);
  }
  const dir = positionals[0].replace(/\/+$/, "") || "/";
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch {
    throw new UsageError(`results folder '${dir}' does not exist`);
  }
  if (!info.isDirectory) throw new UsageError(`'${dir}' is not a folder`);
  const found = await loadResults(dir);
  if (found.runs.length === 0) {
    for (const s of found.skipped) console.error(`report: skipped ${s.path}: ${s.reason}`);
    throw new Error(
      `no run results in '${dir}'${
        found.skipped.length ? ` (${found.skipped.length} JSON file(s) skipped, listed above)` : ""
      }; expected the RUN.json files deno task bench writes`,
    );
  }
  const written = await writeReport(dir, {
    ...(values.out ? { out: values.out } : {}),
    ...(values.title ? { title: values.title } : {}),
    noCsv: values["no-csv"] ?? false,
  });
  const m = written.model;
  for (const s of m.skipped) console.error(`report: skipped ${s.path}: ${s.reason}`);
  console.error(
    `report: ${m.runs.length} runs in ${m.variants.length} variants; ${m.charts.charts.length} charts; paper rows matched: ${
      m.tables.map((t) => `T${t.table.id} ${t.matched}/${t.table.rows.length}`).join(", ")
    }`,
  );
  if (values.check) {
    const { checkReportInBrowser } = await import("../reports/browser.ts");
    const png = written.html.replace(/\.html?$/, "") + ".png";
    const check = await checkReportInBrowser(written.html, { screenshot: png });
    if (check.skipped) {
      console.error(`report: browser check skipped: ${check.skipped}`);
    } else {
      console.error(
        `report: browser check: ${check.canvases} canvases, ${check.blank.length} blank, ${check.errors.length} console errors; screenshot ${png}`,
      );
      for (const e of check.errors) console.error(`report: console error: ${e}`);
      if (check.errors.length || check.blank.length) return 1;
    }
  }
  for (const f of written.csv) console.error(`report: wrote ${f}`);
  console.log(`Report: ${written.html}`);
  return 0;
}

if (import.meta.main) await runMain("report", main);
