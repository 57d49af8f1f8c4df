/**
 * The run contract: what a run is configured with and what it records. Run config and result
 * schemas (with the optional extras and weight histograms), the compression presets' names and
 * settings, result files written atomically, and the statistics (quantiles, median, MAD,
 * intervals, ratios, the normal quantile) every summary and report is computed with.
 *
 * Imports only `engine/` and `data/`; `comm/`, `suites/`, `reports/` and `cli/` build on it.
 *
 * @module
 */
export * from "./schema.ts";
export * from "./schema_extra.ts";
export * from "./presets.ts";
export * from "./provenance.ts";
export * from "./files.ts";
export * from "./stats.ts";
