/**
 * Streams a raw Criteo file, plain or gzipped, as blocks of whole lines written straight into a
 * caller's buffer (a block ends at the buffer's last LF; the partial line after it starts the next
 * block). Detects gzip by its magic bytes, checksums the bytes read (CRC-32), can stop after a
 * line limit, and reports the bad lines only a reader can see: a line longer than a whole block
 * (`lineLength`) and a gzip stream that ends early or is corrupt (`truncatedGzip`).
 *
 * Lines are not counted unless a line limit is set: the workers count them, so the main thread
 * touches each byte only to read it.
 *
 * Decompression uses `node:zlib`, which, unlike `DecompressionStream` in Deno 2.9, reads
 * multi-member gzip files (as `pigz` and `bgzip` write them) and names a truncated stream.
 *
 * @module
 */
import { constants as zlibConstants, crc32, createGunzip, gunzipSync } from "node:zlib";
import type { BadLineKind } from "./format.ts";

/** A bad line found by the reader itself, placed before or after the lines of its block. */
export interface ReaderBadLine {
  /** `lineLength` (placed before the block's lines) or `truncatedGzip` (after them). */
  kind: Extract<BadLineKind, "lineLength" | "truncatedGzip">;
  /** Whether it is a line of its own (a truncated stream may end exactly between lines). */
  counts: boolean;
  /** What is wrong, for `--strict` messages. */
  what: string;
}

/** A block of whole lines in the caller's buffer. */
export interface LineBlock {
  /** Bytes of the block; it ends in LF (one is added to an unterminated last line). */
  length: number;
  /** Offset of the block in the file's (uncompressed) text. */
  offset: number;
  /** Lines of the block, when the reader counted them (a line limit is set). */
  lines?: number;
  /** Bad lines the reader skipped. */
  skipped: ReaderBadLine[];
}

/** Options of {@linkcode LineBlockReader.open}. */
export interface LineBlockReaderOptions {
  /** Read at most this many lines (bad lines included). Default: all. */
  maxLines?: number;
  /** Checksum the bytes read (the file as stored). Default true. */
  checksum?: boolean;
}

const READ_BYTES = 1 << 20;
/** Compressed bytes {@linkcode readHead} decompresses (at most ~32 MiB of text). */
const HEAD_GZIP_BYTES = 32 << 10;
/** Decompressed bytes read ahead of the caller. */
const AHEAD_BYTES = 32 << 20;
const LF = 10;

/** Whether a file starts with the gzip magic bytes. */
export async function isGzipFile(path: string): Promise<boolean> {
  const file = await Deno.open(path);
  try {
    const head = new Uint8Array(2);
    const n = await file.read(head);
    return n === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    file.close();
  }
}

/**
 * Up to `bytes` bytes of a file's text from its start (decompressed when gzipped): what a
 * format is detected from and a file with no usable sample is diagnosed from. A gzip stream that
 * breaks early gives what it decompressed before.
 */
export async function readHead(path: string, bytes: number): Promise<Uint8Array> {
  // One read serves both: the text itself, or the gzip stream's first compressed bytes.
  const raw = new Uint8Array(Math.max(bytes, HEAD_GZIP_BYTES));
  let got = 0;
  const file = await Deno.open(path);
  try {
    while (got < raw.length) {
      const n = await file.read(raw.subarray(got));
      if (n === null) break;
      got += n;
    }
  } finally {
    file.close();
  }
  if (!(got >= 2 && raw[0] === 0x1f && raw[1] === 0x8b)) return raw.slice(0, Math.min(got, bytes));
  // A cut stream decompresses as far as it goes (sync flush); a corrupt one gives nothing.
  try {
    const text = gunzipSync(raw.subarray(0, Math.min(got, HEAD_GZIP_BYTES)), {
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
    });
    return new Uint8Array(text.buffer, text.byteOffset, Math.min(bytes, text.length)).slice();
  } catch {
    return new Uint8Array(0);
  }
}

/** CRC-32 (as gzip computes it) of `bytes`, continuing from `crc`. */
export function crc32Update(bytes: Uint8Array, crc = 0): number {
  return crc32(bytes, crc) >>> 0;
}

/** CRC-32 (8 hex digits) of the first `bytes` bytes of a file. */
export function crc32Prefix(path: string, bytes: number): Promise<string> {
  return crc32OfRanges(path, [[0, bytes]]);
}

/**
 * CRC-32 (8 hex digits) of the bytes of a file's `[from, from + length)` ranges, read in order
 * (a range past the end of the file counts only the bytes there).
 */
