/**
 * `deno task publish --site DIR RESULTS…`: adds results folders to a static site with history
 * (index, one trend page per suite × run × machine, `history.json`, each folder's report) and
 * rebuilds its index and history; `--check` opens every page in headless Chromium.
 *
 * @module
 */
import { checkSiteLinks, publishSite } from "../reports/site.ts";
import { defineCli, parseCli, runMain, UsageError } from "./args.ts";

const CLI = defineCli({
  usage: "deno task publish --site DIR RESULTS_DIR… [options]",
  description:
    `Publishes results folders (deno task bench --out, ci/regress_*.sh) into one static site
at DIR, viewable offline (Chart.js inlined): an index of every folder (suite, engine,
adapter or CPU model, commit, date, seeds) linking to its full report; one history page per
suite × run × machine with the key figures over commits (ms/it by phase, samples/s, QAT
overhead, final AUC, accuracy and log loss, peak memory, model size), bands where runs were
repeated, points where the regression gate fails against the previous point of the same
machine marked, and asv-style step changes; history.json, the same data as a feed.
Publishing again adds only the new folders (a folder already published is passed over);
the index, feed and changed history pages are rebuilt from the site's own copies.`,
  options: {
    site: { type: "string", arg: "DIR", help: "the site folder (created when missing); required" },
    title: {
      type: "string",
      arg: "TEXT",
      help: "title of the index",
      default: '"dqrm-bench results"',
    },
    check: {
      type: "boolean",
      help: "check every link of the site, and open every page in headless Chromium " +
        "(/usr/bin/chromium): fail on a console error, a blank chart or a broken link",
    },
    screenshots: {
      type: "string",
      arg: "DIR",
      help: "with --check: save screenshots of the index and of every history page here",
    },
  },
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (!values.site) throw new UsageError("--site DIR is required");
  if (values.screenshots && !values.check) throw new UsageError("--screenshots needs --check");
  for (const dir of positionals) {
    let ok = false;
    try {
      ok = (await Deno.stat(dir)).isDirectory;
    } catch {
      // reported below
    }
    if (!ok) throw new UsageError(`results folder '${dir}' does not exist or is not a folder`);
  }
  const site = values.site.replace(/\/+$/, "") || "/";
  const s = await publishSite(site, positionals.map((p) => p.replace(/\/+$/, "")), {
    ...(values.title ? { title: values.title } : {}),
  });
  for (const x of s.skipped) console.error(`publish: skipped ${x}`);
  console.error(
    `publish: ${s.added.length} folder(s) added, ${s.unchanged.length} already published; ` +
      `${s.folders.length} folders and ${s.series} series in ${site}; wrote ${s.written.length} file(s)`,
  );
  for (const w of s.written) console.error(`publish: wrote ${site}/${w}`);
  if (values.check) {
    const links = await checkSiteLinks(site);
    for (const b of links.broken) {
      console.error(`publish: broken link in ${b.page}: ${b.href} (${b.reason})`);
    }
    const shots: Record<string, string> = {};
    if (values.screenshots) {
      await Deno.mkdir(values.screenshots, { recursive: true });
      for (const p of links.pages) {
        if (p === "index.html" || p.startsWith("history/")) {
          shots[p] = `${values.screenshots}/${
            p.replace(/^history\//, "").replace(/\.html$/, "")
          }.png`;
        }
      }
    }
    const { checkSiteInBrowser } = await import("../reports/browser.ts");
    const seen = await checkSiteInBrowser(site, links.pages, shots);
    let bad = links.broken.length;
    if (seen.skipped) console.error(`publish: browser check skipped: ${seen.skipped}`);
    for (const { page, check } of seen.pages) {
      const faults = [
        ...check.errors.map((e) => `console error: ${e}`),
        ...check.blank.map((b) => `blank chart ${b}`),
        ...check.requests.map((r) => `network request ${r}`),
      ];
      if (check.drawn !== check.canvases) {
        faults.push(`${check.drawn} of ${check.canvases} charts drawn`);
      }
      bad += faults.length;
      console.error(
        `publish: ${page}: ${check.canvases} charts, ${faults.length ? faults.join("; ") : "ok"}${
          check.screenshot ? `; screenshot ${check.screenshot}` : ""
        }`,
      );
    }
    console.error(`publish: checked ${links.pages.length} pages: ${bad} fault(s)`);
    if (bad) return 1;
  }
  console.log(`Site: ${site}/index.html`);
  return 0;
}

if (import.meta.main) await runMain("publish", main);
