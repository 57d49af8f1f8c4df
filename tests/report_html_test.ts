import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { buildCharts } from "../reports/charts.ts";
import { compareTable } from "../reports/compare.ts";
import { runFeatures } from "../reports/features.ts";
import { groupVariants, runMetric } from "../reports/group.ts";
import { loadResults, parseReportRun } from "../reports/load.ts";
import { TABLE_2, TABLE_3A, TABLE_4A, TABLE_5A } from "../reports/paper.ts";
import { buildReport, reportCsv, writeReport } from "../reports/report.ts";
import { fakeRun, fakeSuite, writeFakeResults } from "./report_fixtures.ts";

const REPORT = new URL("../cli/report.ts", import.meta.url).pathname;

async function fixtureDir(extras = false): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dqrm-report-" });
  await writeFakeResults(dir, fakeSuite({ extras }));
  return dir;
}

Deno.test("loadResults() reads sub-folders, passes over non-results and lists invalid results", async () => {
  const dir = await fixtureDir();
  await Deno.writeTextFile(`${dir}/broken.json`, "{ not json");
  await Deno.writeTextFile(
    `${dir}/bad.json`,
    JSON.stringify({ schemaVersion: 1, config: { name: "x" }, status: "ok" }),
  );
  const { runs, skipped } = await loadResults(dir);
  assert.equal(runs.length, 9);
  assert.ok(runs.some((r) => r.path === "seed2/fp32.json"));
  assert.deepEqual(skipped.map((s) => s.path).sort(), ["bad.json", "broken.json"]);
  assert.match(skipped.find((s) => s.path === "bad.json")!.reason, /config\.method/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseReportRun() accepts a result missing every optional field", () => {
  const run = parseReportRun({
    schemaVersion: 2,
    config: { name: "lsq-int4", method: "lsq", arch: "kaggle" },
    status: "failed",
  });
  assert.equal(run.curve.length, 0);
  assert.equal(runMetric(run, "accuracy"), undefined);
  assert.equal(runMetric(run, "msPerIteration"), undefined);
  assert.ok(runMetric(run, "modelBytes")! > 2e9, "computed from the full Kaggle spec");
});

Deno.test("runFeatures() reads the runner's quantization, postTraining and experiments fields", () => {
  const f = (o: Parameters<typeof fakeRun>[0]) => runFeatures(parseReportRun(fakeRun(o)));
  assert.deepEqual(
    [f({ name: "a" }).embeddingBits, f({ name: "a" }).mlpBits, f({ name: "a" }).workers],
    [32, 32, 1],
  );
  const emb = f({ name: "b", method: "dqrm", embeddingBits: 4, mlpBits: null, scalePeriod: 200 });
  assert.deepEqual([emb.embeddingBits, emb.mlpBits, emb.scalePeriod], [4, 32, 200]);
  const mlp = f({ name: "c", method: "dqrm", embeddingBits: null, mlpBits: 4 });
  assert.deepEqual([mlp.embeddingBits, mlp.mlpBits], [32, 4]);
  const ptq = f({ name: "d", method: "ptq", postTraining: true });
  assert.deepEqual([ptq.embeddingBits, ptq.mlpBits, ptq.scalePeriod], [4, 4, undefined]);
  const dp = f({ name: "e", method: "dqrm", workers: 4, sparse: true, gradBits: 8 });
  assert.deepEqual(
    [dp.workers, dp.sparseEmbeddingGradients, dp.embeddingGradBits, dp.mlpGradBits],
    [4, true, 8, 8],
  );
  assert.deepEqual(f({ name: "g", experiments: ["table2", "table3"] }).experiments, [
    "table2",
    "table3",
  ]);
});

Deno.test("groupVariants() groups repeats across folders and labels variants by run name", async () => {
  const dir = await fixtureDir();
  const variants = groupVariants((await loadResults(dir)).runs);
  const fp32 = variants.find((v) => v.label === "fp32")!;
  assert.equal(fp32.runs.length, 2, "seed 1 and seed 2 are one variant");
  assert.equal(variants[0].method, "fp32", "the paper's method order");
  assert.deepEqual(
    variants.map((v) => v.label),
    [
      "fp32",
      "ptq-int4",
      "hawq-int4",
      "dqrm-emb4",
      "dqrm-emb8",
      "dqrm-int4",
      "dqrm-int4-p1",
      "t9-dqrm-int4",
    ],
  );
  assert.match(variants.find((v) => v.label === "dqrm-int4-p1")!.details, /scalePeriod=1\b/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("compareTable() lays our runs beside Table 2, 3 and 5 rows with differences", async () => {
  const dir = await fixtureDir();
  const variants = groupVariants((await loadResults(dir)).runs);
  const t2 = compareTable(TABLE_2, variants);
  assert.deepEqual(t2.rows.map((r) => r.variant?.label ?? "-"), [
    "fp32",
    "-",
    "dqrm-emb8",
    "dqrm-emb4",
  ]);
  assert.equal(t2.matched, 3);
  const fp32 = t2.rows[0].cells.accuracy;
  assert.equal(fp32.ours!.n, 2, "mean over both seeds");
  // Tables ×0.001 are a subset of the paper's: accuracy is shown, not compared.
  assert.equal(fp32.diff, undefined);
  assert.equal(fp32.diffClass, "none");
  const full = compareTable(
    TABLE_2,
    groupVariants([{
      path: "f.json",
      run: parseReportRun(fakeRun({ name: "fp32", tableScale: 1 })),
    }]),
  ).rows[0].cells.accuracy;
  assert.ok(Math.abs(full.diff! - (full.ours!.mean - 0.78923)) < 1e-12);
  assert.equal(full.diffClass, "worse");
  const int4 = t2.rows[3].cells.accuracy;
  assert.ok(Math.abs(int4.paperVsBaseline! - (0.79092 - 0.78923)) < 1e-12);
  assert.ok(int4.oursVsBaseline !== undefined);
  assert.ok(t2.rows[0].badges.some((b) => b.text === "subset: tables ×0.001"));
  assert.ok(t2.rows[0].conditions.some((c) => /1 epoch \(paper 5\)/.test(c)));

  const t3 = compareTable(TABLE_3A, variants);
  const dqrm = t3.rows.filter((r) => r.row.label === "DQRM (Ours)");
  assert.deepEqual(dqrm.map((r) => r.variant?.label), ["dqrm-int4"], "tagged table3 run wins");
  const ptq = t3.rows.find((r) => r.row.label === "Vanilla PTQ")!;
  assert.ok(Math.abs(ptq.cells.accuracy.ours!.mean - 0.744) < 1e-9, "PTQ reports its final test");
  const size = t3.rows[0].cells.modelBytes;
  assert.ok(size.fullTables! > 2.15e9 && size.fullTables! < 2.17e9, `${size.fullTables}`);
  assert.equal(size.diffClass, "same");
  assert.equal(t3.rows.find((r) => r.row.label === "LSQ")!.variant, undefined);

  const t5 = compareTable(TABLE_5A, variants);
  assert.deepEqual(t5.rows.map((r) => r.variant?.label ?? "-"), ["dqrm-int4-p1", "dqrm-int4", "-"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("compareTable() matches Table 4 rows by workers and gradient compression", async () => {
  const dir = await fixtureDir(true);
  const variants = groupVariants((await loadResults(dir)).runs);
  const t4 = compareTable(TABLE_4A, variants);
  assert.deepEqual(t4.rows.map((r) => r.variant?.label), [
    "dp4-none",
    "dp4-sparse",
    "dp4-sparse-int8",
  ]);
  assert.ok(t4.rows[1].cells.commBytes.ours!.mean < 3e6);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("buildCharts() draws what the results carry and says which field feeds the rest", async () => {
  const plain = await fixtureDir(false);
  const rich = await fixtureDir(true);
  const a = buildCharts(groupVariants((await loadResults(plain)).runs));
  assert.deepEqual([...new Set(a.charts.map((c) => c.figure))].sort(), ["fig1c", "fig3", "memory"]);
  assert.match(a.missing.fig6, /weightHistograms/);
  assert.match(a.missing.comm, /communication/);
  assert.match(a.missing.trace, /timingSamples/);
  const b = buildCharts(groupVariants((await loadResults(rich)).runs));
  const figures = new Set(b.charts.map((c) => c.figure));
  for (const f of ["fig3", "fig1c", "fig6", "comm", "memory", "trace"]) {
    assert.ok(figures.has(f), f);
  }
  assert.deepEqual(b.missing, {});
  const acc = b.charts.find((c) => c.id === "fig3-accuracy-kaggle")!;
  assert.deepEqual(acc.epochLines, [100, 200, 300], "the 4-epoch run's boundaries");
  for (const c of b.charts) assert.equal(c.config.options?.animation, false);
  await Deno.remove(plain, { recursive: true });
  await Deno.remove(rich, { recursive: true });
});

Deno.test("reportCsv() exports every paper table, the runs and the timings", async () => {
  const dir = await fixtureDir();
  const csv = reportCsv(await buildReport(dir));
  assert.ok(csv["table-2.csv"] && csv["table-9.csv"] && csv["runs.csv"] && csv["timing.csv"]);
  const t2 = parse(csv["table-2.csv"], { columns: true }) as Record<string, string>[];
  assert.equal(t2.length, 4);
  assert.equal(t2[0].row, "FP32");
  assert.equal(Number(t2[0].accuracy_paper), 0.78923);
  assert.equal(t2[0].accuracy_ours_n, "2");
  assert.equal(t2[1].variant, "", "INT16 not run");
  const t3 = parse(csv["table-3a.csv"], { columns: true }) as Record<string, string>[];
  assert.equal(t3.find((r) => r.row === "PACT")!.trainLoss_paper_text, "Cannot converge");
  const timing = parse(csv["timing.csv"], { columns: true }) as Record<string, string>[];
  const hawq = timing.find((r) => r.run === "hawq-int4" && r.phase === "total")!;
  assert.ok(Number(hawq.ratio_to_reference) > 1.5);
  assert.ok(Number(hawq.ci_lo_ms) < Number(hawq.median_ms));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeReport() writes one self-contained HTML file with Chart.js inlined, and CSV files", async () => {
  const dir = await fixtureDir(true);
  const written = await writeReport(dir, { generatedAt: "test" });
  const html = await Deno.readTextFile(written.html);
  assert.match(html, /Chart\.js v4\.5\.1/, "Chart.js inlined");
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|https?:\/\/[^"\s]*\.(js|css)\b/);
  for (
    const id of ["table-2", "table-3a", "table-3b", "table-4a", "table-5a", "table-6", "table-9"]
  ) {
    assert.match(html, new RegExp(`id="${id}"`), id);
  }
  assert.match(html, /id="runs-table"/);
  assert.match(html, /id="timing-table"/);
  assert.match(html, /Test CPU \(2 cores\)/, "environment block");
  assert.match(html, /could not finish/);
  assert.match(html, /data:text\/csv/);
  assert.equal(written.csv.length, 11, "9 paper tables, runs and timing");
  for (const f of written.csv) assert.ok((await Deno.stat(f)).size > 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the report shows what a real-data run's input held: lines, samples, bad lines by kind", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dqrm-report-" });
  const run = fakeRun({ name: "fp32" });
  run.inputLines = {
    lines: 10_000,
    samples: 9_990,
    subsampled: 0,
    bad: 10,
    badLines: { fields: { count: 10, first: [{ file: "train.txt", line: 17 }] } },
  };
  await writeFakeResults(dir, [run]);
  const model = await buildReport(dir);
  assert.equal(model.inputs.length, 1);
  assert.equal(model.inputs[0].bad, 10);
  const html = await Deno.readTextFile((await writeReport(dir, { generatedAt: "test" })).html);
  assert.match(html, /Bad lines skipped<\/dt><dd>10: fields: 10 \(first at train\.txt:17\)/);
  assert.match(html, /Samples kept<\/dt><dd>9,990/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report CLI rebuilds the report, names a missing folder and exits 2 on a usage error", async () => {
  const dir = await fixtureDir();
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", REPORT, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
  const ok = await run([dir, "--no-csv"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`Report: ${dir}/report.html`));
  assert.match(ok.stderr, /9 runs in 8 variants/);
  const missing = await run([`${dir}/nope`]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /results folder .* does not exist/);
  const none = await run([]);
  assert.equal(none.code, 2);
  await Deno.remove(dir, { recursive: true });
});
