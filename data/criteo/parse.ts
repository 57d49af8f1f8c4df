/**
 * Parses blocks of raw Criteo lines (TSV, or the Kaggle competition's CSV with an Id column; LF
 * or CR LF line ends) straight from bytes into columns: no string is made per line or field on
 * the fast path. A line that fails the fast path is classified by a slow, exact validator
 * ({@linkcode describeBadLine}) and skipped.
 *
 * Values: the label as 0/1; each integer `x` as `log(x + 1)` in float32, missing and negative
 * values as 0 (`log 1`); each categorical as its 32-bit value (`parseInt(hex, 16)`, missing = 0),
 * taken modulo the max-ind-range when one is set.
 *
 * @module
 */
import {
  BAD_LINE_KINDS,
  type BadLineKind,
  CATEGORICAL_FEATURES,
  DENSE_FEATURES,
  FIELDS,
  fieldsOf,
  FIRST_BAD_LINES,
  type LineFormat,
  MAX_HEX_DIGITS,
  MAX_LINE_BYTES,
  separatorByte,
  TSV_FORMAT,
} from "./format.ts";

/** Columns a block is parsed into; every array holds `capacity` samples. */
export interface ParsedColumns {
  /** Samples the arrays have room for (at least the lines of a block). */
  capacity: number;
  /** Click labels, 0 or 1. */
  labels: Uint8Array;
  /** Line of each sample: 0-based within its block while parsed, 1-based in its file in a cache. */
  lines: Uint32Array;
  /** `log(x + 1)` of the integers, sample-major: `dense[s * 13 + j]`. */
  dense: Float32Array;
  /** Categorical values, table-major: `categorical[t * capacity + s]`. */
  categorical: Uint32Array;
}

/** Shortest good line: a label, 39 tabs (every other field empty) and LF. */
const MIN_LINE_BYTES = FIELDS + 1;

/** Most samples `bytes` of text can hold: the capacity parse columns need for a block of them. */
export function samplesCapacity(bytes: number): number {
  return Math.floor(bytes / MIN_LINE_BYTES);
}

/** Bytes of the shared buffer behind {@linkcode parsedColumnsView} for `capacity` samples. */
export function parsedColumnsBytes(capacity: number): number {
  return ((capacity + 3) & ~3) + 4 * capacity * (1 + DENSE_FEATURES + CATEGORICAL_FEATURES);
}

/** Parse columns laid out in `buffer` (from {@linkcode parsedColumnsBytes}). */
export function parsedColumnsView(
  buffer: ArrayBufferLike,
  capacity: number,
): ParsedColumns {
  const lines = (capacity + 3) & ~3;
  const dense = lines + 4 * capacity;
  const categorical = dense + 4 * DENSE_FEATURES * capacity;
  return {
    capacity,
    labels: new Uint8Array(buffer, 0, capacity),
    lines: new Uint32Array(buffer, lines, capacity),
    dense: new Float32Array(buffer, dense, DENSE_FEATURES * capacity),
    categorical: new Uint32Array(buffer, categorical, CATEGORICAL_FEATURES * capacity),
  };
}

/** Settings of {@linkcode parseBlock}. */
export interface ParseSettings {
  /** Categorical values are taken modulo this when it is positive (DLRM's `--max-ind-range`). */
  maxIndRange: number;
  /** Fraction of negative (label 0) lines dropped, in [0, 1) (DLRM's `--data-sub-sample-rate`). */
  subsampleRate: number;
  /** Seed of the sub-sampling decisions. */
  seed: number;
  /** Index of the source file (a sub-sampling decision depends on the file and the line). */
  source: number;
  /** Offset of the block in the file's text (a decision depends on the line's offset). */
  offset: number;
  /** The file's line format (separator, Id column). Default: Criteo's TSV. */
  format?: LineFormat;
}

/** What {@linkcode parseBlock} found in a block. */
export interface BlockParse {
  /** Samples written to the columns (good lines not dropped by sub-sampling). */
  samples: number;
  /** Lines of the block. */
  lines: number;
  /** Good negative lines dropped by sub-sampling. */
  subsampled: number;
  /** Bad lines per kind, in {@linkcode BAD_LINE_KINDS} order. */
  badCounts: number[];
  /** First bad lines per kind (0-based in the block), in {@linkcode BAD_LINE_KINDS} order. */
  badLines: number[][];
  /** The block's first bad line (0-based in the block), detailed. */
  firstBad?: { line: number; kind: BadLineKind; what: string };
}

