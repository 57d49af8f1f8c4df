/**
 * Transparent huge pages behind the CPU engine's embedding tables, on Linux. A batch gathers and
 * updates rows scattered over every table (hundreds of MB to GB): with 4 KiB pages nearly every
 * row costs a TLB miss, and a page walk (two-dimensional in a virtual machine) before the cache
 * miss. `madvise(MADV_HUGEPAGE)` on a table memory before its first write lets the kernel back it
 * with 2 MiB pages where transparent huge pages are enabled (`always` or `madvise`). Nothing is
 * computed differently: only the speed of the row accesses changes.
 *
 * It needs `madvise` from the C library through `Deno.dlopen` (the `--allow-ffi` permission);
 * without it, off Linux, or when the call fails, the tables keep the default pages.
 *
 * @module
 */
import { memoryAddress } from "./blas.ts";

/** `MADV_HUGEPAGE` of Linux's `madvise`. */
const MADV_HUGEPAGE = 14;

/** Bytes of a huge page on x86-64 and arm64 (4 KiB base pages). */
export const HUGE_PAGE_BYTES = 2 * 1024 * 1024;

/** The C library asked for `madvise`. */
const LIBC = "libc.so.6";

/**
 * Asks for huge pages behind each of `memories` (the whole 2 MiB pages inside it); call it before
 * the memories are first written. Returns how many memories were advised: 0 when it cannot ask
 * (not Linux, no FFI permission, no C library) or every call failed.
 */
export function adviseHugePages(memories: readonly WebAssembly.Memory[]): number {
  if (Deno.build.os !== "linux" || memories.length === 0) return 0;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return 0;
  let lib: Deno.DynamicLibrary<
    { madvise: { parameters: ["usize", "usize", "i32"]; result: "i32" } }
  >;
  try {
    lib = Deno.dlopen(LIBC, { madvise: { parameters: ["usize", "usize", "i32"], result: "i32" } });
  } catch {
    return 0;
  }
  try {
    let advised = 0;
    for (const memory of memories) {
      const address = memoryAddress(memory);
      const start = Math.ceil(address / HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES;
      const end = Math.floor((address + memory.buffer.byteLength) / HUGE_PAGE_BYTES) *
        HUGE_PAGE_BYTES;
      if (end <= start) continue;
      const madvise = lib.symbols.madvise as unknown as (a: number, n: number, f: number) => number;
      if (madvise(start, end - start, MADV_HUGEPAGE) === 0) advised++;
    }
    return advised;
  } finally {
    lib.close();
  }
}
