/**
 * Benchmark data: the built-in synthetic Criteo-shaped click data.
 *
 * @module
 */
export * from "./synthetic.ts";
