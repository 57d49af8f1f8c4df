/**
 * `deno task bench:blas [options]`: the BLAS libraries the CPU engine can use (oneDNN, OpenBLAS,
 * any CBLAS), compared in one run at the products the engine makes: for each layer of the Kaggle
 * and Terabyte MLPs, the forward product of a predict tile (64 rows) and of a large batch's row
 * tile (256 rows), the input gradient of a row tile, and a weight-gradient block (128 rows of a
 * 2048-sample batch). One call at a time on one thread, as each engine thread calls the library;
 * GFLOP/s per library, each library's ratio to the first, and how far its products are from the
 * first's. The evidence behind `DEFAULT_BLAS_LIBRARIES`' order.
 *
 * @module
 */
import { writeFileAtomic } from "../record/files.ts";
import {
  blasLibrariesToTest,
  NO_TRANS,
  openBlas,
  ROW_MAJOR,
  TRANS,
} from "../engine/cpu/blas_library.ts";
import { BLAS_LARGE_BLOCK, BLAS_ROW_TILE, viewAddress } from "../engine/cpu/blas.ts";
import { cpuModel, cpuVectorExtensions } from "../engine/environment.ts";
import { archSpec } from "../engine/spec.ts";
import { Rng } from "../engine/rng.ts";
import { summarize } from "../record/stats.ts";
import { defineCli, FLAGS, intFlag, parseCli, runMain } from "./args.ts";

const CLI = defineCli({
  usage: "deno task bench:blas [options]",
  description:
    `Times single-precision GEMM of each BLAS library at the CPU engine's products (Kaggle and
Terabyte MLP layers: predict tiles of 64 rows, row tiles of 256, input gradients, weight-gradient
blocks of a 2048-sample batch), one thread a call, in one run; prints GFLOP/s, each library's
ratio to the first and its largest difference from the first's products. Writes JSON with --out.`,
  options: {
    "blas-lib": {
      ...FLAGS["blas-lib"],
      arg: "LIST",
      help:
        "libraries to compare, comma-separated files (default one oneDNN and one OpenBLAS of the engine's defaults, those that open)",
    },
    "min-ms": {
      type: "string",
      arg: "N",
      help: "milliseconds each timing runs at least",
      default: "60",
    },
    out: FLAGS.out,
  },
  positionals: false,
});

/** One product: C(m, n) = op(A) op(B), row-major. */
interface Product {
  arch: string;
  /** `forward-64`, `forward-256`, `input-grad` or `weight-grad`. */
  kind: string;
  layer: string;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
}

/** The engine's products for `arch`'s layers (as `engine/cpu/blas.ts` calls them). */
function productsOf(arch: "kaggle" | "terabyte"): Product[] {
  const spec = archSpec(arch, 0.0001);
  const layers = [spec.bottomMlp, spec.topMlp].flatMap((mlp) =>
    mlp.slice(1).map((out, i) => ({ in: mlp[i], out }))
  );
  const products: Product[] = [];
  const add = (
    kind: string,
    layer: string,
    m: number,
    n: number,
    k: number,
    tA = false,
    tB = false,
  ) => products.push({ arch, kind, layer, m, n, k, transA: tA, transB: tB });
  for (const { in: k, out: n } of layers) {
    if (n < 8) continue; // the last layer's single column is not worth a library call's timing
    const layer = `${k}->${n}`;
    // Y = X W^T (rows x in, times out x in transposed), for a predict tile and a row tile.
    add("forward-64", layer, 64, n, k, false, true);
    add(`forward-${BLAS_ROW_TILE}`, layer, BLAS_ROW_TILE, n, k, false, true);
    // dX = dY W: rows x out, times out x in.
    add("input-grad", layer, BLAS_ROW_TILE, k, n);
    // A dW block = dY^T X: 128 outputs of a 2048-sample batch.
    add("weight-grad", layer, Math.min(BLAS_LARGE_BLOCK, n), k, 2048, true, false);
  }
  return products;
}

