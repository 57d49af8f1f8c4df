import assert from "node:assert/strict";
import { loadResults, parseReportRun, type ReportRun } from "../reports/load.ts";
import {
  compareWithBaseline,
  DEFAULT_TOLERANCE,
  makeBaseline,
  readBaseline,
} from "../reports/regress.ts";
import { fakeRun, writeFakeResults } from "./report_fixtures.ts";

const REGRESS = new URL("../cli/regress.ts", import.meta.url).pathname;

const runs = () => [
  fakeRun({ name: "fp32", raw: true }),
  fakeRun({ name: "dqrm-int4", method: "dqrm", ms: { scale: 0.05 }, raw: true }),
  fakeRun({ name: "hawq-int4", method: "hawq", scalePeriod: 1, ms: { scale: 10 } }),
];

const parsed = (list: Record<string, unknown>[]) => list.map((r) => parseReportRun(r));

/** Multiplies a run's timings (summaries and raw samples) by `factor`, optionally for one phase. */
function slowDown(run: Record<string, unknown>, factor: number, phase?: string) {
  const timing = run.timing as {
    phases: Record<string, Record<string, number>>;
    total: Record<string, number>;
  };
  const scale = (s: Record<string, number>) => {
    for (const k of ["median", "mad", "mean", "p10", "p90"]) s[k] *= factor;
  };
  for (const [p, s] of Object.entries(timing.phases)) if (!phase || p === phase) scale(s);
  scale(timing.total);
  const raw = run.timingSamples as { phases: Record<string, number[]> } | undefined;
  if (raw) {
    for (const [p, a] of Object.entries(raw.phases)) {
      if (!phase || p === phase) raw.phases[p] = a.map((x) => x * factor);
    }
  }
}

Deno.test("compareWithBaseline() passes the runs the baseline was made from", () => {
  const b = makeBaseline("t", parsed(runs()));
  const cmp = compareWithBaseline(b, parsed(runs()));
  assert.deepEqual(cmp.regressions, []);
  assert.ok(cmp.checked.metric > 30 && cmp.checked.timing >= 6 && cmp.checked.memory === 3);
});

Deno.test("compareWithBaseline() catches a planted metric regression and names the run and figure", () => {
  const b = makeBaseline("t", parsed(runs()));
  const current = runs();
  const final = current[1].final as { auc: number };
  final.auc -= 0.002;
  const cmp = compareWithBaseline(b, parsed(current));
  assert.equal(cmp.regressions.length, 1);
  assert.equal(cmp.regressions[0].run, "dqrm-int4");
  assert.equal(cmp.regressions[0].what, "final.auc");
  assert.match(cmp.regressions[0].detail, /final\.auc = .* vs baseline .* > tolerance 0\.000001/);
  // Every curve point is checked too, not only the summary.
  const curveHit = runs();
  (curveHit[0].curve as { accuracy: number }[])[1].accuracy += 1e-5;
  assert.deepEqual(
    compareWithBaseline(b, parsed(curveHit)).regressions.map((f) => f.what),
    ["curve[1]@100.accuracy"],
  );
  // A size change is exact, whatever the tolerance.
  const size = runs();
  (size[2].memory as { modelFileBytes: number }).modelFileBytes += 1;
  assert.deepEqual(compareWithBaseline(b, parsed(size)).regressions.map((f) => f.what), [
    "memory.modelFileBytes",
  ]);
});

Deno.test("compareWithBaseline() tolerates noisy timings but catches a planted slowdown", () => {
  const b = makeBaseline("t", parsed(runs()));
  const noisy = runs();
  for (const r of noisy) slowDown(r, 1.8);
  assert.deepEqual(
    compareWithBaseline(b, parsed(noisy)).regressions,
    [],
    "×1.8 is noise on a shared machine",
  );
  const slow = runs();
  slowDown(slow[1], 5, "forward");
  const cmp = compareWithBaseline(b, parsed(slow));
  assert.deepEqual(
    cmp.regressions.map((f) => `${f.run} ${f.what}`).sort(),
    ["dqrm-int4 timing.forward"],
  );
  assert.match(cmp.regressions[0].detail, /×5\.00 \[95% CI .*\] is slower than the ×3 band/);
  const whole = runs();
  slowDown(whole[2], 4);
  const names = compareWithBaseline(b, parsed(whole)).regressions.map((f) => f.what).sort();
  assert.deepEqual(names, ["timing.backward", "timing.forward", "timing.scale", "timing.total"]);
  const fast = runs();
  slowDown(fast[0], 0.2);
  const f = compareWithBaseline(b, parsed(fast));
  assert.equal(f.regressions.length, 0);
  assert.ok(f.findings.some((x) => !x.regression && /faster than the band/.test(x.detail)));
});

