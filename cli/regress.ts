/**
 * `deno task regress --baseline ci/baselines/NAME.json RESULTS_DIR`: the regression gate.
 * Compares the results under RESULTS_DIR with a stored baseline and exits 1 naming each
 * regression; `--update` writes the baseline from the results instead.
 *
 * @module
 */
import { writeFileAtomic } from "../record/files.ts";
import { loadResults } from "../reports/load.ts";
import {
  compareWithBaseline,
  DEFAULT_TOLERANCE,
  makeBaseline,
  readBaseline,
  type Tolerance,
} from "../reports/regress.ts";
import { defineCli, FLAGS, parseCli, runMain, UsageError } from "./args.ts";

const CLI = defineCli({
  usage: "deno task regress --baseline FILE RESULTS_DIR [options]",
  description: `Compares every run of the baseline FILE with the result of the same run name under
RESULTS_DIR (sub-folders included). Deterministic CPU figures (test metrics at every
evaluation, training loss, iterations, parameter and model bytes) must match to the
baseline's tolerance; timings regress only when the 95% interval of the ratio of medians
lies wholly above the baseline's band (default ×3, for noisy shared machines); peak memory
by a ratio band (default ×1.5). Exits 1 naming each regression, 0 when there is none.`,
  options: {
    baseline: {
      type: "string",
      arg: "FILE",
      help: "the baseline (ci/baselines/NAME.json); required",
    },
    update: {
      type: "boolean",
      help: "write FILE from the results instead of comparing (keeps FILE's tolerances when " +
        "it exists)",
    },
    command: {
      type: "string",
      arg: "TEXT",
      help: "with --update: how the results were produced, stored in FILE",
    },
    quiet: { ...FLAGS.quiet, help: "print regressions only" },
  },
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (!values.baseline) throw new UsageError("--baseline FILE is required");
  if (positionals.length !== 1) {
    throw new UsageError(`expected one results folder but found ${positionals.length}`);
  }
  const dir = positionals[0];
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw new UsageError(`'${dir}' is not a folder`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`results folder '${dir}' does not exist`);
  }
  const { runs, skipped } = await loadResults(dir);
  for (const s of skipped) console.error(`regress: skipped ${s.path}: ${s.reason}`);
  const results = runs.map((r) => r.run);

  if (values.update) {
    let tolerance: Tolerance = DEFAULT_TOLERANCE;
    try {
      tolerance = (await readBaseline(values.baseline)).tolerance;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const name = values.baseline.replace(/^.*\//, "").replace(/\.json$/, "");
    const baseline = makeBaseline(name, results, {
      tolerance,
      ...(values.command ? { command: values.command } : {}),
    });
    await writeFileAtomic(values.baseline, JSON.stringify(baseline, null, 1) + "\n");
    console.log(
      `regress: wrote ${values.baseline} from ${results.length} runs (${
        Object.keys(baseline.runs).join(", ")
      })`,
    );
    return 0;
  }

  let baseline;
  try {
    baseline = await readBaseline(values.baseline);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(
        `baseline '${values.baseline}' does not exist (create it with --update)`,
      );
    }
    throw e;
  }
  const cmp = compareWithBaseline(baseline, results);
  if (!values.quiet) {
    const t = baseline.tolerance;
    console.log(
      `regress: ${
        Object.keys(baseline.runs).length
      } baseline runs vs ${results.length} results in ${dir}; ` +
        `checked ${cmp.checked.metric} deterministic figures (|Δ| ≤ ${t.metricAbs} + ${t.metricRel}·|x|), ` +
        `${cmp.checked.timing} timings (×${t.timingMaxRatio} band), ${cmp.checked.memory} peak memories (×${t.memoryMaxRatio})`,
    );
    for (const f of cmp.findings.filter((x) => !x.regression)) {
      console.log(`note: ${f.run}: ${f.detail}`);
    }
  }
  for (const f of cmp.regressions) console.log(`REGRESSION ${f.run} [${f.kind}] ${f.detail}`);
  if (cmp.regressions.length) {
    const runsHit = [...new Set(cmp.regressions.map((f) => f.run))];
    console.log(
      `regress: ${cmp.regressions.length} regression(s) in ${
        runsHit.join(", ")
      } against ${values.baseline}`,
    );
    return 1;
  }
  console.log(`regress: no regression against ${values.baseline}`);
  return 0;
}

if (import.meta.main) await runMain("regress", main);
