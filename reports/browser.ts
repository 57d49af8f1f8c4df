/**
 * Checks a report in a real browser: headless Chromium (Debian's `chromium`, driven by
 * playwright-core) opens the HTML file with every network request refused, collects console
 * errors and page errors, checks that every chart canvas has drawn pixels, and saves a
 * full-page screenshot.
 *
 * @module
 */
import { chromium } from "playwright-core";

/** Where Debian installs Chromium (`apt-get install -y chromium`). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Flags Chromium is started with. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
] as const;

/** Options of {@linkcode checkReportInBrowser}. */
export interface BrowserCheckOptions {
  /** Save a full-page PNG screenshot here. */
  screenshot?: string;
  /** Chromium executable (default {@linkcode CHROMIUM_PATH}). */
  executablePath?: string;
  /** Page load timeout in ms (default 60000). */
  timeoutMs?: number;
}

/** What the browser saw. */
export interface BrowserCheck {
  /** Why the check did not run (Chromium missing); undefined when it ran. */
  skipped?: string;
  /** Console errors and uncaught page errors. */
  errors: string[];
  /** Requests to anything but the report file itself (refused). */
  requests: string[];
  /** Chart canvases found. */
  canvases: number;
  /** Ids of canvases with no drawn pixel. */
  blank: string[];
  /** Charts the page says it drew. */
  drawn: number;
  /** Path of the screenshot, when saved. */
  screenshot?: string;
}

/** Runs in the page: counts canvases and lists those with fewer than 50 painted pixels. */
const INSPECT = `(() => {
  const blank = [];
  const canvases = Array.from(document.querySelectorAll("canvas"));
  for (const c of canvases) {
    const ctx = c.getContext("2d");
    let painted = 0;
    if (ctx && c.width > 0 && c.height > 0) {
      const data = ctx.getImageData(0, 0, c.width, c.height).data;
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
    }
    if (painted < 50) blank.push(c.id);
  }
  return { canvases: canvases.length, blank, drawn: Number(document.body.getAttribute("data-charts-drawn")) };
})()`;

/** Whether Chromium is installed at `path`. */
export async function chromiumAvailable(path = CHROMIUM_PATH): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * Opens `htmlPath` in headless Chromium and reports console errors, network requests, blank
 * canvases and the number of charts drawn. Returns `skipped` with the reason when Chromium is
 * not installed.
 */
export async function checkReportInBrowser(
  htmlPath: string,
  options: BrowserCheckOptions = {},
): Promise<BrowserCheck> {
  const executablePath = options.executablePath ?? CHROMIUM_PATH;
  if (!(await chromiumAvailable(executablePath))) {
    return {
      skipped:
        `Chromium not found at ${executablePath} (install it with: apt-get install -y chromium)`,
      errors: [],
      requests: [],
      canvases: 0,
      blank: [],
      drawn: 0,
    };
  }
  const userDataDir = await Deno.makeTempDir({ prefix: "dqrm-chromium-" });
  const url = new URL(`file://${await Deno.realPath(htmlPath)}`).href;
  // A fresh profile per check; playwright passes it to Chromium as --user-data-dir.
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [...CHROMIUM_ARGS],
    viewport: { width: 1400, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
    await page.route("**/*", (route) => {
      const u = route.request().url();
      if (u === url || u.startsWith("data:")) return route.continue();
      requests.push(u);
      return route.abort();
    });
    await page.goto(url, { waitUntil: "load", timeout: options.timeoutMs ?? 60_000 });
    // Page-side code is passed as text: it runs in the browser, where the DOM exists.
    await page.waitForFunction('document.body.hasAttribute("data-charts-drawn")', undefined, {
      timeout: options.timeoutMs ?? 60_000,
    });
    const result = await page.evaluate(INSPECT) as Pick<
      BrowserCheck,
      "canvases" | "blank" | "drawn"
    >;
    const out: BrowserCheck = { errors, requests, ...result };
    if (options.screenshot) {
      await page.screenshot({ path: options.screenshot, fullPage: true });
      out.screenshot = options.screenshot;
    }
    return out;
  } finally {
    await context.close();
    await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
  }
}

/** What {@linkcode checkSiteInBrowser} saw on each page. */
export interface SiteCheck {
  /** Why the check did not run (Chromium missing). */
  skipped?: string;
  pages: { page: string; check: BrowserCheck }[];
}

/**
 * Opens every page of a published site in headless Chromium (one browser check each, as
 * {@linkcode checkReportInBrowser}); `screenshots` maps a page (relative to the site) to the PNG
 * to save of it.
 */
export async function checkSiteInBrowser(
  site: string,
  pages: readonly string[],
  screenshots: Record<string, string> = {},
): Promise<SiteCheck> {
  if (!(await chromiumAvailable())) {
    return { skipped: `Chromium not found at ${CHROMIUM_PATH}`, pages: [] };
  }
  const out: SiteCheck = { pages: [] };
  for (const page of pages) {
    const shot = screenshots[page];
    const check = await checkReportInBrowser(`${site}/${page}`, shot ? { screenshot: shot } : {});
    out.pages.push({ page, check });
  }
  return out;
}
