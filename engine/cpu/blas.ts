/**
 * The CPU engine's native matrix products: single-precision GEMM from a BLAS library (OpenBLAS by
 * default) through `Deno.dlopen`, over the engine's shared WebAssembly memory.
 *
 * Native code reads and writes the shared memory in place: the memory is created with its
 * maximum as its initial size (it never grows, so its backing store never moves), and
 * `Deno.UnsafePointer.of` on a view of its `SharedArrayBuffer` gives the same base address in
 * every Worker. A kernel pointer (a byte offset into the memory) becomes a native address by
 * adding that base: nothing is copied per call.
 *
 * Results do not depend on the thread count: every product is cut into fixed blocks of
 * {@linkcode BLAS_BLOCK} rows or columns counted from 0, each block is one single-threaded GEMM
 * call whose arguments depend only on the block, and a thread runs whole blocks. A block's result
 * is the same whichever thread runs it and however many there are.
 *
 * The library is `libopenblas.so.0` unless `DQRM_BLAS_LIB` or the engine's `blasLibrary` option
 * names another file (any CBLAS with `cblas_sgemm`; OpenBLAS's own calls are used when present).
 *
 * @module
 */
import type { Kernels } from "./wasm.ts";
import { cpuFlags } from "../environment.ts";

/** The library opened when none is named. */
export const DEFAULT_BLAS_LIBRARY = "libopenblas.so.0";

/** Environment variable naming the BLAS library file. */
export const BLAS_LIBRARY_ENV = "DQRM_BLAS_LIB";

/** OpenBLAS's thread count at load time. */
const THREADS_ENV = "OPENBLAS_NUM_THREADS";
/** OpenBLAS's core-type override, read as the library loads. */
const CORETYPE_ENV = "OPENBLAS_CORETYPE";
/** The AVX-512 subsets OpenBLAS's SkylakeX kernels need. */
const SKYLAKEX_FLAGS = ["avx512f", "avx512bw", "avx512vl", "avx512dq"];

/**
 * The core type to ask OpenBLAS for: SkylakeX (AVX-512 sgemm) when the CPU has its AVX-512
 * subsets, since a DYNAMIC_ARCH build older than the CPU may not know it and fall back to generic
 * kernels (OpenBLAS 0.3.21 takes a Sapphire Rapids Xeon for a Prescott: SSE3, a third of the
 * speed); null when the flags are unknown, lack AVX-512, or the user chose a core type.
 */
export function openBlasCoreType(
  flags: ReadonlySet<string> | null,
  userChoice: string | undefined,
): string | null {
  if (userChoice !== undefined || !flags) return null;
  return SKYLAKEX_FLAGS.every((f) => flags.has(f)) ? "SKYLAKEX" : null;
}

/** Rows or columns per GEMM call: the fixed unit threads share products in on the BLAS path. */
export const BLAS_BLOCK = 64;

/** Rows per row tile of large batches on the BLAS path (see `MatrixKernels.large`). */
export const BLAS_ROW_TILE = 256;

/**
 * Rows per weight-gradient call of large batches: larger than {@linkcode BLAS_BLOCK} as each call
 * packs the whole batch of inputs (measured at batch 2048: 80-86 GFLOP/s against 73-77).
 */
export const BLAS_LARGE_BLOCK = 128;

/** Which matrix kernels a CPU engine uses: WebAssembly SIMD, native BLAS, or BLAS when found. */
export type CpuKernelChoice = "wasm" | "blas" | "auto";

/** The choices, for command-line validation. */
export const CPU_KERNEL_CHOICES = ["wasm", "blas", "auto"] as const;

// CBLAS enumerations.
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

const CBLAS_SYMBOLS = {
  // order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "usize",
      "i32",
      "usize",
      "i32",
      "f32",
      "usize",
      "i32",
    ],
    result: "void",
  },
} as const satisfies Deno.ForeignLibraryInterface;