/** What {@linkcode parseBlock} finds in a block without lines. */
export function emptyBlockParse(): BlockParse {
  return {
    samples: 0,
    lines: 0,
    subsampled: 0,
    badCounts: BAD_LINE_KINDS.map(() => 0),
    badLines: BAD_LINE_KINDS.map(() => []),
  };
}

/** Value of each byte as a hexadecimal digit, -1 for other bytes. */
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[97 + i] = HEX[65 + i] = 10 + i;

/** `log(x + 1)` for small `x`, so most integers cost no logarithm. */
const LOG1P = Float64Array.from({ length: 4096 }, (_, x) => Math.log1p(x));

const INT_MAX = 2147483647;
const LF = 10, CR = 13, MINUS = 45, ZERO = 48, NINE = 57;

/**
 * Whether the sub-sampling keeps a good negative line: a seeded hash of `(seed, source, offset)`,
 * `offset` the line's byte offset in the file's text, against the rate. The decision depends on
 * nothing else (not on how lines are blocked, nor on other lines).
 */
export function keepsNegative(
  seed: number,
  source: number,
  offset: number,
  subsampleRate: number,
): boolean {
  let h = Math.imul(seed ^ 0x5ab5a3c1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ source, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ Math.floor(offset / 4294967296), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ offset, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) >= subsampleRate * 4294967296;
}

/**
 * Parses the lines of `bytes[start, end)` into `out`, samples from index 0, each with its 0-based
 * line in the block. Every line must end in LF (`bytes[end - 1]` is LF; a CR before it is part of
 * the line end), and `out.capacity` must be at least {@linkcode samplesCapacity} of the range.
 * Bad lines are counted by kind and skipped.
 */
export function parseBlock(
  bytes: Uint8Array,
  start: number,
  end: number,
  out: ParsedColumns,
  settings: ParseSettings,
): BlockParse {
  if (end > start && bytes[end - 1] !== LF) {
    throw new RangeError(`Expected the block to end in LF but found byte ${bytes[end - 1]}`);
  }
  const { labels, lines, dense, categorical, capacity } = out;
  const range = settings.maxIndRange > 0 ? settings.maxIndRange : 0;
  const rate = settings.subsampleRate;
  const { seed, source } = settings;
  const format = settings.format ?? TSV_FORMAT;
  const SEP = separatorByte(format);
  const idColumn = format.idColumn;
  const base = settings.offset - start;
  const badCounts = BAD_LINE_KINDS.map(() => 0);
  const badLines: number[][] = BAD_LINE_KINDS.map(() => []);
  let firstBad: BlockParse["firstBad"];
  let s = 0, line = 0, subsampled = 0;
  let p = start;
  while (p < end) {
    const lineStart = p;
    let ok = false;
    let label = 0;
    parse: {
      if (s >= capacity) {
        throw new RangeError(`Expected at most ${capacity} samples in the block but found more`);
      }
      if (idColumn) {
        const from = p;
        while (bytes[p] >= ZERO && bytes[p] <= NINE) p++;
        if (p === from || bytes[p] !== SEP) break parse;
        p++;
      }
      label = bytes[p] - ZERO;
      if ((label !== 0 && label !== 1) || bytes[p + 1] !== SEP) break parse;
      p += 2;
      const d0 = s * DENSE_FEATURES;
      for (let j = 0; j < DENSE_FEATURES; j++) {
        let c = bytes[p];
        let negative = false;
        if (c === MINUS) {
          negative = true;
          c = bytes[++p];
          if (c < ZERO || c > NINE) break parse;
        }
        let v = 0;
        while (c >= ZERO && c <= NINE) {
          v = v * 10 + (c - ZERO);
          c = bytes[++p];
        }
        if (c !== SEP || v > INT_MAX + (negative ? 1 : 0)) break parse;
        p++;
        dense[d0 + j] = negative ? 0 : v < 4096 ? LOG1P[v] : Math.log1p(v);
      }
      for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
        let h = 0, digits = 0;
        let d = HEX[bytes[p]];
        while (d >= 0) {
          h = (h << 4) | d;
          digits++;
          d = HEX[bytes[++p]];
        }
        if (digits > MAX_HEX_DIGITS) break parse;
        if (t < CATEGORICAL_FEATURES - 1) {
          if (bytes[p] !== SEP) break parse;
        } else if (bytes[p] === CR && bytes[p + 1] === LF) {
          p++;
        } else if (bytes[p] !== LF) {
          break parse;
        }
        p++;
        const value = h >>> 0;
        categorical[t * capacity + s] = range ? value % range : value;
      }
      ok = p - lineStart <= MAX_LINE_BYTES;
    }
    if (ok) {
      if (label === 0 && rate > 0 && !keepsNegative(seed, source, base + lineStart, rate)) {
        subsampled++;
      } else {
        labels[s] = label;
        lines[s] = line;
        s++;
      }
    } else {
      const lineEnd = bytes.indexOf(LF, lineStart);
      const bad = describeBadLine(bytes.subarray(lineStart, lineEnd), format);
      if (bad === undefined) {
        throw new Error(
          `Expected line ${line} to be bad, as the fast parser found, but it is valid`,
        );
      }
      const k = BAD_LINE_KINDS.indexOf(bad.kind);
      badCounts[k]++;
      if (badLines[k].length < FIRST_BAD_LINES) badLines[k].push(line);
      firstBad ??= { line, ...bad };
      p = lineEnd + 1;
    }
    line++;
  }
  return { samples: s, lines: line, subsampled, badCounts, badLines, firstBad };
}

