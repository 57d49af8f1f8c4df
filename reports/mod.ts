/**
 * Result records, result files and reports.
 *
 * @module
 */
export * from "./schema.ts";
export * from "./files.ts";
export * from "./schema_extra.ts";
export * from "./stats.ts";
export { buildReport, writeReport } from "./report.ts";
export { compareWithBaseline } from "./regress.ts";
