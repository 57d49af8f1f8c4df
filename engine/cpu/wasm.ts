/**
 * The CPU engine's WebAssembly kernels (AssemblyScript sources in `kernels/`, built by
 * `deno task build:wasm` into `kernels.wasm`, which is committed).
 *
 * @module
 */

/** The kernels' exports; pointers are byte addresses in the shared memory. */
export interface Kernels {
  linearForward(
    x: number,
    ldx: number,
    w: number,
    ldw: number,
    bias: number,
    y: number,
    ldy: number,
    rows: number,
    n0: number,
    n1: number,
    k: number,
    relu: number,
  ): void;
  gemmBroadcast(
    a: number,
    sam: number,
    sak: number,
    b: number,
    ldb: number,
    c: number,
    ldc: number,
    m0: number,
    m1: number,
    n0: number,
    n1: number,
    k: number,
    mask: number,
    ldm: number,
  ): void;
  columnSum(a: number, lda: number, rows: number, n0: number, n1: number, out: number): void;
  biasActivate(
    y: number,
    ldy: number,
    rows: number,
    n0: number,
    n1: number,
    bias: number,
    relu: number,
  ): void;
  maskRows(
    c: number,
    ldc: number,
    rows: number,
    n0: number,
    n1: number,
    mask: number,
    ldm: number,
  ): void;
  sgd(w: number, g: number, i0: number, i1: number, lr: number): void;
  interactForward(
    t: number,
    ldt: number,
    f: number,
    dp: number,
    d: number,
    r0: number,
    r1: number,
    out: number,
    ldo: number,
  ): void;
  maxAbsFlat(p: number, count: number): number;
  fakeQuantizeFlat(src: number, dst: number, count: number, s: number, n: number): void;
  lsqRows(
    w: number,
    g: number,
    ld: number,
    cols: number,
    r0: number,
    r1: number,
    steps: number,
    ds: number,
    n: number,
  ): void;
  lsqInitRows(
    w: number,
    ld: number,
    cols: number,
    r0: number,
    r1: number,
    steps: number,
    n: number,
  ): void;
  dorefaRows(
    w: number,
    q: number,
    ld: number,
    cols: number,
    r0: number,
    r1: number,
    m: number,
    k: number,
  ): void;
  pactForward(
    x: number,
    pre: number,
    ld: number,
    rows: number,
    n0: number,
    n1: number,
    a: number,
    k: number,
  ): void;
  pactBackward(
    g: number,
    pre: number,
    ld: number,
    rows: number,
    n0: number,
    n1: number,
    a: number,
  ): number;
  rowMaxAbs(w: number, ld: number, cols: number, r0: number, r1: number, out: number): void;
  fakeQuantizeRows(
    w: number,
    q: number,
    ld: number,
    cols: number,
    r0: number,
    r1: number,
    scales: number,
    s: number,
    n: number,
  ): void;
  fakeQuantizeTerms(x: number, ld: number, cols: number, rows: number, s: number, n: number): void;
  sgdQuantizeRows(
    w: number,
    g: number,
    q: number,
    ld: number,
    r0: number,
    r1: number,
    lr: number,
    scales: number,
    n: number,
  ): void;
  interactBackward(
    t: number,
    ldt: number,
    f: number,
    dp: number,
    d: number,
    r0: number,
    r1: number,
    dout: number,
    lddo: number,
    dt: number,
  ): void;
}

/** Bytes of one WebAssembly memory page. */
export const WASM_PAGE = 65536;

/** Compiles the kernel module (once per thread; a compiled module can also be posted). */
export async function compileKernels(): Promise<WebAssembly.Module> {
  const bytes = await Deno.readFile(new URL("./kernels.wasm", import.meta.url));
  return await WebAssembly.compile(bytes);
}

/** Instantiates the kernels over a shared memory. */
export async function instantiateKernels(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
): Promise<Kernels> {
  const instance = await WebAssembly.instantiate(module, {
    env: {
      memory,
      abort: () => {
        throw new Error("A CPU kernel aborted");
      },
    },
  });
  return instance.exports as unknown as Kernels;
}
