/**
 * Synthetic raw Criteo TSV: the samples of {@linkcode SyntheticCriteo} written as Kaggle /
 * Terabyte text lines, plain or gzipped, at any size. For tests and the preprocessing benchmark.
 *
 * Each dense value `log(x + 1)` is written as the integer `x` (`round(exp(v) - 1)`); a zero is
 * written as an empty field (missing) for about half the samples, and as `-1` (which Criteo
 * preprocessing clamps back to 0) in feature I2 for a quarter, so both paths are exercised. Each
 * categorical id is written as 8 lowercase hexadecimal digits of a seeded 32-bit bijection of the
 * id (as Criteo's hashed values look), so distinct ids stay distinct.
 *
 * @module
 */
import { createGzip } from "node:zlib";
import { allocateOneHotChunk, type BatchChunk } from "../../engine/batch.ts";
import { hash32 } from "../../engine/rng.ts";
import { KAGGLE_TABLE_ROWS } from "../../engine/spec.ts";
import { SyntheticCriteo, type SyntheticStream } from "../synthetic.ts";
import { CATEGORICAL_FEATURES, DENSE_FEATURES } from "./format.ts";

/** Options of {@linkcode RawTsvGenerator}. */
export interface RawTsvOptions {
  /** Seed of the synthetic data and of the hexadecimal encoding. Default 1. */
  seed?: number;
  /** Rows of the 26 tables the ids are drawn from. Default: the Kaggle tables. */
  tableRows?: readonly number[];
  /** Mean click rate. Default 0.25. */
  clickRate?: number;
  /** Which synthetic stream to write. Default `"train"`. */
  stream?: SyntheticStream;
}

const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");
const SAMPLES_PER_BATCH = 8192;
/** Longest line the generator writes: 13 integers of up to 11 bytes, 26 × 8 hex, 40 separators. */
const MAX_LINE = 2 + DENSE_FEATURES * 12 + CATEGORICAL_FEATURES * 9 + 1;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Writes synthetic samples as raw Criteo TSV lines. Sample `i` always gives the same line.
 *
 * @example
 * ```ts
 * const gen = new RawTsvGenerator({ seed: 1 });
 * const text = new TextDecoder().decode(gen.lines(0, 2)); // two lines, 40 fields each
 * ```
 */
export class RawTsvGenerator {
  /** The synthetic data written. */
  readonly data: SyntheticCriteo;
  /** Value written for id `id` of table `t` is `fmix32(imul(id, 0x9e3779b1) ^ keys[t])`. */
  readonly keys: Int32Array;
  #stream: SyntheticStream;
  #seed: number;
  #chunk: BatchChunk;

  /** Builds the generator (calibrates the synthetic teacher, about 0.1 s). */
  constructor(options: RawTsvOptions = {}) {
    const { seed = 1, tableRows = KAGGLE_TABLE_ROWS, clickRate = 0.25, stream = "train" } = options;
    if (tableRows.length !== CATEGORICAL_FEATURES) {
      throw new RangeError(
        `Expected ${CATEGORICAL_FEATURES} table sizes but found ${tableRows.length}`,
      );
    }
    const spec = { denseFeatures: DENSE_FEATURES, tableRows: [...tableRows] };
    this.data = new SyntheticCriteo(spec, { seed, clickRate });
    this.keys = Int32Array.from(tableRows, (_, t) => hash32(seed, 0x7e57, t) | 0);
    this.#stream = stream;
    this.#seed = seed;
    this.#chunk = allocateOneHotChunk(spec, SAMPLES_PER_BATCH, SAMPLES_PER_BATCH);
  }

  /** The hexadecimal value written for id `id` of table `t`, as a number. */
  valueOf(t: number, id: number): number {
    return fmix32(Math.imul(id, 0x9e3779b1) ^ this.keys[t]);
  }

