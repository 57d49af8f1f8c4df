/**
 * Publishes results folders as one static site with history:
 *
 * ```
 * SITE/index.html                      every folder and series
 * SITE/history.json                    the feed: folders and every series' points
 * SITE/history/SUITE--RUN--MACHINE.html one series' trend charts
 * SITE/runs/ID/report.html (csv/)      a folder's full report
 * SITE/runs/ID/results/*.json          its results, copied: the history is rebuilt from these
 * SITE/runs/ID/folder.json             what the index lists of it (written last)
 * ```
 *
 * Incremental: a folder already in the site (same results, so same id) is passed over, and a
 * new one adds its own `runs/ID/` only; the index, the feed and the history pages are rebuilt
 * from the site's copies, and a page whose text is unchanged is not rewritten.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { writeFileAtomic } from "../record/files.ts";
import { MachineSchema } from "../record/provenance.ts";
import { buildHistory, type FolderRuns, provenanceOf, type PublishedFolder } from "./history.ts";
import { loadResults } from "./load.ts";
import { chartJsSource, writeReport } from "./report.ts";
import { commitText, renderHistoryHtml, renderIndexHtml } from "./site_html.ts";

/** Version of `history.json`. */
export const HISTORY_SCHEMA_VERSION = 1;

const PublishedFolderSchema = z.object({
  id: z.string(),
  source: z.string(),
  publishedAt: z.string(),
  suites: z.array(z.string()),
  engines: z.array(z.string()),
  devices: z.array(z.string()),
  machines: z.array(MachineSchema),
  commits: z.array(z.object({ commit: z.string().nullable(), dirty: z.boolean().nullable() })),
  date: z.string(),
  seeds: z.array(z.number()),
  runs: z.array(z.string()),
  notOk: z.number(),
});

/** Options of {@linkcode publishSite}. */
export interface PublishOptions {
  /** Title of the index (default "dqrm-bench results"). */
  title?: string;
  /** Time stamp of this publication (default now). */
  now?: string;
}

/** What {@linkcode publishSite} did. */
export interface PublishSummary {
  /** Folder ids added now, and the folders passed over as already published. */
  added: string[];
  unchanged: string[];
  /** Every folder in the site now. */
  folders: PublishedFolder[];
  series: number;
  /** Files written, relative to the site (index, feed, changed history pages, new reports). */
  written: string[];
  /** Skipped result files of the folders added, with why. */
  skipped: string[];
}

/** The unique values of a list, in first-seen order. */
function unique<T>(xs: readonly T[], key: (x: T) => string = (x) => JSON.stringify(x)): T[] {
  const seen = new Map<string, T>();
  for (const x of xs) if (!seen.has(key(x))) seen.set(key(x), x);
  return [...seen.values()];
}

/**
 * Adds results folders to the site at `site` (created when missing) and rebuilds its index,
 * history pages and feed. Throws naming a folder that holds no result.
 */
