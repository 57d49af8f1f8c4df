/**
 * A preprocessing Worker. It parses whole blocks (any worker may parse any block) and owns the
 * dictionaries of some tables: it numbers those tables' values in every block, in block order, so
 * ids follow first appearance exactly as one thread would give them. Blocks live in shared
 * memory; messages carry only slot numbers and counts.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { chunkFileName, chunkLayout } from "./cache.ts";
import { IdDictionary } from "./dictionary.ts";
import type { LineFormat } from "./format.ts";
import {
  type BlockParse,
  parseBlock,
  type ParsedColumns,
  parsedColumnsView,
  type ParseSettings,
} from "./parse.ts";

/** Messages to a preprocessing worker. */
export type WorkerRequest =
  | {
    type: "init";
    /** Tables this worker numbers. */
    tables: number[];
    /** Count occurrences (frequency mode). */
    counting: boolean;
    /** Samples each slot's columns hold. */
    capacity: number;
    /** Per slot: the block's text and its parsed columns. */
    slots: { input: SharedArrayBuffer; output: SharedArrayBuffer }[];
    settings: Omit<ParseSettings, "source" | "offset" | "format">;
  }
  | {
    type: "parse";
    slot: number;
    /** Lines of `[start, length)` of the slot's text (start > 0 skips a header line). */
    start: number;
    length: number;
    offset: number;
    source: number;
    format: LineFormat;
  }
  | { type: "map"; slot: number; samples: number }
  | { type: "save"; dir: string }
  | { type: "load"; dir: string }
  | { type: "finish"; dir: string; threshold: number; chunks: number[] };

/** Replies of a preprocessing worker. */
export type WorkerReply =
  | { type: "ready" }
  | { type: "parsed"; slot: number; result: BlockParse }
  | { type: "mapped"; slot: number }
  | { type: "saved" }
  | { type: "loaded" }
  | { type: "finished"; tables: number[]; rows: number[] }
  | { type: "error"; message: string };

/** Path of table `t`'s saved dictionary in a cache folder. */
export function dictionaryFileName(t: number): string {
  return `state/table-${String(t).padStart(2, "0")}.bin`;
}

let tables: number[] = [];
let dicts: IdDictionary[] = [];
let counting = false;
let slots: { input: Uint8Array; output: ParsedColumns }[] = [];
let settings: Omit<ParseSettings, "source" | "offset" | "format">;

function handle(msg: WorkerRequest): WorkerReply {
  switch (msg.type) {
    case "init":
      tables = msg.tables;
      counting = msg.counting;
      dicts = tables.map(() => new IdDictionary(counting));
      settings = msg.settings;
      slots = msg.slots.map((s) => ({
        input: new Uint8Array(s.input),
        output: parsedColumnsView(s.output, msg.capacity),
      }));
      return { type: "ready" };
    case "parse": {
      const { input, output } = slots[msg.slot];
      const result = parseBlock(input, msg.start, msg.length, output, {
        ...settings,
        source: msg.source,
        offset: msg.offset,
        format: msg.format,
      });
      return { type: "parsed", slot: msg.slot, result };
    }
    case "map": {
      const { output } = slots[msg.slot];
      for (const [i, t] of tables.entries()) {
        const start = t * output.capacity;
        dicts[i].mapInPlace(output.categorical.subarray(start, start + msg.samples), msg.samples);
      }
      return { type: "mapped", slot: msg.slot };
    }
    case "save":
      for (const [i, t] of tables.entries()) {
        const d = dicts[i];
        const values = new Uint8Array(d.values.buffer, 0, 4 * d.size);
        const counts = d.counts;
        const bytes = new Uint8Array(values.length * (counts ? 2 : 1));
        bytes.set(values);
        if (counts) bytes.set(new Uint8Array(counts.buffer, 0, 4 * d.size), values.length);
        Deno.writeFileSync(`${msg.dir}/${dictionaryFileName(t)}`, bytes);
      }
      return { type: "saved" };
    case "load":
      for (const [i, t] of tables.entries()) {
        const bytes = Deno.readFileSync(`${msg.dir}/${dictionaryFileName(t)}`);
        const size = bytes.length / (counting ? 8 : 4);
        const values = new Uint32Array(bytes.buffer, bytes.byteOffset, size);
        const counts = counting
          ? new Int32Array(bytes.buffer, bytes.byteOffset + 4 * size, size)
          : undefined;
        dicts[i] = new IdDictionary(counting);
        dicts[i].restore(values, counts);
      }
      return { type: "loaded" };
    case "finish":
      return finish(msg.dir, msg.threshold, msg.chunks);
  }
}

/**
 * The table sizes; in frequency mode, renumbers this worker's tables in every chunk file first:
 * values seen at least `threshold` times get rows 1, 2, … in order of first appearance, the
 * others share row 0.
 */
function finish(dir: string, threshold: number, chunks: number[]): WorkerReply {
  if (!counting) {
    return { type: "finished", tables, rows: dicts.map((d) => Math.max(1, d.size)) };
  }
  const remaps = dicts.map((d) => {
    const counts = d.counts!;
    const remap = new Int32Array(d.size);
    let next = 1;
    for (let id = 0; id < d.size; id++) remap[id] = counts[id] >= threshold ? next++ : 0;
    return { remap, rows: next };
  });
  let column = new Int32Array(0);
  for (const [c, n] of chunks.entries()) {
    const layout = chunkLayout(n);
    if (column.length < n) column = new Int32Array(n);
    const view = column.subarray(0, n);
    const bytes = new Uint8Array(view.buffer, 0, 4 * n);
    const file = Deno.openSync(`${dir}/${chunkFileName(c)}`, { read: true, write: true });
    try {
      for (const [i, t] of tables.entries()) {
        const offset = layout.categorical + 4 * n * t;
        file.seekSync(offset, Deno.SeekMode.Start);
        for (let got = 0; got < bytes.length;) {
          const r = file.readSync(bytes.subarray(got));
          if (r === null) throw new RangeError(`Expected ${bytes.length} bytes at ${offset}`);
          got += r;
        }
        const remap = remaps[i].remap;
        for (let s = 0; s < n; s++) view[s] = remap[view[s]];
        file.seekSync(offset, Deno.SeekMode.Start);
        for (let put = 0; put < bytes.length;) put += file.writeSync(bytes.subarray(put));
      }
    } finally {
      file.close();
    }
  }
  return { type: "finished", tables, rows: remaps.map((r) => r.rows) };
}

self.onmessage = (e: MessageEvent<WorkerRequest>) => {
  let reply: WorkerReply;
  try {
    reply = handle(e.data);
  } catch (err) {
    reply = { type: "error", message: err instanceof Error ? err.message : String(err) };
  }
  self.postMessage(reply);
};
