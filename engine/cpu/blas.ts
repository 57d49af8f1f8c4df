/**
 * The CPU engine's native matrix products: single-precision GEMM from a BLAS library (oneDNN or
 * OpenBLAS, opened by `blas_library.ts`) through `Deno.dlopen`, over the engine's shared
 * WebAssembly memory.
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
 * @module
 */
import type { Kernels } from "./wasm.ts";
import { type BlasLibrary, NO_TRANS, ROW_MAJOR, type Sgemm, TRANS } from "./blas_library.ts";

/** Rows or columns per GEMM call: the fixed unit threads share products in on the BLAS path. */
export const BLAS_BLOCK = 64;

/** Rows per row tile of large batches on the BLAS path (see `MatrixKernels.large`). */
export const BLAS_ROW_TILE = 256;

/**
 * Rows per weight-gradient call of large batches: larger than {@linkcode BLAS_BLOCK} as each call
 * packs the whole batch of inputs (measured at batch 2048: 80-86 GFLOP/s against 73-77).
 */
export const BLAS_LARGE_BLOCK = 128;

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
  return viewAddress(new Uint8Array(memory.buffer), "the engine's memory");
}

/** The native address of `view`'s first byte, as a number (what the GEMM calls take). */
export function viewAddress(view: ArrayBufferView, what = "a typed array"): number {
  const address = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(view)));
  if (!Number.isSafeInteger(address) || address === 0) {
    throw new RangeError(`Expected a usable address of ${what} but found ${address}`);
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
