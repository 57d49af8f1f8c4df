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
import { DICTIONARIES_DIR, finalDictionaryFileName, IdDictionary } from "./dictionary.ts";
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
    /**
     * Map with the final dictionaries in the folder `dir` instead of numbering (a test set read
     * with a training set's rows): a value's row is its id plus `offset` (1 in frequency mode,
     * whose row 0 is shared), a value the dictionary lacks gets row 0.
     */
    frozen?: { dir: string; offset: number };
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
  | {
    type: "finished";
    tables: number[];
    rows: number[];
    /** Frozen mode: values of each table that the dictionary lacked (mapped to row 0). */
    unseen?: number[];
  }
  | { type: "error"; message: string };

/** Path of table `t`'s saved dictionary in a cache folder. */
export function dictionaryFileName(t: number): string {
  return `state/${finalDictionaryFileName(t)}`;
}

let tables: number[] = [];
let frozen: { dir: string; offset: number } | undefined;
let unseen: number[] = [];
let dicts: IdDictionary[] = [];
let counting = false;
let slots: { input: Uint8Array; output: ParsedColumns }[] = [];
let settings: Omit<ParseSettings, "source" | "offset" | "format">;

function handle(msg: WorkerRequest): WorkerReply {
  switch (msg.type) {
    case "init":
      tables = msg.tables;
      frozen = msg.frozen;
      counting = msg.counting && !frozen;
      dicts = frozen
        ? tables.map((t) => loadFinal(frozen!.dir, t))
        : tables.map(() => new IdDictionary(counting));
      unseen = tables.map(() => 0);
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
        const column = output.categorical.subarray(start, start + msg.samples);
        if (frozen) unseen[i] += dicts[i].lookupInPlace(column, msg.samples, frozen.offset);
        else dicts[i].mapInPlace(column, msg.samples);
      }
      return { type: "mapped", slot: msg.slot };
    }
    case "save":
      if (frozen) return { type: "saved" };
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
      if (frozen) return { type: "loaded" };
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
  if (frozen) {
    const rows = dicts.map((d) => Math.max(1, d.size + frozen!.offset));
    return { type: "finished", tables, rows, unseen };
  }
  Deno.mkdirSync(`${dir}/${DICTIONARIES_DIR}`, { recursive: true });
  if (!counting) {
    for (const [i, t] of tables.entries()) saveFinal(dir, t, dicts[i].values);
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
  for (const [i, t] of tables.entries()) {
    const { remap, rows } = remaps[i];
    const values = dicts[i].values;
    const kept = new Uint32Array(rows - 1);
    for (let id = 0; id < remap.length; id++) if (remap[id] > 0) kept[remap[id] - 1] = values[id];
    saveFinal(dir, t, kept);
  }
  return { type: "finished", tables, rows: remaps.map((r) => r.rows) };
}

/**
 * Writes table `t`'s final dictionary (its rows' values) into the cache `dir`: a new file renamed
 * into place, so hard links to the old one (a results folder's copy) keep their contents.
 */
function saveFinal(dir: string, t: number, values: Uint32Array): void {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const path = `${dir}/${DICTIONARIES_DIR}/${finalDictionaryFileName(t)}`;
  Deno.writeFileSync(`${path}.tmp`, bytes);
  Deno.renameSync(`${path}.tmp`, path);
}

/** Table `t`'s final dictionary from the dictionaries folder `dir`, as a frozen lookup. */
function loadFinal(dir: string, t: number): IdDictionary {
  const path = `${dir}/${finalDictionaryFileName(t)}`;
  const bytes = Deno.readFileSync(path);
  if (bytes.length % 4 !== 0) {
    throw new RangeError(`Expected ${path} to hold 4-byte values but found ${bytes.length} bytes`);
  }
  const values = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const dict = new IdDictionary();
  dict.restore(values);
  return dict;
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