/** One library's result for one product. */
interface Timing {
  library: string;
  gflops: number;
  /** Largest |C - C_first| over max |C_first| (0 for the first library). */
  relDiff: number;
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values } = parsed;
  const minMs = intFlag("min-ms", values["min-ms"], 1) ?? 60;
  const files = values["blas-lib"]?.split(",").map((f) => f.trim()) ?? blasLibrariesToTest();
  if (files.length === 0) {
    throw new Error(
      "Expected a BLAS library to time but none opens (apt-get install libdnnl2 or libopenblas0-pthread, or name one with --blas-lib)",
    );
  }
  const libraries = files.map((file) => openBlas(file));
  console.log(`CPU: ${cpuModel()}; vector extensions: ${cpuVectorExtensions()}`);
  libraries.forEach((l, i) => console.log(`library ${i + 1}: ${l.path}: ${l.description}`));
  const rng = new Rng(11, 1);
  const rows: { product: Product; timings: Timing[] }[] = [];
  try {
    const header = ["arch    ", "kind       ", "layer     ", "m x n x k       "]
      .concat(
        libraries.map((_, i) => `lib${i + 1} GFLOP/s`),
        libraries.slice(1).map((_, i) => `lib${i + 2}/lib1`),
      );
    console.log(header.join("  "));
    for (const product of [...productsOf("kaggle"), ...productsOf("terabyte")]) {
      const { m, n, k, transA, transB } = product;
      const a = Float32Array.from({ length: m * k }, () => rng.next() - 0.5);
      const b = Float32Array.from({ length: k * n }, () => rng.next() - 0.5);
      const lda = transA ? m : k, ldb = transB ? k : n;
      const flops = 2 * m * n * k;
      let first: Float32Array | undefined;
      const timings: Timing[] = [];
      for (const library of libraries) {
        const c = new Float32Array(m * n);
        const call = () =>
          library.sgemm(
            ROW_MAJOR,
            transA ? TRANS : NO_TRANS,
            transB ? TRANS : NO_TRANS,
            m,
            n,
            k,
            1,
            viewAddress(a),
            lda,
            viewAddress(b),
            ldb,
            0,
            viewAddress(c),
            n,
          );
        call();
        // Calls per timing: doubled until they take a fifth of --min-ms (five timings).
        let reps = 1;
        for (;;) {
          const t = performance.now();
          for (let r = 0; r < reps; r++) call();
          if (performance.now() - t >= minMs / 5) break;
          reps *= 2;
        }
        const times: number[] = [];
        for (let round = 0; round < 5; round++) {
          const t = performance.now();
          for (let r = 0; r < reps; r++) call();
          times.push((performance.now() - t) / reps);
        }
        const ms = summarize(times).median;
        first ??= c;
        let diff = 0, scale = 0;
        for (let i = 0; i < c.length; i++) {
          diff = Math.max(diff, Math.abs(c[i] - first[i]));
          scale = Math.max(scale, Math.abs(first[i]));
        }
        timings.push({ library: library.path, gflops: flops / ms / 1e6, relDiff: diff / scale });
      }
      rows.push({ product, timings });
      const base = timings[0].gflops;
      console.log(
        [
          product.arch.padEnd(8),
          product.kind.padEnd(11),
          product.layer.padEnd(10),
          `${m} x ${n} x ${k}`.padEnd(16),
          ...timings.map((t) => t.gflops.toFixed(1).padStart(13)),
          ...timings.slice(1).map((t) =>
            `${(t.gflops / base).toFixed(2)} (${t.relDiff.toExponential(0)})`.padStart(9)
          ),
        ].join("  "),
      );
    }
  } finally {
    libraries.forEach((l) => l.close());
  }
  // Per kind, the geometric mean of each library's ratio to the first.
  const kinds = [...new Set(rows.map((r) => r.product.kind))];
  for (let i = 1; i < libraries.length; i++) {
    const summary = kinds.map((kind) => {
      const ratios = rows.filter((r) => r.product.kind === kind)
        .map((r) => r.timings[i].gflops / r.timings[0].gflops);
      const geo = Math.exp(ratios.reduce((s, x) => s + Math.log(x), 0) / ratios.length);
      return `${kind} ${geo.toFixed(2)}x`;
    });
    console.log(`lib${i + 1} / lib1, geometric mean by kind: ${summary.join(", ")}`);
  }
  if (values.out) {
    await writeFileAtomic(
      values.out,
      JSON.stringify(
        {
          cpu: cpuModel(),
          libraries: libraries.map((l) => ({ path: l.path, description: l.description })),
          rows,
        },
        null,
        1,
      ) + "\n",
    );
  }
  return 0;
}

if (import.meta.main) await runMain("bench:blas", main);
