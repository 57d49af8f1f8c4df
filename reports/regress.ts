/**
 * The regression gate: compares a results folder with a stored baseline. Deterministic CPU
 * figures (test metrics at every evaluation, training loss, iterations, parameter and model
 * bytes) must match to a tight tolerance; timings are compared only by the ratio of medians and
 * its 95% interval against a wide band, so a noisy shared machine does not fail the gate but a
 * real slowdown does; peak memory by a ratio band.
 *
 * @module
 */
import { z } from "zod";
import { flatten } from "./group.ts";
import type { ReportRun } from "./load.ts";
import { type Ratio, ratioFromSummaries } from "../record/stats.ts";
import { phasesOf, timingStats } from "./timing.ts";

/** Version of the baseline format. */
export const BASELINE_SCHEMA_VERSION = 1;

/** How close a run must be to its baseline. */
export const ToleranceSchema = z.object({
  /** Absolute tolerance of deterministic metrics (accuracy, AUC, log loss, training loss). */
  metricAbs: z.number().nonnegative(),
  /** Relative tolerance of deterministic metrics, added to `metricAbs · |baseline|`. */
  metricRel: z.number().nonnegative(),
  /** A timing regresses when the lower bound of its ratio's 95% interval exceeds this. */
  timingMaxRatio: z.number().gt(1),
  /** Phases whose baseline median is below this (ms) are too small to compare. */
  timingFloorMs: z.number().nonnegative(),
  /** Peak resident memory regresses beyond this ratio. */
  memoryMaxRatio: z.number().gt(1),
});

/** Tolerances of a baseline. */
export type Tolerance = z.infer<typeof ToleranceSchema>;

/** Defaults: bit-for-bit CPU metrics (1e-6 absolute), timings within 3×, memory within 1.5×. */
export const DEFAULT_TOLERANCE: Tolerance = {
  metricAbs: 1e-6,
  metricRel: 0,
  timingMaxRatio: 3,
  timingFloorMs: 0.5,
  memoryMaxRatio: 1.5,
};

const TimingSummarySchema = z.object({ median: z.number(), mad: z.number(), n: z.number() });

/** What the baseline stores of one run. */
export const BaselineRunSchema = z.object({
  /** The run's config, flattened to dot paths; it must match for results to be comparable. */
  config: z.record(z.string(), z.unknown()),
  status: z.string(),
  /** Deterministic figures by name (`final.auc`, `curve@50.accuracy`, `memory.parameterBytes`). */
  deterministic: z.record(z.string(), z.number()),
  /** Timing summaries by phase (and `total`), ms per iteration. */
  timing: z.record(z.string(), TimingSummarySchema),
  peakRssBytes: z.number().optional(),
});

/** One run of a baseline. */
export type BaselineRun = z.infer<typeof BaselineRunSchema>;

/** A stored baseline (`ci/baselines/NAME.json`). */
export const BaselineSchema = z.object({
  schemaVersion: z.literal(BASELINE_SCHEMA_VERSION),
  name: z.string(),
  createdAt: z.string(),
  /** How the baseline's results were produced. */
  command: z.string().optional(),
  /** Where they were measured (Deno, CPU, engine). */
  environment: z.record(z.string(), z.unknown()).optional(),
  tolerance: ToleranceSchema,
  runs: z.record(z.string(), BaselineRunSchema),
});

/** A stored baseline. */
export type Baseline = z.infer<typeof BaselineSchema>;

/** Config fields that do not change what a run computes, ignored when matching configs. */
const CONFIG_IGNORED = new Set(["experiments", "budget.seconds", "budget.memoryBytes"]);

/** Values of config fields added after some baselines were made: what those runs used. */
const CONFIG_DEFAULTS: Record<string, unknown> = { cpuKernels: "wasm" };

/** Deterministic figures of a run, by name. */
export function deterministicFigures(run: ReportRun): Record<string, number> {
  const out: Record<string, number> = { iterations: run.iterations };
  const put = (k: string, v: number | null | undefined) => {
    if (typeof v === "number" && Number.isFinite(v)) out[k] = v;
  };
  for (const part of ["final", "best", "ceiling"] as const) {
    const m = run[part];
    if (!m) continue;
    put(`${part}.accuracy`, m.accuracy);
    put(`${part}.auc`, m.auc);
    put(`${part}.logLoss`, m.logLoss);
  }
  run.curve.forEach((p, i) => {
    // Keyed by position and iteration: PTQ evaluates twice at its last iteration.
    const k = `curve[${i}]@${p.iteration}`;
    put(`${k}.accuracy`, p.accuracy);
    put(`${k}.auc`, p.auc);
    put(`${k}.logLoss`, p.logLoss);
    put(`${k}.trainLoss`, p.trainLoss);
  });
  put("memory.parameterBytes", run.memory?.parameterBytes);
  put("memory.modelFileBytes", run.memory?.modelFileBytes);
  put("communication.bytesPerIteration", run.communication?.bytesPerIteration.total);
  return out;
}