  /** The TSV lines of samples `[first, first + count)`, each ending in LF. */
  lines(first: number, count: number): Uint8Array {
    const out = new Uint8Array(count * MAX_LINE);
    let p = 0;
    const chunk = this.#chunk;
    for (let done = 0; done < count;) {
      const n = Math.min(SAMPLES_PER_BATCH, count - done);
      const view = { ...chunk, samples: n };
      this.data.fill(view, this.#stream, first + done);
      p = this.#encode(view, first + done, out, p);
      done += n;
    }
    return out.subarray(0, p);
  }

  #encode(chunk: BatchChunk, first: number, out: Uint8Array, p: number): number {
    const { dense, labels, indices } = chunk;
    const keys = this.keys;
    const digits = new Uint8Array(12);
    for (let s = 0; s < chunk.samples; s++) {
      const h = hash32(this.#seed, 0x7e58, first + s);
      out[p++] = labels[s] === 1 ? 49 : 48;
      for (let j = 0; j < DENSE_FEATURES; j++) {
        out[p++] = 9;
        const x = Math.round(Math.expm1(dense[s * DENSE_FEATURES + j]));
        if (x === 0) {
          // A zero: missing (empty) for half the samples, `-1` in I2 for a quarter.
          if ((h >>> j) & 1) continue;
          if (j === 1 && (h >>> 20) & 1) {
            out[p++] = 45;
            out[p++] = 49;
            continue;
          }
        }
        let v = x, n = 0;
        do {
          digits[n++] = 48 + (v % 10);
          v = Math.floor(v / 10);
        } while (v > 0);
        while (n > 0) out[p++] = digits[--n];
      }
      for (let t = 0; t < CATEGORICAL_FEATURES; t++) {
        out[p++] = 9;
        const value = fmix32(Math.imul(indices[t][s], 0x9e3779b1) ^ keys[t]);
        for (let shift = 28; shift >= 0; shift -= 4) out[p++] = HEX_DIGITS[(value >>> shift) & 15];
      }
      out[p++] = 10;
    }
    return p;
  }
}

/** Options of {@linkcode writeRawTsv}. */
export interface WriteRawTsvOptions extends RawTsvOptions {
  /** Lines to write. One of `lines` and `bytes` is required. */
  lines?: number;
  /** Write whole lines until the (uncompressed) text reaches at least this many bytes. */
  bytes?: number;
  /** Gzip the file. Default false. */
  gzip?: boolean;
  /** First sample of the stream. Default 0. */
  firstSample?: number;
}

/**
 * Writes a synthetic raw TSV file (gzipped when asked) and returns its line count and
 * uncompressed size.
 */
export async function writeRawTsv(
  path: string,
  options: WriteRawTsvOptions,
): Promise<{ lines: number; bytes: number }> {
  const { lines: maxLines = Infinity, bytes: maxBytes = Infinity, gzip = false } = options;
  if (maxLines === Infinity && maxBytes === Infinity) {
    throw new TypeError("Expected a line count or a byte count but found neither");
  }
  const gen = new RawTsvGenerator(options);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const gz = gzip ? createGzip({ level: 6 }) : undefined;
  const gzDone = gz
    ? (async () => {
      for await (const part of gz) await writeAll(file, part as Uint8Array);
    })()
    : undefined;
  let lines = 0, bytes = 0;
  let next = options.firstSample ?? 0;
  try {
    while (lines < maxLines && bytes < maxBytes) {
      const n = Math.min(65536, maxLines - lines);
      let text = gen.lines(next, n);
      if (bytes + text.length > maxBytes) {
        // Stop at the first line that reaches the byte count.
        let cut = 0;
        while (bytes + cut < maxBytes) cut = text.indexOf(10, cut) + 1;
        text = text.subarray(0, cut);
      }
      let count = 0;
      for (let i = text.indexOf(10); i >= 0; i = text.indexOf(10, i + 1)) count++;
      if (gz) {
        if (!gz.write(text)) await new Promise((resolve) => gz.once("drain", resolve));
      } else await writeAll(file, text);
      lines += count;
      bytes += text.length;
      next += count;
    }
    if (gz) {
      gz.end();
      await gzDone;
    }
  } finally {
    file.close();
  }
  return { lines, bytes };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
}
