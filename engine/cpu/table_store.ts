/**
 * Embedding tables in WebAssembly memories of their own, so that whole-table passes (scale
 * finding, HAWQ's fake-quantized copy) run as SIMD kernels at memory bandwidth. A 32-bit memory
 * holds at most 4 GiB, so tables are packed into as many memories as they need, largest first
 * (the Terabyte tables, 12.58 GB, take five). A table's HAWQ copy sits right after it, in the
 * same memory, so one kernel call reads the one and writes the other.
 *
 * @module
 */
import { WASM_PAGE } from "./wasm.ts";

/** Most bytes one memory may hold (65,536 pages). */
export const MAX_MEMORY_BYTES = 65536 * WASM_PAGE;

/** Where one table lives. */
export interface TableSlot {
  /** Index of its memory. */
  memory: number;
  /** Byte offset of the table in that memory. */
  offset: number;
  /** Byte offset of its fake-quantized copy, or -1 when there is none. */
  copyOffset: number;
  /** Floats in the table. */
  length: number;
}

/** The memories' sizes in pages and every table's slot. */
export interface TablePlan {
  pages: number[];
  slots: TableSlot[];
}

/** Packs tables of `lengths` floats (each with a copy when `withCopies`) into memories. */
export function planTables(lengths: readonly number[], withCopies: boolean): TablePlan {
  const used: number[] = [];
  const slots: TableSlot[] = new Array(lengths.length);
  const order = lengths.map((_, t) => t).sort((a, b) => lengths[b] - lengths[a] || a - b);
  for (const t of order) {
    const bytes = Math.ceil((lengths[t] * 4) / 64) * 64;
    const need = withCopies ? 2 * bytes : bytes;
    if (need > MAX_MEMORY_BYTES) {
      throw new RangeError(
        `Expected every table to fit one 4 GiB memory but table ${t} needs ${need} bytes`,
      );
    }
    let m = used.findIndex((u) => u + need <= MAX_MEMORY_BYTES);
    if (m < 0) m = used.push(0) - 1;
    slots[t] = {
      memory: m,
      offset: used[m],
      copyOffset: withCopies ? used[m] + bytes : -1,
      length: lengths[t],
    };
    used[m] += need;
  }
  return { pages: used.map((u) => Math.max(1, Math.ceil(u / WASM_PAGE))), slots };
}

/** Allocates the memories of a plan (zeroed, shared between threads). */
export function allocateTableMemories(plan: TablePlan): WebAssembly.Memory[] {
  return plan.pages.map((pages) =>
    new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
  );
}

/** Float32Array views of every table (and its copy, or null) over the memories. */
export function tableViews(
  plan: TablePlan,
  memories: WebAssembly.Memory[],
): { tables: Float32Array[]; copies: Float32Array[] | null } {
  const view = (s: TableSlot, offset: number) =>
    new Float32Array(memories[s.memory].buffer, offset, s.length);
  const tables = plan.slots.map((s) => view(s, s.offset));
  const copies = plan.slots.length && plan.slots[0].copyOffset >= 0
    ? plan.slots.map((s) => view(s, s.copyOffset))
    : null;
  return { tables, copies };
}

/** Assigns tables to threads, largest first, each to the thread with the fewest rows so far. */
export function balanceTables(tableRows: readonly number[], threads: number): number[][] {
  const load = new Array(threads).fill(0);
  const assigned: number[][] = Array.from({ length: threads }, () => []);
  const order = tableRows.map((_, t) => t).sort((a, b) => tableRows[b] - tableRows[a] || a - b);
  for (const t of order) {
    const i = load.indexOf(Math.min(...load));
    load[i] += tableRows[t];
    assigned[i].push(t);
  }
  return assigned;
}