/** Figures compared exactly (sizes and counts), whatever the tolerance. */
function exact(name: string): boolean {
  return name === "iterations" || name.startsWith("memory.") || name.startsWith("communication.");
}

/** Builds a baseline from runs (keyed by run name). */
export function makeBaseline(
  name: string,
  runs: readonly ReportRun[],
  options: { tolerance?: Tolerance; command?: string; createdAt?: string } = {},
): Baseline {
  const byName: Record<string, BaselineRun> = {};
  for (const run of runs) {
    if (byName[run.config.name]) {
      throw new TypeError(`Expected one result per run name but found "${run.config.name}" twice`);
    }
    const timing: Record<string, { median: number; mad: number; n: number }> = {};
    for (const phase of phasesOf(run)) {
      const s = timingStats(run, phase);
      if (s) timing[phase] = { median: s.median, mad: s.mad, n: s.n };
    }
    byName[run.config.name] = {
      config: comparableConfig(run),
      status: run.status,
      deterministic: deterministicFigures(run),
      timing,
      ...(run.memory?.peakRssBytes ? { peakRssBytes: run.memory.peakRssBytes } : {}),
    };
  }
  const env = runs[0]?.environment;
  return {
    schemaVersion: BASELINE_SCHEMA_VERSION,
    name,
    createdAt: options.createdAt ?? new Date().toISOString(),
    ...(options.command ? { command: options.command } : {}),
    ...(env
      ? {
        environment: {
          deno: env.deno,
          cpu: env.cpu,
          cores: env.cores,
          engine: env.engine?.name,
          threads: env.engine?.threads,
        },
      }
      : {}),
    tolerance: options.tolerance ?? DEFAULT_TOLERANCE,
    runs: byName,
  };
}

function comparableConfig(run: ReportRun): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(flatten(run.config)).filter(([k]) => !CONFIG_IGNORED.has(k)),
  );
}

/** One check that failed (or a note). */
export interface Finding {
  run: string;
  /** `missing`, `status`, `config`, `metric`, `timing`, `memory`, `extra` (a run not in the baseline). */
  kind: "missing" | "status" | "config" | "metric" | "timing" | "memory" | "extra";
  /** What was compared (`final.auc`, `timing.total`). */
  what: string;
  /** Human-readable detail with both values. */
  detail: string;
  /** True for a regression; false for a note (an improvement, an extra run). */
  regression: boolean;
  /** For timings and memory: current / baseline with its interval. */
  ratio?: Ratio;
}

/** Result of {@linkcode compareWithBaseline}. */
export interface Comparison {
  findings: Finding[];
  regressions: Finding[];
  /** Checks made, by kind. */
  checked: Record<string, number>;
}

/**
 * Compares runs (by name) with a baseline and returns every regression and note.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareWithBaseline, makeBaseline } from "./regress.ts";
 * const b = makeBaseline("empty", []);
 * assert.equal(compareWithBaseline(b, []).regressions.length, 0);
 * ```
 */
