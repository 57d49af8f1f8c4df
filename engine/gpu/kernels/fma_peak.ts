/**
 * The adapter's FP32 FMA peak, measured: every invocation runs {@linkcode FMA_PEAK_CHAINS}
 * independent vec4 multiply-add chains (enough in flight to hide the FMA latency) for `loops`
 * rounds of {@linkcode FMA_PEAK_UNROLL} steps, and writes one float (so that nothing is dead
 * code). Not an engine kernel: `cli/bench_gpu_kernels.ts` divides each GEMM's rate by it.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";

/** Independent vec4 chains per invocation. */
export const FMA_PEAK_CHAINS = 8;
/** Chain steps per loop round. */
export const FMA_PEAK_UNROLL = 4;
/** Invocations per workgroup. */
export const FMA_PEAK_WORKGROUP = 256;

/** Floating-point operations (2 per lane FMA) of one invocation over `loops` rounds. */
export function fmaPeakFlopsPerInvocation(loops: number): number {
  return 2 * 4 * FMA_PEAK_CHAINS * FMA_PEAK_UNROLL * loops;
}

const step = Array.from({ length: FMA_PEAK_CHAINS }, (_, c) => `c${c} = fma(c${c}, x, y);`)
  .join(" ");

/** The uniform words of {@linkcode FMA_PEAK} for `loops` rounds (x = 0.99999, y = 1e-6). */
export function fmaPeakUniform(loops: number): number[] {
  const words = new Uint32Array(4);
  words[0] = loops;
  new Float32Array(words.buffer).set([0.99999, 1e-6], 1);
  return Array.from(words);
}

/** Bindings: uniform (loops, x, y as f32 bits), out (one float per invocation). */
export const FMA_PEAK: KernelSource = {
  name: "fma_peak",
  bindings: ["uniform", "rw"],
  code: /* wgsl */ `
struct P { loops: u32, x: f32, y: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${FMA_PEAK_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = id.x + id.y * nw.x * ${FMA_PEAK_WORKGROUP}u;
  let x = vec4f(p.x);
  let y = vec4f(p.y);
  let s = f32(i & 1023u) * 1e-3;
  ${
    Array.from(
      { length: FMA_PEAK_CHAINS },
      (_, c) => `var c${c} = vec4f(s + ${c}.0, s - ${c}.0, s * ${c + 1}.0, s + ${c * 3}.5);`,
    ).join("\n  ")
  }
  for (var r = 0u; r < p.loops; r++) {
    ${Array.from({ length: FMA_PEAK_UNROLL }, () => step).join("\n    ")}
  }
  let sum = ${Array.from({ length: FMA_PEAK_CHAINS }, (_, c) => `c${c}`).join(" + ")};
  out[i] = sum.x + sum.y + sum.z + sum.w;
}
`,
};