Deno.test("compareWithBaseline() reports missing runs, failed runs, changed configs and memory growth", () => {
  const b = makeBaseline("t", parsed(runs()));
  const current = runs();
  current.splice(2, 1);
  (current[1].config as { learningRate: number }).learningRate = 0.05;
  (current[0].memory as { peakRssBytes: number }).peakRssBytes *= 2;
  const extra = fakeRun({ name: "new-run" });
  const cmp = compareWithBaseline(b, parsed([...current, extra]));
  const got = cmp.regressions.map((f) => `${f.run} ${f.kind}`).sort();
  assert.deepEqual(got, ["dqrm-int4 config", "fp32 memory", "hawq-int4 missing"]);
  assert.match(
    cmp.regressions.find((f) => f.kind === "config")!.detail,
    /learningRate 0\.05 \(baseline 0\.1\)/,
  );
  assert.ok(cmp.findings.some((f) => f.run === "new-run" && f.kind === "extra" && !f.regression));
  const failed = runs();
  failed[0] = fakeRun({ name: "fp32", raw: true, status: "failed", error: "diverged" });
  const f = compareWithBaseline(b, parsed(failed));
  assert.ok(
    f.regressions.some((x) => x.kind === "status" && /status failed \(diverged\)/.test(x.detail)),
  );
});

Deno.test("makeBaseline() refuses two results with one run name", () => {
  assert.throws(
    () => makeBaseline("t", parsed([fakeRun({ name: "a" }), fakeRun({ name: "a", seed: 2 })])),
    /twice/,
  );
});

Deno.test("regress CLI: --update writes a baseline, a clean run exits 0, a planted regression exits 1 naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dqrm-regress-" });
  const results = `${dir}/results`;
  const baseline = `${dir}/baselines/smoke.json`;
  await Deno.mkdir(`${dir}/baselines`);
  await writeFakeResults(results, runs());
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", REGRESS, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
  const up = await run(["--baseline", baseline, "--update", "--command", "test", results]);
  assert.equal(up.code, 0, up.stderr);
  const b = await readBaseline(baseline);
  assert.deepEqual(Object.keys(b.runs).sort(), ["dqrm-int4", "fp32", "hawq-int4"]);
  assert.deepEqual(b.tolerance, DEFAULT_TOLERANCE);
  assert.equal(b.command, "test");

  const clean = await run(["--baseline", baseline, results]);
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  assert.match(clean.stdout, /no regression/);

  // Plant: a worse AUC and a 6× slower whole iteration in dqrm-int4.
  const planted = runs();
  (planted[1].final as { auc: number }).auc -= 0.01;
  slowDown(planted[1], 6);
  await writeFakeResults(results, planted);
  const bad = await run(["--baseline", baseline, results]);
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /REGRESSION dqrm-int4 \[metric\] final\.auc/);
  assert.match(bad.stdout, /REGRESSION dqrm-int4 \[timing\] timing\.total median/);
  assert.match(bad.stdout, /regression\(s\) in dqrm-int4 against/);
  assert.doesNotMatch(bad.stdout, /REGRESSION (fp32|hawq-int4)/);

  // Tolerances kept on update; usage errors exit 2.
  const tightened = { ...b, tolerance: { ...b.tolerance, timingMaxRatio: 10 } };
  await Deno.writeTextFile(baseline, JSON.stringify(tightened));
  assert.equal((await run(["--baseline", baseline, "--update", results])).code, 0);
  assert.equal((await readBaseline(baseline)).tolerance.timingMaxRatio, 10);
  assert.equal((await run([results])).code, 2);
  assert.equal((await run(["--baseline", `${dir}/none.json`, results])).code, 2);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("regress reads real result shapes: a baseline of loaded results matches itself", async () => {
  const dir = await Deno.makeTempDir();
  await writeFakeResults(dir, runs());
  const loaded: ReportRun[] = (await loadResults(dir)).runs.map((r) => r.run);
  assert.deepEqual(compareWithBaseline(makeBaseline("x", loaded), loaded).regressions, []);
  await Deno.remove(dir, { recursive: true });
});