export function compareWithBaseline(baseline: Baseline, runs: readonly ReportRun[]): Comparison {
  const tol = baseline.tolerance;
  const findings: Finding[] = [];
  const checked: Record<string, number> = { metric: 0, timing: 0, memory: 0, config: 0 };
  const byName = new Map<string, ReportRun[]>();
  for (const r of runs) byName.set(r.config.name, [...(byName.get(r.config.name) ?? []), r]);
  const add = (f: Finding) => findings.push(f);

  for (const [name, base] of Object.entries(baseline.runs)) {
    const found = byName.get(name) ?? [];
    if (found.length === 0) {
      add({
        run: name,
        kind: "missing",
        what: "result",
        detail: "no result with this run name",
        regression: true,
      });
      continue;
    }
    if (found.length > 1) {
      add({
        run: name,
        kind: "missing",
        what: "result",
        detail: `${found.length} results with this run name; expected one`,
        regression: true,
      });
      continue;
    }
    const run = found[0];
    if (run.status !== base.status) {
      add({
        run: name,
        kind: "status",
        what: "status",
        detail: `status ${run.status}${
          run.error ? ` (${run.error})` : ""
        }, baseline ${base.status}`,
        regression: true,
      });
    }
    // Config: the results must come from the same settings to be comparable.
    const cfg = comparableConfig(run);
    checked.config++;
    const keys = new Set([...Object.keys(cfg), ...Object.keys(base.config)]);
    const diffs = [...keys].filter((k) =>
      JSON.stringify(cfg[k] ?? CONFIG_DEFAULTS[k]) !==
        JSON.stringify(base.config[k] ?? CONFIG_DEFAULTS[k])
    );
    if (diffs.length) {
      add({
        run: name,
        kind: "config",
        what: "config",
        detail: `config differs from the baseline's: ${
          diffs.map((k) =>
            `${k} ${JSON.stringify(cfg[k])} (baseline ${JSON.stringify(base.config[k])})`
          )
            .join(", ")
        }; results are not comparable (update the baseline if the change is intended)`,
        regression: true,
      });
      continue;
    }
    // Deterministic figures.
    const mine = deterministicFigures(run);
    for (const [k, want] of Object.entries(base.deterministic)) {
      checked.metric++;
      const got = mine[k];
      if (got === undefined) {
        add({
          run: name,
          kind: "metric",
          what: k,
          detail: `${k} missing (baseline ${want})`,
          regression: true,
        });
        continue;
      }
      const allowed = exact(k) ? 0 : tol.metricAbs + tol.metricRel * Math.abs(want);
      const d = Math.abs(got - want);
      if (!(d <= allowed)) {
        add({
          run: name,
          kind: "metric",
          what: k,
          detail: `${k} = ${got} vs baseline ${want} (|Δ| ${
            d.toExponential(2)
          } > tolerance ${allowed})`,
          regression: true,
        });
      }
    }
    // Timings: ratio of medians with its interval, against a wide band.
    for (const [phase, b] of Object.entries(base.timing)) {
      if (b.median < tol.timingFloorMs) continue;
      const s = timingStats(run, phase);
      checked.timing++;
      if (!s) {
        add({
          run: name,
          kind: "timing",
          what: `timing.${phase}`,
          detail: `timing.${phase} missing (baseline ${b.median.toFixed(3)} ms)`,
          regression: true,
        });
        continue;
      }
      const r = ratioFromSummaries(s, b);
      const lo = Number.isFinite(r.lo) ? r.lo : r.ratio;
      const hi = Number.isFinite(r.hi) ? r.hi : r.ratio;
      const text = `timing.${phase} median ${s.median.toFixed(3)} ms vs baseline ${
        b.median.toFixed(3)
      } ms: ×${r.ratio.toFixed(2)} [95% CI ${lo.toFixed(2)}, ${hi.toFixed(2)}]`;
      if (lo > tol.timingMaxRatio) {
        add({
          run: name,
          kind: "timing",
          what: `timing.${phase}`,
          detail: `${text} is slower than the ×${tol.timingMaxRatio} band`,
          regression: true,
          ratio: r,
        });
      } else if (hi < 1 / tol.timingMaxRatio) {
        add({
          run: name,
          kind: "timing",
          what: `timing.${phase}`,
          detail: `${text} is faster than the band: update the baseline to keep the gate useful`,
          regression: false,
          ratio: r,
        });
      }
    }
    // Peak memory.
    const rss = run.memory?.peakRssBytes;
    if (base.peakRssBytes && rss) {
      checked.memory++;
      const ratio = rss / base.peakRssBytes;
      if (ratio > tol.memoryMaxRatio) {
        add({
          run: name,
          kind: "memory",
          what: "memory.peakRssBytes",
          detail: `peak RSS ${(rss / 1e6).toFixed(1)} MB vs baseline ${
            (base.peakRssBytes / 1e6).toFixed(1)
          } MB: ×${ratio.toFixed(2)} > ×${tol.memoryMaxRatio}`,
          regression: true,
        });
      }
    }
  }
  for (const name of byName.keys()) {
    if (!(name in baseline.runs)) {
      add({
        run: name,
        kind: "extra",
        what: "result",
        detail: "not in the baseline (not checked)",
        regression: false,
      });
    }
  }
  return { findings, regressions: findings.filter((f) => f.regression), checked };
}

/** Reads and validates a baseline file. */
export async function readBaseline(path: string): Promise<Baseline> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw e;
    throw new SyntaxError(
      `Expected JSON in ${path} but could not parse it: ${(e as Error).message}`,
    );
  }
  const parsed = BaselineSchema.safeParse(json);
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new TypeError(`Invalid baseline in ${path}: ${what.join("; ")}`);
  }
  return parsed.data;
}
