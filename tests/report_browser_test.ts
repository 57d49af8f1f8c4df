import assert from "node:assert/strict";
import { checkReportInBrowser, CHROMIUM_PATH, chromiumAvailable } from "../reports/browser.ts";
import { writeReport } from "../reports/report.ts";
import { fakeSuite, writeFakeResults } from "./report_fixtures.ts";

/** Kept after the test (results/ is ignored by git) so the screenshot can be looked at. */
const DIR = new URL("../results/report-browser-test", import.meta.url).pathname;

const available = await chromiumAvailable();
if (!available) {
  console.warn(
    `SKIP report browser test: Chromium not found at ${CHROMIUM_PATH} (install it with: apt-get install -y chromium)`,
  );
}

Deno.test({
  name: "report in headless Chromium: no console error, no network request, every chart drawn",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await Deno.remove(DIR, { recursive: true }).catch(() => {});
    // Every optional field present (raw timings, histograms, communication) and a run that
    // could not finish, so every kind of chart and cell is drawn.
    await writeFakeResults(DIR, fakeSuite({ extras: true }));
    const written = await writeReport(DIR, { generatedAt: "browser test" });
    const check = await checkReportInBrowser(written.html, { screenshot: `${DIR}/report.png` });
    assert.equal(check.skipped, undefined);
    assert.deepEqual(check.errors, [], "console errors");
    assert.deepEqual(check.requests, [], "network requests");
    assert.equal(check.canvases, written.model.charts.charts.length);
    assert.ok(check.canvases >= 10, `${check.canvases} canvases`);
    assert.equal(check.drawn, check.canvases, "every chart constructed");
    assert.deepEqual(check.blank, [], "blank canvases");
    const png = await Deno.readFile(`${DIR}/report.png`);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
    assert.ok(png.length > 50_000);
    console.log(`screenshot: ${DIR}/report.png`);
  },
});

Deno.test({
  name: "checkReportInBrowser() reports a script error and a blank chart",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const html = `${dir}/bad.html`;
    await Deno.writeTextFile(
      html,
      `<!doctype html><body><canvas id="empty" width="100" height="100"></canvas>
<img src="https://example.invalid/x.png">
<script>document.body.setAttribute("data-charts-drawn", "0"); undefinedFunction();</script></body>`,
    );
    const check = await checkReportInBrowser(html);
    assert.deepEqual(check.blank, ["empty"]);
    assert.ok(check.errors.some((e) => /undefinedFunction/.test(e)), check.errors.join("; "));
    assert.deepEqual(check.requests, ["https://example.invalid/x.png"]);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("checkReportInBrowser() skips with the install line when Chromium is missing", async () => {
  const check = await checkReportInBrowser("/nonexistent.html", {
    executablePath: "/nonexistent/chromium",
  });
  assert.match(check.skipped!, /apt-get install -y chromium/);
});