export async function crc32OfRanges(
  path: string,
  ranges: readonly (readonly [from: number, length: number])[],
): Promise<string> {
  let crc = 0;
  const file = await Deno.open(path);
  try {
    const longest = Math.max(1, ...ranges.map(([, length]) => length));
    const buf = new Uint8Array(Math.min(longest, 1 << 20));
    for (const [from, length] of ranges) {
      await file.seek(from, Deno.SeekMode.Start);
      for (let left = length; left > 0;) {
        const n = await file.read(buf.subarray(0, Math.min(buf.length, left)));
        if (n === null) break;
        crc = crc32(buf.subarray(0, n), crc) >>> 0;
        left -= n;
      }
    }
  } finally {
    file.close();
  }
  return crc.toString(16).padStart(8, "0");
}

/**
 * Reads a raw Criteo file block by block.
 *
 * @example
 * ```ts
 * import { LineBlockReader } from "./reader.ts";
 *
 * async function readAll(path = "train.txt") {
 *   const reader = await LineBlockReader.open(path);
 *   const buffer = new Uint8Array(4 << 20);
 *   for (let b; (b = await reader.next(buffer)) !== null;) {
 *     // buffer[0, b.length) holds whole lines, from byte b.offset of the text
 *   }
 *   await reader.close();
 * }
 * ```
 */
export class LineBlockReader {
  /** Whether the file is gzipped. */
  readonly gzip: boolean;
  /** Size of the file in bytes, as stored. */
  readonly fileBytes: number;
  #file: Deno.FsFile;
  #checksum: boolean;
  #crc = 0;
  #hashedBytes = 0;
  #linesLeft: number;
  #lines = 0;
  #offset = 0;
  #carry = new Uint8Array(0);
  #eof = false;
  #done = false;
  #gzipError: string | undefined;
  #chunks: AsyncIterator<Uint8Array> | undefined;
  #pending: Uint8Array | undefined;

  private constructor(
    file: Deno.FsFile,
    size: number,
    gzip: boolean,
    options: LineBlockReaderOptions,
  ) {
    this.#file = file;
    this.fileBytes = size;
    this.gzip = gzip;
    this.#linesLeft = options.maxLines ?? Infinity;
    this.#checksum = options.checksum ?? true;
    if (gzip) this.#chunks = this.#gunzip()[Symbol.asyncIterator]();
  }

  /** Opens `path` for reading. */
  static async open(path: string, options: LineBlockReaderOptions = {}): Promise<LineBlockReader> {
    const gzip = await isGzipFile(path);
    const file = await Deno.open(path);
    const { size } = await file.stat();
    return new LineBlockReader(file, size, gzip, options);
  }

  /** Uncompressed bytes handed out so far. */
  get textBytes(): number {
    return this.#offset;
  }

  /** Lines counted so far (only when a line limit is set). */
  get linesCounted(): number {
    return this.#lines;
  }

  /** Bytes of the file checksummed (all of it once read to the end; less after a line limit). */
  get hashedBytes(): number {
    return this.#hashedBytes;
  }

  /** CRC-32 (8 hex digits) of the bytes checksummed, or undefined without checksums. */
  get crc32(): string | undefined {
    return this.#checksum ? this.#crc.toString(16).padStart(8, "0") : undefined;
  }

