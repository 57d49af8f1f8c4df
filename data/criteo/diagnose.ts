/**
 * Why a file gave no usable sample: a guess at the likely cause from the start of its text (empty,
 * another compression, binary, CR-only line ends, CSV or TSV with the wrong columns, integers
 * written as decimals, a test file without labels), for a one-line error naming the file, the
 * first bad line and what to do.
 *
 * @module
 */
import {
  type BadLineKind,
  CriteoInputError,
  detectLineFormat,
  FIELDS,
  fieldsOf,
  type LineFormat,
  separatorByte,
} from "./format.ts";

/** The first bad line of a file: its 1-based number, kind and detail. */
export interface FirstBadLine {
  line: number;
  kind: BadLineKind;
  what: string;
}

/** Magic bytes of compressions the reader does not decompress (only gzip is read). */
const MAGIC: [string, number[]][] = [
  ["zip", [0x50, 0x4b, 0x03, 0x04]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["7z", [0x37, 0x7a, 0xbc, 0xaf]],
];

/**
 * The likely cause, in a few words, of a file whose text starts with `head` (at most a few tens
 * of KiB, decompressed) giving no usable sample when read as `format`.
 */
export function likelyCause(head: Uint8Array, format: LineFormat, first?: FirstBadLine): string {
  if (head.length === 0) return "the file is empty";
  for (const [name, magic] of MAGIC) {
    if (magic.every((b, i) => head[i] === b)) {
      return `it is a ${name} archive, not text: decompress it first (only gzip is read as is)`;
    }
  }
  let control = 0, nul = 0;
  for (const b of head) {
    if (b === 0) nul++;
    if ((b < 32 && b !== 9 && b !== 10 && b !== 13) || b === 127) control++;
  }
  if (nul > 0 || control > head.length / 100) {
    return "it looks binary, not Criteo text (another format, or a corrupt file?)";
  }
  const lf = head.indexOf(10);
  const cr = head.indexOf(13);
  if (cr >= 0 && (lf < 0 || lf > cr + 1)) {
    return "its lines seem to end in CR alone (classic Mac line ends): convert them to LF";
  }
  const lineEnd = lf < 0 ? head.length : lf;
  let firstLine = new TextDecoder().decode(head.subarray(0, lineEnd)).replace(/\r$/, "");
  if (format.header) {
    const next = head.indexOf(10, lineEnd + 1);
    firstLine = new TextDecoder().decode(
      head.subarray(lineEnd + 1, next < 0 ? head.length : next),
    ).replace(/\r$/, "");
  }
  if (firstLine === "") return "its first data line is empty";
  const sep = String.fromCharCode(separatorByte(format));
  const fields = firstLine.split(sep);
  const expected = fieldsOf(format);
  const name = format.separator === "comma" ? "CSV" : "TSV";
  if (fields.length !== expected) {
    const labelless = fields.length === expected - 1
      ? " (one short: a test file without click labels?)"
      : "";
    return `it looks like ${name} with ${fields.length} ${format.separator}-separated columns${labelless}, not Criteo's ${FIELDS} tab-separated fields (label, I1..I13, C1..C26) or the Kaggle competition's CSV (Id,Label,I1..I13,C1..C26)`;
  }
  if (first?.kind === "integer" && fields.some((f) => /^-?[0-9]+\.[0-9]*$/.test(f))) {
    return "its integers are written as decimals (1.0): Criteo's counts are plain integers";
  }
  return `its lines are ${name} with the right column count but bad values`;
}

/**
 * The error of a file with no usable sample: names the file, its line count, the first bad
 * line's number and kind, and the likely cause.
 */
export function noSampleError(
  path: string,
  lines: number,
  head: Uint8Array,
  format: LineFormat,
  first?: FirstBadLine,
): CriteoInputError {
  const n = lines.toLocaleString("en-US");
  const bad = first ? `; first bad line ${path}:${first.line}: ${first.kind}: ${first.what}` : "";
  return new CriteoInputError(
    `Expected Criteo samples in ${path} but found none usable in ${n} line${
      lines === 1 ? "" : "s"
    }${bad}; likely cause: ${likelyCause(head, format, first)}`,
  );
}

/**
 * A file's line format, detected from the first line of its head (a header only when that line
 * is whole); a {@linkcode CriteoInputError} names `path` when the file cannot be trained on.
 */
export function formatOf(head: Uint8Array, path: string): LineFormat {
  const lf = head.indexOf(10);
  const first = new TextDecoder().decode(head.subarray(0, lf < 0 ? head.length : lf));
  try {
    const format = detectLineFormat(first.replace(/\r$/, ""));
    return lf < 0 ? { ...format, header: false } : format;
  } catch (e) {
    if (e instanceof Error) e.message = `${path}:1: ${e.message}`;
    throw e;
  }
}
