/**
 * Where embedding tables live on the GPU. Tables are packed, in order, into "arenas": GPU buffers
 * of at most `arenaBytes` each (the device's largest storage binding). A table that does not fit
 * the rest of an arena is split at a row boundary and continues in the next one, so a table of any
 * size (the Terabyte model's 2.56 GB table, with 2 GiB bindings) is a list of segments. Kernels
 * bind up to `arenasPerGroup` arenas at once; with more arenas, a table kernel is dispatched once
 * per group of arenas, each dispatch handling the segments that lie in its group.
 *
 * @module
 */

/** A contiguous run of rows of one table inside one arena. */
export interface TableSegment {
  table: number;
  /** First row and one past the last. */
  rowStart: number;
  rowEnd: number;
  /** Arena and float offset of `rowStart` in it. */
  arena: number;
  offset: number;
}

/** The arenas' sizes and every table's segments. */
export interface TablePlan {
  /** Floats in each arena. */
  arenaFloats: number[];
  /** Segments, table by table in row order. */
  segments: TableSegment[];
  /** Index of each table's first segment, and its count. */
  firstSegment: number[];
  segmentCount: number[];
  /** Arenas bound together by one dispatch. */
  arenasPerGroup: number;
  /** Number of arena groups (dispatches per table kernel). */
  groups: number;
}

/**
 * Packs tables of `tableRows` rows of `dim` floats into arenas of at most `arenaBytes` bytes,
 * each kernel binding at most `arenasPerGroup` of them.
 */
export function planTables(
  tableRows: readonly number[],
  dim: number,
  arenaBytes: number,
  arenasPerGroup: number,
): TablePlan {
  // Row starts 16-byte aligned keep vector loads possible; a row must fit an arena.
  const rowFloats = dim;
  const arenaRows = Math.floor(arenaBytes / 4 / rowFloats);
  if (arenaRows < 1) {
    throw new RangeError(
      `Expected arenas of at least one row (${dim * 4} bytes) but found ${arenaBytes}`,
    );
  }
  if (!(arenasPerGroup >= 1)) throw new RangeError("Expected at least one arena per group");
  const arenaFloats: number[] = [];
  const segments: TableSegment[] = [];
  const firstSegment: number[] = [];
  const segmentCount: number[] = [];
  let used = arenaRows; // rows used in the current arena (full: start a new one)
  tableRows.forEach((rows, table) => {
    firstSegment.push(segments.length);
    let row = 0;
    while (row < rows) {
      if (used === arenaRows) {
        arenaFloats.push(0);
        used = 0;
      }
      const take = Math.min(rows - row, arenaRows - used);
      const arena = arenaFloats.length - 1;
      segments.push({ table, rowStart: row, rowEnd: row + take, arena, offset: used * rowFloats });
      used += take;
      arenaFloats[arena] = used * rowFloats;
      row += take;
    }
    segmentCount.push(segments.length - firstSegment[table]);
  });
  const per = Math.min(arenasPerGroup, arenaFloats.length);
  return {
    arenaFloats,
    segments,
    firstSegment,
    segmentCount,
    arenasPerGroup: per,
    groups: Math.ceil(arenaFloats.length / per),
  };
}

/** Per-table directory words for the kernels: [firstSegment, segmentCount] per table. */
export function tableDirectory(plan: TablePlan): Uint32Array {
  const out = new Uint32Array(plan.firstSegment.length * 2);
  plan.firstSegment.forEach((f, t) => {
    out[2 * t] = f;
    out[2 * t + 1] = plan.segmentCount[t];
  });
  return out;
}

/** Segment words for the kernels: [rowStart, rowEnd, arena, offset] per segment. */
export function segmentWords(plan: TablePlan): Uint32Array {
  const out = new Uint32Array(Math.max(1, plan.segments.length) * 4);
  plan.segments.forEach((s, i) => out.set([s.rowStart, s.rowEnd, s.arena, s.offset], 4 * i));
  return out;
}

/** Where each segment's and table's blocks of maxima lie (see {@linkcode blockDirectory}). */
export interface BlockDirectory {
  /** First block of each segment, and the total block count after the last. */
  segmentBlocks: Uint32Array;
  /** [first block, end block) of each table (its segments' blocks are contiguous). */
  tableBlocks: Uint32Array;
  /** Blocks in all, of the longest segment, and of the largest table. */
  total: number;
  mostPerSegment: number;
  mostPerTable: number;
}

/** Numbers blocks of `block` floats segment by segment (each segment starts a new block). */
export function blockDirectory(plan: TablePlan, dim: number, block: number): BlockDirectory {
  const segmentBlocks = new Uint32Array(plan.segments.length + 1);
  let total = 0;
  let mostPerSegment = 0;
  plan.segments.forEach((s, i) => {
    segmentBlocks[i] = total;
    const blocks = Math.ceil(((s.rowEnd - s.rowStart) * dim) / block);
    mostPerSegment = Math.max(mostPerSegment, blocks);
    total += blocks;
  });
  segmentBlocks[plan.segments.length] = total;
  const tableBlocks = new Uint32Array(plan.firstSegment.length * 2);
  let mostPerTable = 0;
  plan.firstSegment.forEach((f, t) => {
    tableBlocks[2 * t] = segmentBlocks[f];
    tableBlocks[2 * t + 1] = segmentBlocks[f + plan.segmentCount[t]];
    mostPerTable = Math.max(mostPerTable, tableBlocks[2 * t + 1] - tableBlocks[2 * t]);
  });
  return { segmentBlocks, tableBlocks, total, mostPerSegment, mostPerTable };
}