  /**
   * Fills `dest` with the next block of whole lines. Returns `null` at the end (the file's end or
   * the line limit). A block may be empty and carry only skipped bad lines.
   */
  async next(dest: Uint8Array): Promise<LineBlock | null> {
    for (;;) {
      if (this.#done) return null;
      const skipped: ReaderBadLine[] = [];
      const offset = this.#offset;
      let len = this.#carry.length;
      if (len >= dest.length) throw new RangeError(`Expected a buffer over ${len} bytes`);
      dest.set(this.#carry);
      while (len < dest.length && !this.#eof) len += await this.#read(dest.subarray(len));
      let cut = len === 0 ? 0 : dest.lastIndexOf(LF, len - 1) + 1;
      if (cut === 0 && len === dest.length) {
        // No LF in a whole buffer: skip that line.
        this.#offset += len;
        len = await this.#skipLine(dest);
        this.#carry = dest.slice(0, len);
        skipped.push({
          kind: "lineLength",
          counts: true,
          what: `Expected a line of at most ${dest.length} bytes but found a longer one`,
        });
        let lines: number | undefined;
        if (this.#linesLeft !== Infinity) {
          lines = 0;
          this.#lines++;
          if (--this.#linesLeft === 0) this.#done = true;
        }
        return { length: 0, offset: this.#offset, lines, skipped };
      }
      let text = cut;
      if (this.#eof && cut < len) {
        if (this.#gzipError !== undefined) {
          // A line cut short by a broken stream: dropped.
          skipped.push(this.#truncated(true));
          text = len;
          len = cut;
        } else if (len < dest.length) {
          // An unterminated last line: a line all the same.
          text = len;
          dest[len++] = LF;
          cut = len;
        }
      }
      let lines: number | undefined;
      if (this.#linesLeft !== Infinity) {
        lines = 0;
        let end = 0;
        while (end < cut && lines < this.#linesLeft) {
          end = dest.indexOf(LF, end) + 1;
          lines++;
        }
        if (end < cut) {
          // The limit: what follows is not read.
          cut = text = end;
          skipped.length = 0;
        }
        if (skipped.length > 0) lines++; // the truncated line
        this.#lines += lines;
        this.#linesLeft -= lines;
        if (this.#linesLeft <= 0) this.#done = true;
        if (skipped.length > 0) lines--;
      }
      this.#carry = this.#done ? new Uint8Array(0) : dest.slice(cut, len);
      if (this.#eof && this.#carry.length === 0) {
        this.#done = true;
        if (this.#gzipError !== undefined) skipped.push(this.#truncated(false));
      }
      this.#offset += text;
      if (cut === 0 && skipped.length === 0) continue;
      return { length: cut, offset, lines, skipped };
    }
  }

  #truncated(counts: boolean): ReaderBadLine {
    const what = `Expected a complete gzip stream but found: ${this.#gzipError}`;
    this.#gzipError = undefined;
    return { kind: "truncatedGzip", counts, what };
  }

  /** Closes the file. */
  async close(): Promise<void> {
    await this.#chunks?.return?.();
    try {
      this.#file.close();
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource)) throw e;
    }
  }

  /**
   * Discards bytes up to and including the next LF, then moves what follows it to the front of
   * `dest`; returns how many bytes that is.
   */
  async #skipLine(dest: Uint8Array): Promise<number> {
    for (;;) {
      const n = await this.#read(dest);
      if (n === 0 && this.#eof) return 0;
      const nl = dest.subarray(0, n).indexOf(LF);
      if (nl >= 0) {
        dest.copyWithin(0, nl + 1, n);
        this.#offset += nl + 1;
        return n - nl - 1;
      }
      this.#offset += n;
    }
  }

  /** Reads into `into`: returns the bytes read, 0 (and sets eof) at the end of the data. */
  async #read(into: Uint8Array): Promise<number> {
    if (!this.gzip) {
      const n = await this.#file.read(into);
      if (n === null) {
        this.#eof = true;
        return 0;
      }
      this.#hash(into.subarray(0, n));
      return n;
    }
    let part = this.#pending;
    this.#pending = undefined;
    if (part === undefined) {
      try {
        const r = await this.#chunks!.next();
        if (r.done) {
          this.#eof = true;
          return 0;
        }
        part = r.value;
      } catch (e) {
        this.#eof = true;
        this.#gzipError = e instanceof Error ? e.message : String(e);
        return 0;
      }
    }
    if (part.length > into.length) {
      this.#pending = part.subarray(into.length);
      part = part.subarray(0, into.length);
    }
    into.set(part);
    return part.length;
  }

  #hash(bytes: Uint8Array): void {
    if (this.#checksum) this.#crc = crc32(bytes, this.#crc) >>> 0;
    this.#hashedBytes += bytes.length;
  }

  /**
   * The decompressed chunks, read ahead up to {@linkcode AHEAD_BYTES} while the caller is busy.
   * Output is queued from `data` events, so none is lost when the stream then fails.
   */
  async *#gunzip(): AsyncGenerator<Uint8Array> {
    const gz = createGunzip({ chunkSize: READ_BYTES });
    const file = this.#file;
    const queue: Uint8Array[] = [];
    let queued = 0, ended = false, stop = false;
    let error: Error | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    gz.on("data", (chunk: Uint8Array) => {
      queue.push(chunk);
      queued += chunk.length;
      if (queued > AHEAD_BYTES) gz.pause();
      notify();
    });
    gz.on("end", () => {
      ended = true;
      notify();
    });
    gz.on("error", (e: Error) => {
      error ??= e;
      notify();
    });
    const feed = (async () => {
      try {
        for (;;) {
          const raw = new Uint8Array(READ_BYTES);
          const n = await file.read(raw);
          if (n === null || stop || gz.destroyed) break;
          const part = raw.subarray(0, n);
          this.#hash(part);
          if (!gz.write(part)) {
            await new Promise<void>((resolve) => {
              const done = () => {
                gz.off("drain", done);
                gz.off("close", done);
                resolve();
              };
              gz.on("drain", done);
              gz.on("close", done);
            });
          }
        }
        if (!gz.destroyed) gz.end();
      } catch (e) {
        gz.destroy(e as Error);
      }
    })();
    try {
      for (;;) {
        const chunk = queue.shift();
        if (chunk !== undefined) {
          queued -= chunk.length;
          if (queued <= AHEAD_BYTES / 2 && gz.isPaused()) gz.resume();
          yield chunk;
          continue;
        }
        if (error !== undefined) throw error;
        if (ended) return;
        await new Promise<void>((resolve) => wake = resolve);
      }
    } finally {
      stop = true;
      gz.destroy();
      await feed;
    }
  }
}