export async function publishSite(
  site: string,
  sources: readonly string[],
  options: PublishOptions = {},
): Promise<PublishSummary> {
  const now = options.now ?? new Date().toISOString();
  await Deno.mkdir(`${site}/runs`, { recursive: true });
  const summary: PublishSummary = {
    added: [],
    unchanged: [],
    folders: [],
    series: 0,
    written: [],
    skipped: [],
  };
  for (const source of sources) {
    const found = await loadResults(source);
    for (const s of found.skipped) summary.skipped.push(`${source}/${s.path}: ${s.reason}`);
    if (found.runs.length === 0) {
      throw new Error(
        `Expected run results (RUN.json) in '${source}' but found none${
          found.skipped.length ? ` (${found.skipped.length} JSON file(s) skipped)` : ""
        }`,
      );
    }
    const texts = await Promise.all(
      found.runs.map(async (r) => [r.path, await Deno.readTextFile(`${source}/${r.path}`)]),
    );
    const runs = found.runs.map((r) => r.run);
    const starts = runs.map((r) => r.startedAt ?? "").filter(Boolean).sort();
    const date = starts[0] ?? now;
    const provs = unique(runs.map(provenanceOf));
    const hash = createHash("sha256").update(JSON.stringify(texts)).digest("hex").slice(0, 10);
    const commit = provs[0].commit ? provs[0].commit.slice(0, 10) : "unknown";
    const id = `${date.replace(/[-:]/g, "").slice(0, 15)}-${commit}-${hash}`;
    const dir = `${site}/runs/${id}`;
    if (await exists(`${dir}/folder.json`)) {
      summary.unchanged.push(id);
      continue;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {}); // a half-published earlier try
    for (const [path, text] of texts) {
      const to = `${dir}/results/${path}`;
      await Deno.mkdir(to.replace(/\/[^/]*$/, ""), { recursive: true });
      await writeFileAtomic(to, text);
    }
    const folder: PublishedFolder = {
      id,
      source,
      publishedAt: now,
      suites: unique(runs.map((r) => r.suite ?? "unknown")),
      engines: unique(runs.map((r) => r.config.engine ?? r.environment?.engine?.name ?? "?")),
      devices: unique(runs.map((r) => r.environment?.engine?.device ?? r.environment?.cpu ?? "?")),
      machines: unique(provs.map((p) => p.machine), (m) => m.fingerprint),
      commits: unique(provs.map((p) => ({ commit: p.commit, dirty: p.dirty }))),
      date,
      seeds: unique(runs.map((r) => r.config.seed).filter((s): s is number => s !== undefined))
        .sort((a, b) => a - b),
      runs: runs.map((r) => r.config.name),
      notOk: runs.filter((r) => r.status !== "ok").length,
    };
    const title = `${folder.suites.join(", ")} at ${
      folder.commits.map((c) => commitText(c.commit, c.dirty)).join(", ")
    } on ${folder.machines.map((m) => m.label).join("; ")}`;
    await writeReport(`${dir}/results`, { out: `${dir}/report.html`, title });
    await writeFileAtomic(`${dir}/folder.json`, JSON.stringify(folder, null, 1) + "\n");
    summary.added.push(id);
    summary.written.push(`runs/${id}/report.html`);
  }
  const published = await readPublished(site);
  summary.folders = published.map((p) => p.folder);
  const series = buildHistory(published);
  summary.series = series.length;
  const chartJs = await chartJsSource();
  const write = async (rel: string, text: string) => {
    const path = `${site}/${rel}`;
    const old = await Deno.readTextFile(path).catch(() => undefined);
    if (old === text) return;
    await writeFileAtomic(path, text);
    summary.written.push(rel);
  };
  await Deno.mkdir(`${site}/history`, { recursive: true });
  for (const s of series) await write(`history/${s.id}.html`, renderHistoryHtml(s, chartJs));
  await write(
    "history.json",
    JSON.stringify(
      {
        schemaVersion: HISTORY_SCHEMA_VERSION,
        generatedAt: now,
        folders: summary.folders,
        series: series.map((s) => ({ ...s, page: `history/${s.id}.html` })),
      },
      null,
      1,
    ) + "\n",
  );
  await write(
    "index.html",
    renderIndexHtml({
      title: options.title ?? "dqrm-bench results",
      folders: summary.folders,
      series,
      generatedAt: now,
    }),
  );
  return summary;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Every folder of a site with its runs, read from the site's own copies. */
export async function readPublished(site: string): Promise<FolderRuns[]> {
  const out: FolderRuns[] = [];
  const ids: string[] = [];
  for await (const e of Deno.readDir(`${site}/runs`)) if (e.isDirectory) ids.push(e.name);
  for (const id of ids.sort()) {
    const path = `${site}/runs/${id}/folder.json`;
    if (!(await exists(path))) continue; // never finished publishing: replaced when published again
    const parsed = PublishedFolderSchema.safeParse(JSON.parse(await Deno.readTextFile(path)));
    if (!parsed.success) {
      throw new TypeError(
        `Invalid ${path}: ${
          parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
        }`,
      );
    }
    const { runs } = await loadResults(`${site}/runs/${id}/results`);
    out.push({ folder: parsed.data, runs: runs.map((r) => r.run) });
  }
  return out;
}

/** A link of a site page that does not resolve. */
export interface BrokenLink {
  page: string;
  href: string;
  reason: string;
}

/**
 * Every HTML page of a site (relative paths) and the links among them that do not resolve: a
 * relative `href` must name a file of the site, and its `#fragment` an `id` in that page.
 * External (`http:`, `https:`) links are broken by definition: the site must work offline.
 */
export async function checkSiteLinks(
  site: string,
): Promise<{ pages: string[]; broken: BrokenLink[] }> {
  const pages: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel ? `${site}/${rel}` : site)) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(p);
      else if (e.name.endsWith(".html")) pages.push(p);
    }
  };
  await walk("");
  pages.sort();
  const ids = new Map<string, Set<string>>();
  const idsOf = async (page: string) => {
    if (!ids.has(page)) {
      const html = await Deno.readTextFile(`${site}/${page}`);
      ids.set(page, new Set([...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1])));
    }
    return ids.get(page)!;
  };
  const broken: BrokenLink[] = [];
  for (const page of pages) {
    const html = await Deno.readTextFile(`${site}/${page}`);
    for (const [, raw] of html.matchAll(/<a\s[^>]*href="([^"]*)"/g)) {
      const href = raw.replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c)));
      if (href.startsWith("data:")) continue; // a download inlined in the page
      if (/^[a-z]+:/i.test(href)) {
        broken.push({ page, href, reason: "not a file of the site (the site must work offline)" });
        continue;
      }
      const [path, fragment] = href.split("#");
      const target = path ? new URL(path, `file:///${page}`).pathname.slice(1) : page;
      if (!(await exists(`${site}/${target}`))) {
        broken.push({ page, href, reason: `no file ${target}` });
        continue;
      }
      if (fragment && target.endsWith(".html") && !(await idsOf(target)).has(fragment)) {
        broken.push({ page, href, reason: `no id "${fragment}" in ${target}` });
      }
    }
  }
  return { pages, broken };
}
