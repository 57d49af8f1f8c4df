import assert from "node:assert/strict";
import { machineOf } from "../record/provenance.ts";
import { buildHistory, type FolderRuns, type PublishedFolder } from "../reports/history.ts";
import { parseReportRun } from "../reports/load.ts";
import { checkSiteLinks, publishSite } from "../reports/site.ts";
import { findingFigure, historyChart } from "../reports/site_html.ts";
import { detectSteps } from "../reports/steps.ts";
import { fakeRun } from "./report_fixtures.ts";

const CPU = { os: "linux", arch: "x86_64", cpu: "Test CPU (2 cores)", cores: 2, memoryBytes: 25e9 };
const HERE = machineOf(CPU);
const OTHER = machineOf({ ...CPU, cpu: "Other CPU (16 cores)", cores: 16 });
const COMMITS = ["a".repeat(40), "b".repeat(40), "c".repeat(40)];

/** One run as measured at `commit` on `machine`, `minute` minutes into the day. */
function run(
  name: string,
  commit: string,
  minute: number,
  opts: Parameters<typeof fakeRun>[0] = { name },
) {
  const method = name === "fp32" ? "fp32" : "dqrm";
  const start = new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
  return {
    ...fakeRun({ method, raw: true, ...opts, name }),
    schemaVersion: 2,
    startedAt: start,
    provenance: { commit, dirty: false, machine: HERE },
  };
}

function folder(id: string, date: string): PublishedFolder {
  return {
    id,
    source: id,
    publishedAt: date,
    suites: ["kaggle"],
    engines: ["cpu"],
    devices: ["Test CPU"],
    machines: [HERE],
    commits: [],
    date,
    seeds: [1],
    runs: [],
    notOk: 0,
  };
}

Deno.test("detectSteps finds lasting level changes and single outliers, not noise", () => {
  assert.deepEqual(detectSteps([]), []);
  assert.deepEqual(detectSteps([5]), []);
  assert.deepEqual(detectSteps([10, 10.3, 9.8, 10.1, 9.9, 10.2]), []);
  const up = detectSteps([10, 10.3, 9.8, 30, 29.5, 30.4]);
  assert.deepEqual(up.map((s) => s.at), [3]);
  assert.ok(Math.abs(up[0].ratio - 3) < 0.1);
  // A planted slow commit between two good ones: up, then back down.
  assert.deepEqual(detectSteps([10, 60, 10]).map((s) => [s.at, s.after > s.before]), [
    [1, true],
    [2, false],
  ]);
  // A point's own noise raises the bar: a 20% change within noise of 3 is not a step.
  assert.equal(detectSteps([10, 12], { noise: 3 }).length, 0);
  assert.equal(detectSteps([10, 12], { noise: 0.1 }).length, 1);
  assert.throws(() => detectSteps([1, NaN]), /Expected finite values but found 1 others/);
});

