/**
 * Reads result files for reports, leniently: the report must keep working while methods and
 * fields are added, so it validates only what it reads, keeps every other field, accepts any
 * method name and any later schema version, and lists the files it could not use instead of
 * failing on them.
 *
 * @module
 */
import { z } from "zod";
import { CurvePointSchema, SummarySchema } from "../record/schema.ts";
import { ResultExtrasShape } from "../record/schema_extra.ts";
import { migrateRunJson, ProvenanceSchema } from "../record/provenance.ts";

const num = z.number();
const optNum = num.optional();

/** The configuration fields the report reads; any others are kept as they are. */
export const ReportConfigSchema = z.looseObject({
  name: z.string(),
  method: z.string(),
  arch: z.string(),
  tableScale: optNum,
  engine: z.string().optional(),
  threads: optNum,
  batchSize: optNum,
  learningRate: optNum,
  epochs: optNum,
  trainSamples: optNum,
  testSamples: optNum,
  evalEvery: optNum,
  warmupIterations: optNum,
  seed: optNum,
});

const MetricsSchema = z.looseObject({ accuracy: num, auc: num, logLoss: optNum });

/** A run result as the report reads it. */
export const ReportRunSchema = z.looseObject({
  schemaVersion: z.number().int().positive(),
  suite: z.string().optional(),
  /** Commit, dirty flag, machine (version 1 results gain it by migration). */
  provenance: ProvenanceSchema.optional(),
  config: ReportConfigSchema,
  spec: z.unknown().optional(),
  status: z.string(),
  error: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  environment: z.looseObject({
    deno: z.string().optional(),
    v8: z.string().optional(),
    typescript: z.string().optional(),
    os: z.string().optional(),
    arch: z.string().optional(),
    cpu: z.string().optional(),
    cores: optNum,
    memoryBytes: optNum,
    engine: z.looseObject({
      name: z.string().optional(),
      device: z.string().optional(),
      threads: optNum,
      details: z.record(z.string(), z.unknown()).optional(),
    }).optional(),
  }).optional(),
  iterations: num.default(0),
  timing: z.looseObject({
    phases: z.record(z.string(), SummarySchema).default({}),
    total: SummarySchema.optional(),
    wallMsPerIteration: optNum,
    samplesPerSecond: optNum,
  }).optional(),
  memory: z.looseObject({
    peakRssBytes: optNum,
    engineBytes: optNum,
    parameterBytes: optNum,
    modelFileBytes: optNum,
  }).optional(),
  curve: z.array(
    CurvePointSchema.extend({ trainLoss: num.nullable().optional() }).partial({
      logLoss: true,
      epoch: true,
    }),
  ).default([]),
  final: MetricsSchema.optional(),
  best: MetricsSchema.optional(),
  ceiling: MetricsSchema.optional(),
  ...ResultExtrasShape,
});

/** A run result as the report reads it. */
export type ReportRun = z.infer<typeof ReportRunSchema>;

/** A result with where it was read from. */
export interface LoadedRun {
  /** Path relative to the results folder. */
  path: string;
  run: ReportRun;
}

/** A file that looked like a result but could not be used. */
export interface SkippedFile {
  path: string;
  reason: string;
}

/** What {@linkcode loadResults} found. */
export interface LoadedResults {
  runs: LoadedRun[];
  skipped: SkippedFile[];
}

/** Options of {@linkcode loadResults}. */
export interface LoadOptions {
  /** Read sub-folders too (default true). */
  recursive?: boolean;
}

/**
 * Parses one result for the report; throws a `TypeError` naming every wrong field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReportRun } from "./load.ts";
 * assert.throws(() => parseReportRun({ schemaVersion: 1 }), TypeError);
 * ```
 */
export function parseReportRun(json: unknown, where = "result"): ReportRun {
  const parsed = ReportRunSchema.safeParse(migrateRunJson(json));
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new TypeError(`Invalid run result in ${where}: ${what.join("; ")}`);
  }
  return parsed.data;
}

/**
 * Reads every result file under `dir` (sub-folders included by default). JSON files that carry
 * a list of `runs` (suite files, baselines) or none of a result's fields (`schemaVersion`,
 * `config`, `status`, `timing`) are not results and are passed over; every other JSON file is
 * a result or is listed in `skipped` with the reason (not JSON, no `config`, a wrong field), so
 * no result vanishes from a report unnamed.
 */
export async function loadResults(dir: string, options: LoadOptions = {}): Promise<LoadedResults> {
  const recursive = options.recursive ?? true;
  const runs: LoadedRun[] = [];
  const skipped: SkippedFile[] = [];
  const walk = async (sub: string) => {
    const entries: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(sub ? `${dir}/${sub}` : dir)) entries.push(e);
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory && recursive) await walk(rel);
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      let json: unknown;
      try {
        json = JSON.parse(await Deno.readTextFile(`${dir}/${rel}`));
      } catch (err) {
        skipped.push({ path: rel, reason: `not JSON: ${(err as Error).message}` });
        continue;
      }
      if (!looksLikeResult(json)) continue;
      if (!("config" in (json as object))) {
        skipped.push({
          path: rel,
          reason: "no config: a result without its run config cannot be placed in the report",
        });
        continue;
      }
      try {
        runs.push({ path: rel, run: parseReportRun(json, rel) });
      } catch (err) {
        skipped.push({ path: rel, reason: (err as Error).message });
      }
    }
  };
  await walk("");
  return { runs, skipped };
}

/** Fields of a run result; a JSON object with any of them (and no `runs` list) is one. */
const RESULT_FIELDS = ["schemaVersion", "config", "status", "timing"];

function looksLikeResult(json: unknown): boolean {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return false;
  if ("runs" in json) return false; // a suite file or a regression baseline
  return RESULT_FIELDS.some((k) => k in json);
}
