/**
 * The raw Criteo formats (Kaggle `train.txt`, Terabyte `day_N`, the Kaggle competition's
 * `train.csv`) and the kinds of bad line the pipeline counts.
 *
 * A TSV line holds 40 tab-separated fields: the click label (`0` or `1`), 13 integer counts and
 * 26 categorical values written as hexadecimal hashes of up to 8 digits. An empty field is a
 * missing value. The competition's CSV has a header line (`Id,Label,I1,…,I13,C1,…,C26`) and a
 * leading Id column, comma-separated. Lines end with LF or CR LF; the last line of a file may lack
 * it. Each file's format is detected from its first line ({@linkcode detectLineFormat}).
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
  "id",
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
  carriageReturn: "Expected LF or CR LF line ends but found a CR inside a line",
  lineLength: `Expected a line of at most ${MAX_LINE_BYTES} bytes but found a longer one`,
  fields: `Expected ${FIELDS} tab-separated fields (41 with an Id column) but found another count`,
  id: "Expected a decimal Id in the Id column",
  label: "Expected a label of 0 or 1",
  integer: "Expected an integer in [-2^31, 2^31) or an empty field",
  hexadecimal: "Expected a hexadecimal categorical value or an empty field",
  categoricalLength: `Expected a categorical value of at most ${MAX_HEX_DIGITS} hexadecimal digits`,
  truncatedGzip: "Expected a complete gzip stream but it ended early or is corrupt",
};

/** How the lines of a file are laid out: detected per file from its first line. */
export interface LineFormat {
  /** Field separator: tab (Criteo's TSV) or comma (the Kaggle competition's CSV). */
  separator: "tab" | "comma";
  /** Whether each line starts with an Id column (the Kaggle competition's CSV). */
  idColumn: boolean;
  /** Whether the first line is a header of column names (skipped: neither sample nor bad). */
  header: boolean;
}

/** Criteo's raw TSV: 40 tab-separated fields, no header. */
export const TSV_FORMAT: Readonly<LineFormat> = {
  separator: "tab",
  idColumn: false,
  header: false,
};

/** The byte of a format's separator. */
export function separatorByte(format: LineFormat): number {
  return format.separator === "comma" ? 44 : 9;
}

/** Fields of a line of `format` (41 with an Id column). */
export function fieldsOf(format: LineFormat): number {
  return FIELDS + (format.idColumn ? 1 : 0);
}

/** A short name of a format, e.g. `CSV with header and Id column`. */
export function formatName(format: LineFormat): string {
  const parts = [format.header ? "header" : "", format.idColumn ? "Id column" : ""].filter(Boolean);
  return `${format.separator === "comma" ? "CSV" : "TSV"}${
    parts.length ? ` with ${parts.join(" and ")}` : ""
  }`;
}

/**
 * The format of a file from its first line (without its line end): the separator is a tab when
 * the line has one, else a comma when it has one; the line is a header when its first field is
 * `Id` or `Label` (any case, quotes and a UTF-8 BOM ignored); an Id column is named `Id` by the
 * header or, without one, is a decimal first field before a 0/1 label in a line of 41 fields.
 * Throws a {@linkcode CriteoInputError} for a header without a label column (a test file).
 */
export function detectLineFormat(firstLine: string): LineFormat {
  const separator = firstLine.includes("\t") ? "tab" : firstLine.includes(",") ? "comma" : "tab";
  const fields = firstLine.split(separator === "tab" ? "\t" : ",").map((f) =>
    f.replace(/^\uFEFF/, "").replace(/^"(.*)"$/, "$1").trim().toLowerCase()
  );
  if (fields[0] === "id" || fields[0] === "label") {
    const idColumn = fields[0] === "id";
    if (idColumn && fields[1] !== "label") {
      throw new CriteoInputError(
        `Expected a header of Id,Label,I1..I13,C1..C26 but found no Label column after Id (${
          JSON.stringify(firstLine.slice(0, 40))
        }…): a test file without click labels cannot be trained on`,
      );
    }
    return { separator, idColumn, header: true };
  }
  const idColumn = fields.length === FIELDS + 1 && /^[0-9]+$/.test(fields[0]) &&
    /^[01]$/.test(fields[1]);
  return { separator, idColumn, header: false };
}

/** Input that holds no usable Criteo sample, or that is not Criteo data: one line, naming it. */
export class CriteoInputError extends Error {
  /** Creates the error; `message` names the file and what was expected and found. */
  constructor(message: string) {
    super(message);
    this.name = "CriteoInputError";
  }
}

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

/**
 * One line per kind of bad line found: `kind: count (meaning); first at file:line, …`.
 * Empty when the report has none.
 */
export function describeBadLineReport(report: BadLineReport): string[] {
  const n = (x: number) => x.toLocaleString("en-US");
  return BAD_LINE_KINDS.filter((k) => report[k].count > 0).map((k) =>
    `${k}: ${n(report[k].count)} (${BAD_LINE_MESSAGES[k]}); first at ${
      report[k].first.map((s) => `${s.file}:${s.line}`).join(", ")
    }`
  );
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