function shown(field: string): string {
  return JSON.stringify(field.length > 24 ? `${field.slice(0, 24)}…` : field);
}

/**
 * Classifies a line (without its LF; a CR before the LF is part of the line end) that is not a
 * valid Criteo line of `format`: the first of {@linkcode BAD_LINE_KINDS} that applies, scanning
 * fields left to right. Returns `undefined` for a valid line.
 */
export function describeBadLine(
  line: Uint8Array,
  format: LineFormat = TSV_FORMAT,
): { kind: BadLineKind; what: string } | undefined {
  const fieldCount = fieldsOf(format);
  const body = line.length > 0 && line[line.length - 1] === CR
    ? line.subarray(0, line.length - 1)
    : line;
  if (body.length === 0) {
    return { kind: "empty", what: `Expected ${fieldCount} fields but found an empty line` };
  }
  const cr = body.indexOf(CR);
  if (cr >= 0) {
    return {
      kind: "carriageReturn",
      what: `Expected LF or CR LF line ends but found a CR at byte ${cr + 1} of the line`,
    };
  }
  if (line.length + 1 > MAX_LINE_BYTES) {
    return {
      kind: "lineLength",
      what: `Expected a line of at most ${MAX_LINE_BYTES} bytes but found ${line.length + 1}`,
    };
  }
  const comma = format.separator === "comma";
  const fields = new TextDecoder().decode(body).split(comma ? "," : "\t");
  if (fields.length !== fieldCount) {
    return {
      kind: "fields",
      what: `Expected ${fieldCount} ${
        comma ? "comma" : "tab"
      }-separated fields but found ${fields.length}`,
    };
  }
  const first = format.idColumn ? 1 : 0;
  if (format.idColumn && !/^[0-9]+$/.test(fields[0])) {
    return { kind: "id", what: `Expected a decimal Id in field 1 but found ${shown(fields[0])}` };
  }
  if (fields[first] !== "0" && fields[first] !== "1") {
    return {
      kind: "label",
      what: `Expected a label of 0 or 1${first ? " in field 2" : ""} but found ${
        shown(fields[first])
      }`,
    };
  }
  for (let j = 0; j < DENSE_FEATURES; j++) {
    const f = fields[first + 1 + j];
    if (f === "") continue;
    const v = Number(f);
    if (!/^-?[0-9]+$/.test(f) || v > INT_MAX || v < -INT_MAX - 1) {
      return {
        kind: "integer",
        what: `Expected an integer in [-2^31, 2^31) or nothing in field ${first + 2 + j} (I${
          j + 1
        }) but found ${shown(f)}`,
      };
    }
  }
  for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
    const f = fields[first + 1 + DENSE_FEATURES + t];
    const field = first + 2 + DENSE_FEATURES + t;
    if (!/^[0-9a-fA-F]*$/.test(f)) {
      return {
        kind: "hexadecimal",
        what: `Expected hexadecimal digits or nothing in field ${field} (C${t + 1}) but found ${
          shown(f)
        }`,
      };
    }
    if (f.length > MAX_HEX_DIGITS) {
      return {
        kind: "categoricalLength",
        what: `Expected at most ${MAX_HEX_DIGITS} hexadecimal digits in field ${field} (C${
          t + 1
        }) but found ${f.length}`,
      };
    }
  }
  return undefined;
}
