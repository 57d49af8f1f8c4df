/**
 * Opening the native library behind the CPU engine's BLAS path: single-precision GEMM from oneDNN
 * (`dnnl_sgemm`) or any CBLAS (`cblas_sgemm`; OpenBLAS's own calls are used when present), through
 * `Deno.dlopen`, made single-threaded (the engine's own threads share the work).
 *
 * Without a named file (`--blas-lib`, `DQRM_BLAS_LIB`) the first of
 * {@linkcode DEFAULT_BLAS_LIBRARIES} that opens is used: oneDNN first, as its sgemm measured
 * faster than OpenBLAS 0.3.21's at every shape the engine multiplies (one core, single-threaded:
 * 1.08-1.76x on the GPU host's Sapphire Rapids Xeon against OpenBLAS's SkylakeX kernels,
 * 1.4-2.0x on an AMD EPYC VM), then OpenBLAS.
 *
 * @module
 */
import { cpuFlags } from "../environment.ts";

/** The library files tried, in order, when none is named: oneDNN (Debian's `libdnnl2`), OpenBLAS. */
export const DEFAULT_BLAS_LIBRARIES = [
  "libdnnl.so.3",
  "libdnnl.so.2",
  "libopenblas.so.0",
] as const;

/** Environment variable naming the BLAS library file. */
export const BLAS_LIBRARY_ENV = "DQRM_BLAS_LIB";

/** OpenBLAS's thread count at load time. */
const THREADS_ENV = "OPENBLAS_NUM_THREADS";
/** OpenMP's (oneDNN's threads) thread count, read as libgomp loads. */
const OMP_THREADS_ENV = "OMP_NUM_THREADS";
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

/** Which matrix kernels a CPU engine uses: WebAssembly SIMD, native BLAS, or BLAS when found. */
export type CpuKernelChoice = "wasm" | "blas" | "auto";

/** The choices, for command-line validation. */
export const CPU_KERNEL_CHOICES = ["wasm", "blas", "auto"] as const;

/** CBLAS's row-major order. */
export const ROW_MAJOR = 101;
/** CBLAS's "not transposed". */
export const NO_TRANS = 111;
/** CBLAS's "transposed". */
export const TRANS = 112;

const SYMBOLS = {
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
    optional: true,
  },
  // transA, transB ('N' or 'T'), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc: row-major.
  dnnl_sgemm: {
    parameters: [
      "u8",
      "u8",
      "i64",
      "i64",
      "i64",
      "f32",
      "usize",
      "i64",
      "usize",
      "i64",
      "f32",
      "usize",
      "i64",
    ],
    result: "i32",
    optional: true,
  },
  dnnl_version: { parameters: [], result: "pointer", optional: true },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * `cblas_sgemm` with addresses as numbers: Deno's FFI takes a safe-integer number for `usize`
 * and `i64` (its types say bigint), which spares a BigInt per address per call.
 */
