/**
 * Result records, result files and reports.
 *
 * @module
 */
export * from "./schema.ts";
export * from "./files.ts";
export * from "./html.ts";