const OPENBLAS_SYMBOLS = {
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * `cblas_sgemm` with addresses as numbers: Deno's FFI takes a safe-integer number for `usize`
 * (its types say bigint), which spares a BigInt per address per call.
 */
type Sgemm = (
  order: number,
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: number,
  lda: number,
  b: number,
  ldb: number,
  beta: number,
  c: number,
  ldc: number,
) => void;

/** An opened BLAS library. */
export interface BlasLibrary {
  /** The file it was opened from (as given to `dlopen`). */
  path: string;
  /** What the library says it is, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH ... (Cooperlake)`. */
  description: string;
  sgemm: Sgemm;
  close(): void;
}

/** The library file to open: `given`, else `DQRM_BLAS_LIB`, else {@linkcode DEFAULT_BLAS_LIBRARY}. */
export function blasLibraryPath(given?: string): string {
  return given ?? Deno.env.get(BLAS_LIBRARY_ENV) ?? DEFAULT_BLAS_LIBRARY;
}

/**
 * Opens a BLAS library and makes it single-threaded (the engine's own threads share the work).
 * Throws when the file cannot be opened or has no `cblas_sgemm`.
 */
export function openBlas(path: string = blasLibraryPath()): BlasLibrary {
  // OpenBLAS starts its thread pool as it loads: ask for none, for the load only, so that child
  // processes (bench:cpu's PyTorch) do not inherit the setting.
  const asked = Deno.env.get(THREADS_ENV);
  Deno.env.set(THREADS_ENV, "1");
  const core = openBlasCoreType(cpuFlags(), Deno.env.get(CORETYPE_ENV));
  if (core) Deno.env.set(CORETYPE_ENV, core);
  let lib: Deno.DynamicLibrary<typeof CBLAS_SYMBOLS & typeof OPENBLAS_SYMBOLS>;
  try {
    lib = Deno.dlopen(path, { ...CBLAS_SYMBOLS, ...OPENBLAS_SYMBOLS });
  } catch (error) {
    throw new Error(
      `Expected a BLAS library with cblas_sgemm at ${path} (set --blas-lib or ${BLAS_LIBRARY_ENV}) but opening it failed: ${
        (error as Error).message
      }`,
    );
  } finally {
    if (asked === undefined) Deno.env.delete(THREADS_ENV);
    else Deno.env.set(THREADS_ENV, asked);
    if (core) Deno.env.delete(CORETYPE_ENV);
  }
  const s = lib.symbols;
  s.openblas_set_num_threads?.(1);
  const text = (p: Deno.PointerValue | undefined) =>
    p ? new Deno.UnsafePointerView(p).getCString().trim() : "";
  const config = text(s.openblas_get_config?.());
  const coreName = text(s.openblas_get_corename?.());
  return {
    path,
    description: config
      ? `${config}${coreName && !config.includes(coreName) ? ` (${coreName})` : ""}`
      : `CBLAS from ${path}`,
    sgemm: s.cblas_sgemm as unknown as Sgemm,
    close: () => lib.close(),
  };
}

/** Opens the library when it can (`auto`), or returns null; `blas` throws when it cannot. */
export function resolveBlas(choice: CpuKernelChoice, path?: string): BlasLibrary | null {
  if (choice === "wasm") return null;
  try {
    return openBlas(blasLibraryPath(path));
  } catch (error) {
    if (choice === "blas") throw error;
    return null;
  }
}

/** Whether a BLAS library opens (`DQRM_BLAS_LIB` or the default); it is closed again. */
export function blasAvailable(path?: string): boolean {
  const blas = resolveBlas("auto", path);
  blas?.close();
  return blas !== null;
}

/** The products a CPU program runs, and the units it shares them between threads in. */
export interface MatrixKernels {
  /** As {@linkcode Kernels.linearForward}. */
  linearForward: Kernels["linearForward"];
  /** As {@linkcode Kernels.gemmBroadcast}. */
  gemmBroadcast: Kernels["gemmBroadcast"];
  /** Units of the thread shares: forward output columns, weight-gradient rows, input-gradient columns. */
  units: { outCols: number; gradRows: number; inCols: number };
  /** What runs the products, for the record. */
  name: string;
  /**
   * How batches of at least `minRows` rows run, when that differs. Their forward products and
   * (without PACT) input-gradient products are shared by whole tiles of `rowTile` rows, each
   * tile one call over every column (`tileForward`, `tileInputGradient`): the large operand is
   * packed once per tile, not once per column block. Their other products run by `kernels`.
   */
  large?: {
    minRows: number;
    rowTile: number;
    tileForward: Kernels["linearForward"];
    tileInputGradient: Kernels["gemmBroadcast"];
    kernels: MatrixKernels;
  };
}

/** The WebAssembly SIMD kernels' products (units fit their register blocks). */
export function wasmMatrixKernels(k: Kernels): MatrixKernels {
  return {
    linearForward: k.linearForward,
    gemmBroadcast: k.gemmBroadcast,
    units: { outCols: 4, gradRows: 6, inCols: 8 },
    name: "wasm-simd128+relaxed-simd",
  };
}

/** The native address of byte 0 of a shared WebAssembly memory. */
export function memoryAddress(memory: WebAssembly.Memory): number {
  const pointer = Deno.UnsafePointer.of(new Uint8Array(memory.buffer));
  const address = Number(Deno.UnsafePointer.value(pointer));
  if (!Number.isSafeInteger(address) || address === 0) {
    throw new RangeError(`Expected a usable address of the engine's memory but found ${address}`);
  }
  return address;
}

/**
 * The BLAS products over `memory`: GEMM calls per fixed block, with the element-wise parts
 * (bias, ReLU, its derivative's mask) by the WebAssembly kernels `k` over the same memory.
 */
export function blasMatrixKernels(
  blas: BlasLibrary,
  memory: WebAssembly.Memory,
  k: Kernels,
): MatrixKernels {
  const base = memoryAddress(memory);
  const name = `blas: ${blas.description}`;
  const whole = blasProducts(blas.sgemm, base, k, Infinity);
  return {
    ...blasProducts(blas.sgemm, base, k, BLAS_BLOCK),
    name,
    large: {
      minRows: 2 * BLAS_ROW_TILE,
      rowTile: BLAS_ROW_TILE,
      tileForward: whole.linearForward,
      tileInputGradient: whole.gemmBroadcast,
      kernels: {
        ...blasProducts(blas.sgemm, base, k, BLAS_LARGE_BLOCK),
        name,
      },
    },
  };
}

/**
 * Calls `each(at, size)` for the blocks of `block` from `lo` (which must start a block) to `hi`,
 * the last one cut at `hi`.
 */
function forBlocks(
  lo: number,
  hi: number,
  block: number,
  what: string,
  each: (at: number, size: number) => void,
): void {
  if (lo % block !== 0) {
    throw new RangeError(`Expected ${what} at a multiple of ${block} but found ${lo}`);
  }
  for (let at = lo; at < hi; at += block) each(at, Math.min(block, hi - at));
}

/**
 * `linearForward` and `gemmBroadcast` as GEMM calls over blocks of `block` (Infinity: one), and
 * the units they are shared in.
 */
function blasProducts(
  sgemm: Sgemm,
  base: number,
  k: Kernels,
  block: number,
): Pick<MatrixKernels, "linearForward" | "gemmBroadcast" | "units"> {
  return {
    units: { outCols: block, gradRows: block, inCols: block },
    // Y[:, n0:n1] = act(X W[n0:n1]^T + b), one call per block of output columns.
    linearForward(x, ldx, w, ldw, bias, y, ldy, rows, n0, n1, kk, relu) {
      forBlocks(n0, n1, block, "a forward block", (n, nb) =>
        sgemm(
          ROW_MAJOR,
          NO_TRANS,
          TRANS,
          rows,
          nb,
          kk,
          1,
          base + x,
          ldx,
          base + w + n * ldw * 4,
          ldw,
          0,
          base + y + n * 4,
          ldy,
        ));
      k.biasActivate(y, ldy, rows, n0, n1, bias, relu);
    },
    // C = A B with A(m, p) at a + 4 (m sam + p sak). A read transposed (sam = 1) is the weight
    // gradient dY^T X, shared by rows of C; otherwise it is dX = dY W, shared by columns.
    gemmBroadcast(a, sam, sak, b, ldb, c, ldc, m0, m1, n0, n1, kk, mask, ldm) {
      if (sam === 1) {
        forBlocks(m0, m1, block, "a weight-gradient block", (m, mb) =>
          sgemm(
            ROW_MAJOR,
            TRANS,
            NO_TRANS,
            mb,
            n1 - n0,
            kk,
            1,
            base + a + m * 4,
            sak,
            base + b + n0 * 4,
            ldb,
            0,
            base + c + (m * ldc + n0) * 4,
            ldc,
          ));
      } else if (sak === 1) {
        forBlocks(n0, n1, block, "an input-gradient block", (n, nb) =>
          sgemm(
            ROW_MAJOR,
            NO_TRANS,
            NO_TRANS,
            m1 - m0,
            nb,
            kk,
            1,
            base + a + m0 * sam * 4,
            sam,
            base + b + n * 4,
            ldb,
            0,
            base + c + (m0 * ldc + n) * 4,
            ldc,
          ));
      } else {
        throw new RangeError(
          `Expected A read by rows or by columns (a stride of 1) but found strides ${sam} and ${sak}`,
        );
      }
      if (mask) k.maskRows(c + m0 * ldc * 4, ldc, m1 - m0, n0, n1, mask + m0 * ldm * 4, ldm);
    },
  };
}