export type Sgemm = (
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

/** `dnnl_sgemm` with numbers for its 64-bit arguments: {@linkcode Sgemm} without the order. */
type DnnlSgemm = (
  ...args: Parameters<Sgemm> extends [number, ...infer Rest] ? Rest : never
) => number;

/** An opened BLAS library. */
export interface BlasLibrary {
  /** The file it was opened from (as given to `dlopen`). */
  path: string;
  /** What the library says it is, e.g. `oneDNN 2.6.3 (dnnl_sgemm, OpenMP)`. */
  description: string;
  sgemm: Sgemm;
  close(): void;
}

/** The library file named: `given`, else `DQRM_BLAS_LIB`; undefined when neither names one. */
export function namedBlasLibrary(given?: string): string | undefined {
  return given ?? Deno.env.get(BLAS_LIBRARY_ENV);
}

/** Sets each variable of `settings` (null: leaves it) while `load` runs, then restores them. */
function withEnv<T>(settings: Record<string, string | null>, load: () => T): T {
  const before = Object.keys(settings).map((name) => [name, Deno.env.get(name)] as const);
  for (const [name, value] of Object.entries(settings)) {
    if (value !== null) Deno.env.set(name, value);
  }
  try {
    return load();
  } finally {
    for (const [name, value] of before) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
}

const CHAR_N = "N".charCodeAt(0);
const CHAR_T = "T".charCodeAt(0);

/**
 * Opens a BLAS library (oneDNN's `dnnl_sgemm` or a CBLAS `cblas_sgemm`) and makes it
 * single-threaded. Throws when the file cannot be opened or has neither call.
 */
export function openBlas(path: string): BlasLibrary {
  // Both libraries start their threads as they load: ask for one, for the load only, so that
  // child processes (bench:cpu's PyTorch) do not inherit the setting.
  const core = openBlasCoreType(cpuFlags(), Deno.env.get(CORETYPE_ENV));
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = withEnv(
      { [THREADS_ENV]: "1", [OMP_THREADS_ENV]: "1", [CORETYPE_ENV]: core },
      () => Deno.dlopen(path, SYMBOLS),
    );
  } catch (error) {
    throw new Error(
      `Expected a BLAS library (oneDNN or a CBLAS) at ${path} (set --blas-lib or ${BLAS_LIBRARY_ENV}) but opening it failed: ${
        (error as Error).message
      }`,
    );
  }
  const s = lib.symbols;
  const text = (p: Deno.PointerValue | undefined) =>
    p ? new Deno.UnsafePointerView(p).getCString().trim() : "";
  if (s.dnnl_sgemm) {
    const dnnl = s.dnnl_sgemm as unknown as DnnlSgemm;
    const trans = (t: number) => (t === TRANS ? CHAR_T : CHAR_N);
    return {
      path,
      description: oneDnnDescription(s.dnnl_version?.() ?? null),
      // Row-major only (the engine's every call): dnnl_sgemm's own order.
      sgemm: (_order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) => {
        const status = dnnl(trans(ta), trans(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        if (status !== 0) {
          throw new Error(
            `Expected dnnl_sgemm (${path}) to succeed on ${m}x${n}x${k} but it returned status ${status}`,
          );
        }
      },
      close: () => lib.close(),
    };
  }
  if (!s.cblas_sgemm) {
    lib.close();
    throw new Error(
      `Expected dnnl_sgemm or cblas_sgemm in the BLAS library ${path} but found neither`,
    );
  }
  s.openblas_set_num_threads?.(1);
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

/** `dnnl_version_t`'s major, minor, patch and CPU runtime, as words. */
function oneDnnDescription(version: Deno.PointerValue): string {
  if (!version) return "oneDNN (dnnl_sgemm)";
  const v = new Deno.UnsafePointerView(version);
  // { int major, minor, patch; const char *hash; unsigned cpu_runtime, gpu_runtime }
  const runtime = ({ 1: "sequential", 2: "OpenMP", 4: "TBB", 8: "threadpool" } as Record<
    number,
    string
  >)[v.getUint32(24)] ?? `runtime ${v.getUint32(24)}`;
  return `oneDNN ${v.getInt32(0)}.${v.getInt32(4)}.${
    v.getInt32(8)
  } (dnnl_sgemm, ${runtime}, one thread a call)`;
}

/**
 * Opens the named library (`path`, else `DQRM_BLAS_LIB`), else the first of
 * {@linkcode DEFAULT_BLAS_LIBRARIES} that opens. Throws, naming every file tried, when none does.
 */
export function openDefaultBlas(path?: string): BlasLibrary {
  const named = namedBlasLibrary(path);
  if (named !== undefined) return openBlas(named);
  const failures: string[] = [];
  for (const file of DEFAULT_BLAS_LIBRARIES) {
    try {
      return openBlas(file);
    } catch (error) {
      failures.push(`${file}: ${(error as Error).message}`);
    }
  }
  throw new Error(
    `Expected one of ${
      DEFAULT_BLAS_LIBRARIES.join(", ")
    } to open (or a file named by --blas-lib / ${BLAS_LIBRARY_ENV}) but none did (apt-get install libdnnl2 or libopenblas0-pthread): ${
      failures.join("; ")
    }`,
  );
}

/** Opens the library when it can (`auto`), or returns null; `blas` throws when it cannot. */
export function resolveBlas(choice: CpuKernelChoice, path?: string): BlasLibrary | null {
  if (choice === "wasm") return null;
  try {
    return openDefaultBlas(path);
  } catch (error) {
    if (choice === "blas") throw error;
    return null;
  }
}

/** Whether a BLAS library opens (the named one, else a default); it is closed again. */
export function blasAvailable(path?: string): boolean {
  const blas = resolveBlas("auto", path);
  blas?.close();
  return blas !== null;
}

/**
 * The library files a test should run the BLAS path with: `DQRM_BLAS_LIB` when set, else one
 * oneDNN and one OpenBLAS of {@linkcode DEFAULT_BLAS_LIBRARIES}, those that open.
 */
export function blasLibrariesToTest(): string[] {
  const named = namedBlasLibrary();
  if (named !== undefined) return blasAvailable(named) ? [named] : [];
  const isOneDnn = (file: string) => file.startsWith("libdnnl");
  const found: string[] = [];
  for (const file of DEFAULT_BLAS_LIBRARIES) {
    if (found.some((f) => isOneDnn(f) === isOneDnn(file))) continue;
    if (blasAvailable(file)) found.push(file);
  }
  return found;
}
