/**
 * Resuming `deno task bench` into an existing `--out` folder, without mixing configurations:
 * a finished run whose result has the same config is skipped; a result in the folder trained
 * with another config (another `--iterations`, `--lr`, `--scale`, …) stops the command with one
 * line naming the runs and the fields that differ, unless `--fresh` asks to delete the folder's
 * results first.
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import type { RunConfig } from "../record/schema.ts";
import { flatten } from "../reports/group.ts";
import { loadResults } from "../reports/load.ts";

/** Config fields a command-line flag sets for every run of a suite alike. */
const SHARED_FIELDS = [
  "arch",
  "tableScale",
  "engine",
  "threads",
  "batchSize",
  "learningRate",
  "epochs",
  "trainSamples",
  "testSamples",
  "evalEvery",
  "seed",
  "data",
];

/** One result in the output folder that another config would overwrite or sit beside. */
export interface ResumeConflict {
  /** The result file, relative to the folder. */
  path: string;
  /** The run's name. */
  run: string;
  /** `field: was → now`, for each differing field. */
  fields: string[];
}

/** What an output folder holds for a suite about to run in it. */
export interface ResumePlan {
  /** Names of runs already finished (status ok) with the same config: skipped. */
  finished: Set<string>;
  /** Runs whose result has the same config but did not finish (status failed, …): run again. */
  rerun: Map<string, string>;
  /** Results trained with another config. */
  conflicts: ResumeConflict[];
  /** Result files that could not be read, with the reason (they would be overwritten). */
  unreadable: { path: string; reason: string }[];
  /** Every result file in the folder (relative paths), for `--fresh`. */
  files: string[];
}

function text(v: unknown): string {
  return v === undefined ? "unset" : typeof v === "string" ? v : JSON.stringify(v);
}

/** The fields whose values differ between two configs, as `field: was → now`. */
export function configDiff(was: unknown, now: unknown): string[] {
  const a = flatten(was), b = flatten(now);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => !isDeepStrictEqual(a[k], b[k]))
    .map((k) => `${k}: ${text(a[k])} → ${text(b[k])}`);
}

/**
 * Reads the results already in `out` and sorts them against the configs about to run. `all`
 * holds every run the suite would run without `--run` (a result of one of those is compared
 * whole); a result of a run outside it is compared on the fields every run of `all` shares
 * (batch size, learning rate, iterations, scale, seed, …).
 */
export async function planResume(out: string, all: readonly RunConfig[]): Promise<ResumePlan> {
  const plan: ResumePlan = {
    finished: new Set(),
    rerun: new Map(),
    conflicts: [],
    unreadable: [],
    files: [],
  };
  let loaded;
  try {
    loaded = await loadResults(out, { recursive: false });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return plan;
    throw e;
  }
  const byName = new Map(all.map((c) => [c.name, c]));
  // An unreadable file is the folder's business unless it is where a run will write.
  plan.unreadable = loaded.skipped.filter((s) => byName.has(s.path.replace(/\.json$/, "")));
  plan.files = [...loaded.runs.map((r) => r.path), ...plan.unreadable.map((s) => s.path)];
  const shared = SHARED_FIELDS.filter((k) =>
    all.length > 0 &&
    all.every((c) => isDeepStrictEqual(field(c, k), field(all[0], k)))
  );
  for (const { path, run } of loaded.runs) {
    const name = run.config.name;
    const now = byName.get(name);
    let fields: string[];
    if (now) fields = configDiff(run.config, now);
    else {
      fields = shared.filter((k) => !isDeepStrictEqual(field(run.config, k), field(all[0], k)))
        .map((k) => `${k}: ${text(field(run.config, k))} → ${text(field(all[0], k))}`);
    }
    if (fields.length) plan.conflicts.push({ path, run: name, fields });
    else if (now && run.status === "ok") plan.finished.add(name);
    else if (now) plan.rerun.set(name, run.status);
  }
  return plan;
}

function field(config: unknown, key: string): unknown {
  return (config as Record<string, unknown>)[key];
}

/** The one-line refusal for a plan with conflicts. */
export function conflictMessage(out: string, conflicts: readonly ResumeConflict[]): string {
  const shown = conflicts.slice(0, 3).map((c) => {
    const f = c.fields.slice(0, 3).join(", ");
    return `${c.run} (${f}${c.fields.length > 3 ? `, ${c.fields.length - 3} more` : ""})`;
  });
  if (conflicts.length > 3) shown.push(`${conflicts.length - 3} more`);
  return `${out} already holds ${conflicts.length} result(s) trained with another config: ${
    shown.join("; ")
  }; write elsewhere with --out DIR, or pass --fresh to delete its results and start over`;
}

/** Deletes the results of a plan (`RUN.json` and `RUN.model`) for `--fresh`. */
export async function deleteResults(out: string, plan: ResumePlan): Promise<number> {
  let n = 0;
  for (const path of plan.files) {
    for (const p of [`${out}/${path}`, `${out}/${path.replace(/\.json$/, ".model")}`]) {
      try {
        await Deno.remove(p);
        if (p.endsWith(".json")) n++;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
  }
  return n;
}
