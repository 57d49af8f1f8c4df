/**
 * The Criteo data pipeline: raw Kaggle and Terabyte TSV (plain or gzipped) in, a chunked binary
 * cache out, every bad line accounted for; and {@linkcode CriteoData}, which streams a cache into
 * training batches.
 *
 * @example Preprocess Kaggle's train.txt, then fill a batch chunk from it
 * ```ts
 * import { CriteoData, preprocessCriteo } from "./mod.ts";
 *
 * async function prepare(input = "train.txt", out = "cache/kaggle") {
 *   await preprocessCriteo({ dataset: "kaggle", input, out });
 *   const data = await CriteoData.open(out);
 *   console.log(data.trainSamples, data.testSamples, data.tableRows);
 *   data.close();
 * }
 * ```
 *
 * @module
 */
export * from "./cache.ts";
export * from "./diagnose.ts";
export * from "./dictionary.ts";
export * from "./format.ts";
export * from "./generate.ts";
export * from "./indexing.ts";
export * from "./prepare.ts";
export * from "./preprocess.ts";
export * from "./run_data.ts";
export * from "./source.ts";
export * from "./sources.ts";
export * from "./splits.ts";
export {
  describeBadLine,
  emptyBlockParse,
  keepsNegative,
  parseBlock,
  parsedColumnsBytes,
  parsedColumnsView,
  samplesCapacity,
} from "./parse.ts";
export type { BlockParse, ParsedColumns, ParseSettings } from "./parse.ts";
export { crc32Prefix, crc32Update, isGzipFile, LineBlockReader, readHead } from "./reader.ts";
export type { LineBlock, LineBlockReaderOptions, ReaderBadLine } from "./reader.ts";