Deno.test("buildHistory: one series per suite × run × machine, repeats merged, the gate run between consecutive points", () => {
  const at = (i: number, minute: number, opts: Parameters<typeof fakeRun>[0]) => ({
    folder: folder(`f${minute}`, new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString()),
    runs: [
      parseReportRun(run("fp32", COMMITS[i], minute, { name: "fp32" })),
      parseReportRun(run("dqrm-int4", COMMITS[i], minute, opts)),
    ],
  });
  const folders: FolderRuns[] = [
    at(0, 1, { name: "dqrm-int4", seed: 1 }),
    at(0, 2, { name: "dqrm-int4", seed: 1 }), // a repeat at commit a
    at(1, 3, { name: "dqrm-int4", ms: { forward: 18 } }), // planted: forward ×6
    at(2, 4, { name: "dqrm-int4" }),
  ];
  // The same run on another machine, slower everywhere: a series of its own.
  const other = parseReportRun({
    ...run("dqrm-int4", COMMITS[0], 5, { name: "dqrm-int4", ms: { forward: 30 } }),
    provenance: { commit: COMMITS[0], dirty: false, machine: OTHER },
  });
  folders.push({ folder: folder("g5", "2026-01-01T00:05:00.000Z"), runs: [other] });
  const series = buildHistory(folders);
  assert.deepEqual(
    series.map((s) => s.id),
    [
      `kaggle--dqrm-int4--${HERE.fingerprint}`,
      `kaggle--dqrm-int4--${OTHER.fingerprint}`,
      `kaggle--fp32--${HERE.fingerprint}`,
    ].sort(),
  );
  const dqrm = series.find((s) => s.id === `kaggle--dqrm-int4--${HERE.fingerprint}`)!;
  assert.deepEqual(dqrm.points.map((p) => p.commit), COMMITS);
  assert.deepEqual(dqrm.points[0].folders, ["f1", "f2"]);
  assert.equal(dqrm.points[0].figures["ms.total"].n, 2);
  assert.ok(dqrm.points[0].figures["ms.total"].lo < dqrm.points[0].figures["ms.total"].value);
  // The gate fails at the planted commit (forward), and passes after it.
  assert.deepEqual(dqrm.points[1].regressions.map((f) => [f.kind, f.what, f.folder]), [
    ["timing", "timing.forward", "f3"],
  ]);
  assert.deepEqual(dqrm.points[2].regressions, []);
  // Steps: forward up at the planted commit, down after it; AUC flat.
  const forward = dqrm.points.map((p) => p.steps.filter((s) => s.figure === "ms.forward"));
  assert.deepEqual(forward.map((s) => s.map((x) => x.worse)), [[], [true], [false]]);
  assert.ok(dqrm.points.every((p) => !p.steps.some((s) => s.figure === "auc")));
  assert.ok(dqrm.figures.includes("qatOverhead"));
  assert.ok(Math.abs(dqrm.points[0].figures.qatOverhead.value - 1) < 0.1);
  // Never across machines: the other machine's slower run is its own first point.
  const remote = series.find((s) => s.machine.fingerprint === OTHER.fingerprint)!;
  assert.equal(remote.points.length, 1);
  assert.deepEqual(remote.points[0].regressions, []);
  // The chart of forward marks the gate failure and the steps; AUC's marks nothing.
  const datasets = (
    key: string,
  ) => (historyChart(dqrm, key).data.datasets as { label: string; data: (number | null)[] }[]);
  const gate = datasets("ms.forward").find((d) => d.label === "gate fails")!;
  assert.deepEqual(gate.data.map((v) => v !== null), [false, true, false]);
  assert.ok(datasets("ms.forward").some((d) => d.label === "step change"));
  assert.deepEqual(datasets("auc").map((d) => d.label), ["final test AUC"]);
  assert.equal(findingFigure({ what: "curve[2]@150.auc" }), "auc");
  assert.equal(findingFigure({ what: "config" }), undefined);
});

async function writeFolder(dir: string, runs: Record<string, unknown>[]): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  for (const r of runs) {
    await Deno.writeTextFile(
      `${dir}/${(r.config as { name: string }).name}.json`,
      JSON.stringify(r),
    );
  }
  await Deno.writeTextFile(`${dir}/suite.json`, JSON.stringify({ name: "kaggle", runs: [] }));
  return dir;
}

