/**
 * The raw Criteo TSV format (Kaggle `train.txt`, Terabyte `day_N`) and the kinds of bad line the
 * pipeline counts.
 *
 * A line holds 40 tab-separated fields: the click label (`0` or `1`), 13 integer counts and 26
 * categorical values written as hexadecimal hashes of up to 8 digits. An empty field is a missing
 * value. Lines end with LF; the last line of a file may lack it.
 *
 * @module
 */

/** Integer (dense) features per line. */
export const DENSE_FEATURES = 13;

/** Categorical features (embedding tables) per line. */
export const CATEGORICAL_FEATURES = 26;

/** Tab-separated fields per line: the label, the integers, the categoricals. */
export const FIELDS = 1 + DENSE_FEATURES + CATEGORICAL_FEATURES;

/** Most hexadecimal digits a categorical value may have (a 32-bit hash). */
export const MAX_HEX_DIGITS = 8;

/**
 * Longest line accepted, in bytes, LF included. A valid line is under 500 bytes; a longer one is
 * counted as `lineLength` and skipped (one longer than a whole block without being held whole).
 */
export const MAX_LINE_BYTES = 65536;

/** Every kind of bad line, in the order a line is classified (the first that applies wins). */
export const BAD_LINE_KINDS = [
  "empty",
  "carriageReturn",
  "lineLength",
  "fields",
  "label",
  "integer",
  "hexadecimal",
  "categoricalLength",
  "truncatedGzip",
] as const;

/** A kind of bad line. */
export type BadLineKind = typeof BAD_LINE_KINDS[number];

/** What each kind of bad line means, as a message in the style `file:line: what`. */
export const BAD_LINE_MESSAGES: Readonly<Record<BadLineKind, string>> = {
  empty: "Expected a line of 40 fields but found an empty line",
  carriageReturn: "Expected a line ending in LF but found CR LF",
  lineLength: `Expected a line of at most ${MAX_LINE_BYTES} bytes but found a longer one`,
  fields: `Expected ${FIELDS} tab-separated fields but found another count`,
  label: "Expected a label of 0 or 1",
  integer: "Expected an integer in [-2^31, 2^31) or an empty field",
  hexadecimal: "Expected a hexadecimal categorical value or an empty field",
  categoricalLength: `Expected a categorical value of at most ${MAX_HEX_DIGITS} hexadecimal digits`,
  truncatedGzip: "Expected a complete gzip stream but it ended early or is corrupt",
};

/** Line numbers kept per kind of bad line. */
export const FIRST_BAD_LINES = 10;

/** Where a bad line is: the source's file name and the 1-based line number. */
export interface BadLineSite {
  /** File name of the source (no folder). */
  file: string;
  /** 1-based line number in the (decompressed) file. */
  line: number;
}

/** Count and first sites of one kind of bad line. */
export interface BadLineTally {
  /** Lines of this kind. */
  count: number;
  /** The first {@linkcode FIRST_BAD_LINES} sites, in file order. */
  first: BadLineSite[];
}

/** Counts and first sites of every kind of bad line. */
export type BadLineReport = Record<BadLineKind, BadLineTally>;

/** An empty report (every kind at zero). */
export function emptyBadLineReport(): BadLineReport {
  return Object.fromEntries(
    BAD_LINE_KINDS.map((k) => [k, { count: 0, first: [] }]),
  ) as unknown as BadLineReport;
}

/** Adds one bad line to a report (sites must arrive in file order). */
export function addBadLine(report: BadLineReport, kind: BadLineKind, site: BadLineSite): void {
  const tally = report[kind];
  tally.count++;
  if (tally.first.length < FIRST_BAD_LINES) tally.first.push(site);
}

/** Adds `more` to `report` (`more` covers lines after those of `report`). */
export function mergeBadLineReports(report: BadLineReport, more: BadLineReport): void {
  for (const kind of BAD_LINE_KINDS) {
    const into = report[kind];
    into.count += more[kind].count;
    for (const site of more[kind].first) {
      if (into.first.length < FIRST_BAD_LINES) into.first.push(site);
    }
  }
}

/** Total bad lines of a report. */
export function badLineTotal(report: BadLineReport): number {
  return BAD_LINE_KINDS.reduce((sum, k) => sum + report[k].count, 0);
}

/**
 * A bad line met in strict mode. The message is `file:line: what`, as compilers print it.
 */
export class CriteoFormatError extends Error {
  /** Where the bad line is. */
  readonly site: BadLineSite;
  /** Its kind. */
  readonly kind: BadLineKind;

  /** Creates the error of a bad line of `kind` at `site`, `what` detailing it. */
  constructor(site: BadLineSite, kind: BadLineKind, what: string) {
    super(`${site.file}:${site.line}: ${what}`);
    this.name = "CriteoFormatError";
    this.site = site;
    this.kind = kind;
  }
}
