/**
 * Reports: HTML and CSV reports of result files, and regression checks against a baseline. The
 * result records, files and statistics they read are in `record/`.
 *
 * @module
 */
export { buildReport, writeReport } from "./report.ts";
export { compareWithBaseline } from "./regress.ts";
