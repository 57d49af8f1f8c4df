/**
 * The GEMM for small products: 16 x 16 outputs per workgroup, one per invocation, k ascending.
 * Where a product has few tiles (batch 128's MLP layers), its four times more workgroups than the
 * smallest register-tiled shape keep more SMs busy and beat it (measured on an H200 by
 * `cli/bench_gpu_kernels.ts`); the same uniform block and bindings as `gemm.ts`'s kernels.
 *
 * Such products are latency-bound: with about one workgroup per SM, each K step costs a global
 * load's latency (~1 µs on an H200, measured: 12 µs at K = 128 and 36 µs at K = 512 with 16 k a
 * step). So a step takes `bk` k (each invocation loads `bk / 16` values of A and of B at once),
 * and the next step's values are loaded into registers while this step's are multiplied, with the
 * step's multiply-adds written out (a loop to K left each round waiting on workgroup memory). With
 * 64 k a step, 2-3x faster on the H200 than 16 k in a loop (128x256x512: 30.8 -> 9.0 µs, 50 in a
 * pass). The sums are the same whatever `bk`: each output adds its products one by one, k ascending.
 *
 * {@linkcode GEMM_BIAS_GRAD}: the weight gradient dW = dYᵀ X with the bias gradient dB = dYᵀ 1
 * as one more column, whose B values are ones and whose outputs go to `c[biasBase + row]`: one
 * dispatch instead of two, each sum as the separate product would add it.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { GEMM_BIAS_GRAD, GEMM_SCALAR_BINDINGS_WGSL, GEMM_UNIFORM_WGSL } from "./gemm.ts";
import { ITER_WGSL } from "./iter.ts";

/** K per step of the engine's small-product kernel. */
export const GEMM_NAIVE_BK = 64;

/**
 * The small-product GEMM with `bk` k a step (a multiple of 16 up to 256): no K splits. `unroll`
 * (default) writes out each step's `bk` multiply-adds, and a step past K adds the zeros its
 * loads found there, which leaves every sum as it is (a sum that starts at +0 never becomes -0,
 * and x + 0 = x); else a loop runs to K (the kernel before, `bench_gpu_kernels`' baseline).
 */
export function gemmNaiveKernel(bk = GEMM_NAIVE_BK, unroll = true): KernelSource {
  if (bk % 16 !== 0 || bk < 16 || bk > 256) {
    throw new Error(
      `Expected the naive GEMM's k per step to be a multiple of 16 in [16, 256], found ${bk}`,
    );
  }
  const r = bk / 16;
  const loads = Array.from({ length: r }, (_, i) => i);
  const multiplyAdds = unroll
    ? Array.from({ length: bk }, (_, kk) => `acc += ta[l.y][${kk}] * tb[${kk}][l.x];`).join(
      "\n    ",
    )
    : `let kn = min(${bk}u, K - k0);
    for (var kk = 0u; kk < kn; kk++) { acc += ta[l.y][kk] * tb[kk][l.x]; }`;
  return {
    name: bk === GEMM_NAIVE_BK && unroll
      ? "gemm_naive16"
      : `gemm_naive16_k${bk}${unroll ? "" : "_loop"}`,
    bindings: ["uniform", "read", "read", "rw", "read", "read"],
    code: /* wgsl */ `
${ITER_WGSL}
${GEMM_UNIFORM_WGSL}
${GEMM_SCALAR_BINDINGS_WGSL}
// A's 16 rows x ${bk} k and B's ${bk} k x 16 columns of the current step.
var<workgroup> ta: array<array<f32, ${bk}>, 16>;
var<workgroup> tb: array<array<f32, 16>, ${bk}>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let M = select(g.m, it.rows, (g.flags & 1u) != 0u);
  let K = select(g.k, it.rows, (g.flags & 2u) != 0u);
  let N = g.n;
  let biasGrad = (g.flags & ${GEMM_BIAS_GRAD}u) != 0u;
  let aBase = g.aBase + select(0u, it.s0 * g.aRow, (g.flags & 4u) != 0u);
  let bBase = g.bBase + select(0u, it.s0 * g.bRow, (g.flags & 64u) != 0u);
  let row = w.y * 16u + l.y;
  let col = w.x * 16u + l.x;
  if (w.y * 16u >= M) { return; }
  let aRow = row < M;
  let bCol = col < N;
  let onesCol = biasGrad && col == N;
  var ra: array<f32, ${r}>;
  var rb: array<f32, ${r}>;
  // The values of step k0 into ra, rb (zeros outside A and B; ones in the bias column).
  ${
      loads.map((i) =>
        `let ak${i} = ${i * 16}u + l.x;
  let bk${i} = ${i * 16}u + l.y;`
      ).join("\n  ")
    }
  ${loads.map((i) => load(i, "0u")).join("\n  ")}
  var acc = 0.0;
  for (var k0 = 0u; k0 < K; k0 += ${bk}u) {
    ${
      loads.map((i) => `ta[l.y][ak${i}] = ra[${i}];\n    tb[bk${i}][l.x] = rb[${i}];`).join(
        "\n    ",
      )
    }
    workgroupBarrier();
    ${loads.map((i) => load(i, `k0 + ${bk}u`)).join("\n    ")}
    ${multiplyAdds}
    workgroupBarrier();
  }
  if (onesCol && aRow) {
    c[g.biasBase + row] = acc;
    return;
  }
  if (!aRow || !bCol) { return; }
  if ((g.flags & 8u) != 0u) { acc += bias[col]; }
  if ((g.flags & 16u) != 0u) { acc = max(acc, 0.0); }
  if ((g.flags & 32u) != 0u && !(mask[g.maskBase + row * g.maskRow + col] > 0.0)) { acc = 0.0; }
  c[g.cBase + row * g.cRow + col] = acc;
}
`,
  };
}

/** WGSL putting load `i` of the step that starts at k = `start` into registers. */
function load(i: number, start: string): string {
  const ak = `${start} + ak${i}`, bk = `${start} + bk${i}`;
  return `ra[${i}] = 0.0;
  if (aRow && ${ak} < K) { ra[${i}] = a[aBase + row * g.aRow + (${ak}) * g.aCol]; }
  rb[${i}] = select(0.0, 1.0, onesCol && ${bk} < K);
  if (bCol && ${bk} < K) { rb[${i}] = b[bBase + (${bk}) * g.bRow + col * g.bCol]; }`;
}

/** The engine's small-product GEMM. */
export const GEMM_NAIVE16: KernelSource = gemmNaiveKernel();