Deno.test("publishSite: index, history pages, feed; publishing again adds one folder without rebuilding the rest", async () => {
  const tmp = await Deno.makeTempDir();
  const site = `${tmp}/site`;
  try {
    const a = await writeFolder(`${tmp}/a`, [
      run("fp32", COMMITS[0], 1),
      run("dqrm-int4", COMMITS[0], 1),
    ]);
    const b = await writeFolder(`${tmp}/b`, [
      run("fp32", COMMITS[1], 2, { name: "fp32", ms: { forward: 18 } }),
      run("dqrm-int4", COMMITS[1], 2, { name: "dqrm-int4", ms: { forward: 18 } }),
    ]);
    // A version 1 result (no provenance): published as commit unknown.
    const legacy = fakeRun({ name: "fp32" });
    const old = await writeFolder(`${tmp}/old`, [legacy]);
    const first = await publishSite(site, [a, b, old], { now: "2026-01-02T00:00:00.000Z" });
    assert.equal(first.added.length, 3);
    assert.equal(first.series, 2, "the legacy run shares the machine, so the fp32 series");
    const feed = JSON.parse(await Deno.readTextFile(`${site}/history.json`));
    assert.equal(feed.schemaVersion, 1);
    assert.equal(feed.folders.length, 3);
    const fp32 = feed.series.find((s: { run: string }) => s.run === "fp32");
    assert.deepEqual(fp32.points.map((p: { commit: string | null }) => p.commit), [
      null,
      ...COMMITS.slice(0, 2),
    ]);
    assert.equal(fp32.points[2].regressions[0].what, "timing.forward");
    assert.equal(fp32.page, `history/${fp32.id}.html`);
    const index = await Deno.readTextFile(`${site}/index.html`);
    for (const f of feed.folders) assert.ok(index.includes(`runs/${f.id}/report.html`), f.id);
    assert.match(index, /gate fails at 1/);
    assert.match(index, /unknown/);
    const page = await Deno.readTextFile(`${site}/${fp32.page}`);
    assert.match(page, /timing\.forward median/);
    assert.match(page, /new Chart/, "Chart.js inlined");
    assert.doesNotMatch(page, /<script src=/);

    // Incremental: the first folders' sources are gone; the site keeps their copies.
    const report = `${site}/runs/${first.added[0]}/report.html`;
    const before = (await Deno.stat(report)).mtime!.getTime();
    await Deno.remove(a, { recursive: true });
    const c = await writeFolder(`${tmp}/c`, [
      run("fp32", COMMITS[2], 3),
      run("dqrm-int4", COMMITS[2], 3),
    ]);
    const again = await publishSite(site, [b, c], { now: "2026-01-03T00:00:00.000Z" });
    assert.equal(again.added.length, 1);
    assert.deepEqual(again.unchanged, [first.added[1]]);
    assert.equal(again.folders.length, 4);
    assert.equal((await Deno.stat(report)).mtime!.getTime(), before, "old report not rebuilt");
    assert.ok(!again.written.some((w) => w.includes(first.added[0])));
    const feed2 = JSON.parse(await Deno.readTextFile(`${site}/history.json`));
    const fp32b = feed2.series.find((s: { run: string }) => s.run === "fp32");
    assert.equal(fp32b.points.length, 4);
    // A run that did not finish is a point that charts nothing and says why.
    const partial = await writeFolder(`${tmp}/partial`, [{
      ...run("fp32", COMMITS[2], 4),
      status: "could-not-finish",
      error: "over the budget of 1 s",
    }]);
    await publishSite(site, [partial], { now: "2026-01-03T00:00:00.000Z" });
    const feed3 = JSON.parse(await Deno.readTextFile(`${site}/history.json`));
    const last = feed3.series.find((s: { run: string }) => s.run === "fp32").points.at(-1);
    assert.deepEqual(last.repeats.map((r: { status: string }) => r.status), [
      "ok",
      "could-not-finish",
    ]);
    assert.match(
      await Deno.readTextFile(`${site}/${fp32.page}`),
      /could-not-finish<\/span> over the budget of 1 s \(not charted\)/,
    );
    // Nothing new: nothing written.
    const none = await publishSite(site, [c], { now: "2026-01-03T00:00:00.000Z" });
    assert.deepEqual([none.added, none.written], [[], []]);

    const links = await checkSiteLinks(site);
    assert.deepEqual(links.broken, []);
    assert.equal(links.pages.length, 1 + 2 + 5, "index, two histories, five reports");
    await Deno.writeTextFile(
      `${site}/history/extra.html`,
      `<a href="../runs/nope/report.html">x</a><a href="../index.html#nowhere">y</a><a href="https://x.org">z</a>`,
    );
    const bad = await checkSiteLinks(site);
    assert.deepEqual(bad.broken.map((b) => b.reason), [
      "no file runs/nope/report.html",
      'no id "nowhere" in index.html',
      "not a file of the site (the site must work offline)",
    ]);
    await assert.rejects(
      publishSite(site, [`${tmp}/site/history`]),
      /Expected run results \(RUN\.json\) in/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
