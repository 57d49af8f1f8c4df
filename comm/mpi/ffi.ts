/**
 * Open MPI bindings through `Deno.dlopen`: the few MPI calls data-parallel training and its
 * benchmark need (init, rank and size, all-reduce, all-gather, barrier, abort, send/recv, time).
 *
 * Open MPI's handles (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`, ...) are the addresses of global
 * data symbols of `libmpi` (`&ompi_mpi_comm_world`, ...). Deno's FFI `statics` read the value at
 * a symbol, not its address, so the addresses come from libc's `dlsym`. The library is opened
 * first through libc's `dlopen` with `RTLD_NOW | RTLD_GLOBAL`, as Open MPI's plugins need its
 * symbols globally visible; `Deno.dlopen` of the same path then shares that handle.
 *
 * The library is `libmpi.so.40` (Open MPI 4.x) unless the environment variable `DQRM_MPI_LIB`
 * names another path.
 *
 * @module
 */

/** The default library: Open MPI 4.x's C library. */
export const DEFAULT_MPI_LIBRARY = "libmpi.so.40";

/** Open MPI's `MPI_SUCCESS`. */
export const MPI_SUCCESS = 0;

const RTLD_NOW = 0x2;
const RTLD_GLOBAL = 0x100;

const MPI_SYMBOLS = {
  MPI_Init: { parameters: ["pointer", "pointer"], result: "i32" },
  MPI_Initialized: { parameters: ["buffer"], result: "i32" },
  MPI_Finalized: { parameters: ["buffer"], result: "i32" },
  MPI_Finalize: { parameters: [], result: "i32" },
  MPI_Comm_rank: { parameters: ["pointer", "buffer"], result: "i32" },
  MPI_Comm_size: { parameters: ["pointer", "buffer"], result: "i32" },
  // sendbuf, recvbuf, count, datatype, op, comm
  MPI_Allreduce: {
    parameters: ["pointer", "buffer", "i32", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm
  MPI_Allgather: {
    parameters: ["buffer", "i32", "pointer", "buffer", "i32", "pointer", "pointer"],
    result: "i32",
  },
  // sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm
  MPI_Allgatherv: {
    parameters: ["buffer", "i32", "pointer", "buffer", "buffer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
  MPI_Barrier: { parameters: ["pointer"], result: "i32" },
  MPI_Abort: { parameters: ["pointer", "i32"], result: "i32" },
  // buf, count, datatype, dest, tag, comm
  MPI_Send: { parameters: ["buffer", "i32", "pointer", "i32", "i32", "pointer"], result: "i32" },
  // buf, count, datatype, source, tag, comm, status
  MPI_Recv: {
    parameters: ["buffer", "i32", "pointer", "i32", "i32", "pointer", "pointer"],
    result: "i32",
  },
  MPI_Wtime: { parameters: [], result: "f64" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The MPI functions, as `Deno.dlopen` binds them. */
export type MpiSymbols = Deno.DynamicLibrary<typeof MPI_SYMBOLS>["symbols"];

/** Open MPI's predefined handles (addresses of its global objects). */
export interface MpiHandles {
  commWorld: Deno.PointerValue;
  float: Deno.PointerValue;
  int: Deno.PointerValue;
  byte: Deno.PointerValue;
  int8: Deno.PointerValue;
  short: Deno.PointerValue;
  sum: Deno.PointerValue;
  /** `MPI_IN_PLACE`: `(void *) 1` in Open MPI. */
  inPlace: Deno.PointerValue;
  /** `MPI_STATUS_IGNORE`: `NULL` in Open MPI. */
  statusIgnore: Deno.PointerValue;
}

/** Bound MPI: its functions and handles. */
export interface MpiLibrary {
  /** The path the library was opened from. */
  path: string;
  fn: MpiSymbols;
  handles: MpiHandles;
}

/** Raised when the MPI library cannot be opened or an MPI call fails. */
export class MpiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MpiError";
  }
}

const HANDLE_SYMBOLS = {
  commWorld: "ompi_mpi_comm_world",
  float: "ompi_mpi_float",
  int: "ompi_mpi_int",
  byte: "ompi_mpi_byte",
  int8: "ompi_mpi_int8_t",
  short: "ompi_mpi_short",
  sum: "ompi_mpi_op_sum",
} as const;

function cString(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

let loaded: MpiLibrary | undefined;

/** The MPI library path: `DQRM_MPI_LIB` if set, else {@linkcode DEFAULT_MPI_LIBRARY}. */
export function mpiLibraryPath(): string {
  return Deno.env.get("DQRM_MPI_LIB") || DEFAULT_MPI_LIBRARY;
}

/**
 * Opens Open MPI (once per process) and resolves its handles. Throws {@linkcode MpiError} when
 * the library or one of its symbols is absent.
 */
export function loadMpi(path = mpiLibraryPath()): MpiLibrary {
  if (loaded) {
    if (loaded.path !== path) {
      throw new MpiError(
        `Expected one MPI library per process: ${loaded.path} is open, not ${path}`,
      );
    }
    return loaded;
  }
  const libc = Deno.dlopen("libc.so.6", {
    dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
    dlsym: { parameters: ["pointer", "buffer"], result: "pointer" },
    dlerror: { parameters: [], result: "pointer" },
  });
  const dlError = () => {
    const p = libc.symbols.dlerror();
    return p ? new Deno.UnsafePointerView(p).getCString() : "unknown error";
  };
  const handle = libc.symbols.dlopen(cString(path), RTLD_NOW | RTLD_GLOBAL);
  if (!handle) {
    throw new MpiError(
      `Expected an Open MPI library at '${path}' (set DQRM_MPI_LIB; apt install libopenmpi-dev) ` +
        `but dlopen failed: ${dlError()}`,
    );
  }
  const handles = { inPlace: Deno.UnsafePointer.create(1n), statusIgnore: null } as MpiHandles;
  for (const [key, name] of Object.entries(HANDLE_SYMBOLS)) {
    const address = libc.symbols.dlsym(handle, cString(name));
    if (!address) {
      throw new MpiError(
        `Expected the Open MPI symbol ${name} in '${path}' but found none (${dlError()}); ` +
          `only Open MPI's ABI is supported`,
      );
    }
    handles[key as keyof typeof HANDLE_SYMBOLS] = address;
  }
  let lib: Deno.DynamicLibrary<typeof MPI_SYMBOLS>;
  try {
    lib = Deno.dlopen(path, MPI_SYMBOLS);
  } catch (e) {
    throw new MpiError(
      `Expected the MPI functions in '${path}' but found: ${(e as Error).message}`,
    );
  }
  loaded = { path, fn: lib.symbols, handles };
  return loaded;
}

/** Throws {@linkcode MpiError} naming `call` unless `code` is `MPI_SUCCESS`. */
export function check(call: string, code: number): void {
  if (code !== MPI_SUCCESS) {
    throw new MpiError(`Expected ${call} to return MPI_SUCCESS (0) but it returned ${code}`);
  }
}

/** Whether `MPI_Init` has been called in this process. */
export function mpiInitialized(mpi: MpiLibrary): boolean {
  const flag = new Int32Array(1);
  check("MPI_Initialized", mpi.fn.MPI_Initialized(flag));
  return flag[0] !== 0;
}

/** Calls `MPI_Init` unless MPI is initialised already. */
export function mpiInit(mpi: MpiLibrary): void {
  if (!mpiInitialized(mpi)) check("MPI_Init", mpi.fn.MPI_Init(null, null));
}

/** Calls `MPI_Finalize` if MPI is initialised and not finalised yet. */
export function mpiFinalize(mpi: MpiLibrary): void {
  const done = new Int32Array(1);
  check("MPI_Finalized", mpi.fn.MPI_Finalized(done));
  if (mpiInitialized(mpi) && !done[0]) check("MPI_Finalize", mpi.fn.MPI_Finalize());
}
