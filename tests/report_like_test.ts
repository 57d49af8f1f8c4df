/**
 * The report compares like with like: partial rows, Fig. 6's choice of runs, hardware and
 * subset badges, readable captions and titles, and the two kinds of time.
 */
import assert from "node:assert/strict";
import { buildCharts, fig6Variants } from "../reports/charts.ts";
import { compareTable } from "../reports/compare.ts";
import { groupVariants, type Variant } from "../reports/group.ts";
import { loadResults } from "../reports/load.ts";
import { TABLE_3A, TABLE_3B } from "../reports/paper.ts";
import { buildReport } from "../reports/report.ts";
import { renderReportHtml } from "../reports/report_html.ts";
import { fakeRun, writeFakeResults } from "./report_fixtures.ts";
import { kaggleSpec } from "../engine/spec.ts";

async function variantsOf(runs: Record<string, unknown>[]): Promise<Variant[]> {
  const dir = await Deno.makeTempDir({ prefix: "dqrm-like-" });
  try {
    await writeFakeResults(dir, runs);
    return groupVariants((await loadResults(dir)).runs);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function html(runs: Record<string, unknown>[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dqrm-like-" });
  try {
    await writeFakeResults(dir, runs);
    return renderReportHtml(await buildReport(dir), { chartJs: "" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A run stopped by its budget after `k` of 200 iterations, then evaluated (as the runner does). */
function partialRun(name: string, method: string, k: number, extra = {}) {
  const run = fakeRun({ name, method, scalePeriod: 1, tableScale: 1, ...extra });
  const curve = (run.curve as { iteration: number }[]).filter((p) => p.iteration <= k);
  return {
    ...run,
    status: "could-not-finish",
    error:
      `projected 4070 s of training at 798.0 ms/it, over the budget of 300 s; stopped after ${k} of 200 iterations`,
    partial: { iterations: k, of: 200 },
    iterations: k,
    curve,
  };
}

Deno.test("a partly trained run fills its row with its figures and a partial (k of n it) badge", async () => {
  const runs = [
    fakeRun({ name: "fp32", tableScale: 1 }),
    partialRun("hawq-int4", "hawq", 100, { histograms: true }),
  ];
  const t3 = compareTable(TABLE_3A, await variantsOf(runs));
  const hawq = t3.rows.find((r) => r.variant?.label === "hawq-int4")!;
  assert.ok(hawq.cells.accuracy.ours, "accuracy of the partial run shown");
  assert.equal(hawq.cells.accuracy.diffClass, "none", "a partly trained model is not compared");
  assert.ok(hawq.badges.some((b) => b.kind === "partial" && b.text === "partial (100 of 200 it)"));
  const page = await html(runs);
  assert.match(page, /<span class="badge partial"[^>]*>partial \(100 of 200 it\)<\/span>/);
  assert.doesNotMatch(page, /<td class="ours">could not finish<\/td>/);
});

Deno.test("Fig. 6 always shows DQRM, and prefers finished runs", async () => {
  const q = (name: string, method: string, status = "ok") => {
    const o = { histograms: true, ...(name.endsWith("emb4") ? { mlpBits: null } : {}) };
    return status === "ok"
      ? fakeRun({ name, method, tableScale: 1, scalePeriod: 1, ...o })
      : partialRun(name, method, 50, o);
  };
  const variants = await variantsOf([
    fakeRun({ name: "fp32", tableScale: 1, histograms: true }),
    q("ptq-int4", "ptq"),
    q("pact-emb4", "pact", "partial"),
    q("pact-int4", "pact", "partial"),
    q("lsq-emb4", "lsq"),
    q("lsq-int4", "lsq"),
    q("hawq-emb4", "hawq", "partial"),
    q("hawq-int4", "hawq", "partial"),
    q("dqrm-emb4", "dqrm"),
    q("dqrm-int4", "dqrm"),
  ]);
  const shown = new Set(
    buildCharts(variants).charts.filter((c) => c.figure === "fig6").map((c) =>
      c.title.split(", ").at(-2)
    ),
  );
  assert.ok(shown.has("dqrm-int4") && shown.has("dqrm-emb4"), [...shown].join(" "));
  const picked = fig6Variants(variants.filter((v) => v.label !== "fp32")).map((v) => v.label);
  assert.deepEqual(picked, [
    "ptq-int4",
    "pact-emb4",
    "lsq-emb4",
    "lsq-int4",
    "dqrm-emb4",
    "dqrm-int4",
  ]);
});

Deno.test("a CPU time beside the paper's GPU time gets a hardware badge and no colour", async () => {
  const runs = [
    fakeRun({ name: "fp32", tableScale: 1, ms: { forward: 300, backward: 500 } }),
    fakeRun({ name: "dqrm-int4", method: "dqrm", tableScale: 1 }),
  ];
  const variants = await variantsOf(runs);
  const t3a = compareTable(TABLE_3A, variants); // one A5000 GPU
  for (const r of t3a.rows.filter((r) => r.variant)) {
    const ms = r.cells.msPerIteration;
    assert.ok(ms.ours, "our time shown");
    assert.equal(ms.diffClass, "none", r.row.label);
    assert.equal(ms.diff, undefined, r.row.label);
    assert.ok(r.badges.some((b) => b.kind === "hardware" && b.text === "CPU, paper GPU"));
    assert.notEqual(r.cells.accuracy.diffClass, "none", "accuracy is still compared");
  }
  // The paper's Table 3(b) ran on CPUs: a CPU run is compared there.
  const t3b = compareTable(TABLE_3B, variants.map((v) => ({ ...v, arch: "terabyte" })));
  assert.ok(t3b.rows.every((r) => !r.badges.some((b) => b.kind === "hardware")));
  const page = await html(runs);
  assert.match(page, /<span class="badge hardware" title="[^"]*A5000[^"]*">CPU, paper GPU<\/span>/);
});

Deno.test("a real-data subset gets a subset badge and its model size is compared at full tables", async () => {
  const spec = kaggleSpec(1);
  const small = { ...spec, tableRows: spec.tableRows.map((n) => Math.min(n, 500)) };
  const real = (name: string, method: string) => {
    const run = fakeRun({ name, method, tableScale: 1 });
    const config = run.config as Record<string, unknown>;
    return {
      ...run,
      spec: small,
      config: {
        ...config,
        trainSamples: 8_500,
        data: { kind: "criteo", source: "train10k.txt", cache: "/c", options: {} },
      },
      memory: { ...(run.memory as object), modelFileBytes: 4_700_000 },
    };
  };
  const t3 = compareTable(
    TABLE_3A,
    await variantsOf([real("fp32", "fp32"), real("dqrm-int4", "dqrm")]),
  );
  const fp32 = t3.rows[0];
  const badge = fp32.badges.find((b) => b.kind === "subset")!;
  assert.match(badge.text, /^subset: real data: [\d,]+ table rows of the paper's 33,762,577/);
  assert.match(badge.text, /8,500 training samples of the paper's 39,291,958/);
  const size = fp32.cells.modelBytes;
  assert.ok(size.fullTables! > 2.15e9 && size.fullTables! < 2.17e9, `${size.fullTables}`);
  assert.equal(size.diffClass, "same", "compared at the paper's full tables, not ×0.0022");
  assert.equal(fp32.cells.accuracy.diffClass, "none");
  // Scaled-down tables are a subset too.
  const scaled = compareTable(TABLE_3A, await variantsOf([fakeRun({ name: "fp32" })]));
  assert.ok(scaled.rows[0].badges.some((b) => b.text === "subset: tables ×0.001"));
});

Deno.test("captions and titles say what they mean: the evaluation interval, the embedding table", async () => {
  const full = (run: Record<string, unknown>) => ({ ...run, spec: kaggleSpec(1) });
  const variants = await variantsOf([
    full(fakeRun({ name: "fp32", tableScale: 1, evalEvery: 40, histograms: true })),
    full(
      fakeRun({
        name: "dqrm-int4",
        method: "dqrm",
        tableScale: 1,
        evalEvery: 40,
        histograms: true,
      }),
    ),
  ]);
  const charts = buildCharts(variants).charts;
  const acc = charts.find((c) => c.id.startsWith("fig3-accuracy"))!;
  assert.match(acc.caption!, /evaluated every 40 iterations and at the end of each epoch/);
  assert.doesNotMatch(acc.caption!, /evalEvery/);
  const fig6 = charts.filter((c) => c.figure === "fig6").map((c) => c.title);
  assert.ok(
    fig6.includes("embedding table #6 (12,517 rows), dqrm-int4, iteration 0 (epoch 0)"),
    fig6.join("\n"),
  );
  assert.ok(fig6.every((t) => !/@ it|^table 6/.test(t)));
});

Deno.test("the report says which time is phase-summed and which is wall clock", async () => {
  const page = await html([fakeRun({ name: "fp32" })]);
  assert.match(page, /ms\/it median \[95% CI\] \(phase sum\)/);
  assert.match(page, /samples\/s \(wall clock\)/);
  assert.match(page, /wall [\d.]+ ms\/it<\/small>/);
});
