/**
 * Data-parallel training: the global MLP gradient from the all-reduced message sums, written into
 * the engine's gradient buffer as `writeGlobalMlpGradient` of `comm/compression.ts` writes it on
 * the host: per value, `fround((s * sum) / workers)` with the tensor's shared scale s (1 unquantized).
 * Here it is `(s * sum) * (1 / workers)` in float32, which is the same number when `workers` is a
 * power of two (so that the division only moves the exponent) and the sum is exact in float32
 * (integer sums below 2^24): the host's float64 product is exact, and rounding it to float32 once
 * equals float32's correctly rounded product. The caller keeps other worker counts on the host.
 * One invocation per value; values in message order (per layer its weights, row-major, then its
 * bias), written to their places in the GPU layout.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";
import { gridOf, MOST_PER_DIMENSION } from "./grid.ts";

/** Invocations of a workgroup. */
export const MLP_GRAD_WORKGROUP = 256;

/** Flag: the sums are int32 (quantized messages), else float32. */
export const MLP_GRAD_INT_SUMS = 1;

/** Scale index meaning "no scale" (1: unquantized messages). */
export const MLP_GRAD_NO_SCALE = 0xffffffff;

/** The kernel over `layers` layers (uniform: see {@linkcode mlpGradDequantSetup}). */
export function mlpGradDequantKernel(layers: number): KernelSource {
  return {
    name: `mlp_grad_dequant_${layers}`,
    bindings: ["uniform", "read", "read", "rw"],
    code: /* wgsl */ `
${ITER_WGSL}
struct Layer { at: u32, weights: u32, count: u32, wOff: u32, bOff: u32, sw: u32, sb: u32, p0: u32 }
struct G { layers: u32, values: u32, inv: f32, flags: u32, layer: array<Layer, ${layers}> }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> sums: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(${MLP_GRAD_WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let j = (wg.y * ${MOST_PER_DIMENSION}u + wg.x) * ${MLP_GRAD_WORKGROUP}u + li;
  if (j >= g.values) { return; }
  var l = 0u;
  for (; l + 1u < g.layers; l++) {
    if (j < g.layer[l + 1u].at) { break; }
  }
  let y = g.layer[l];
  let k = j - y.at;
  let isWeight = k < y.weights;
  let dst = select(y.bOff + (k - y.weights), y.wOff + k, isWeight);
  let si = select(y.sb, y.sw, isWeight);
  var s = 1.0;
  if (si != ${MLP_GRAD_NO_SCALE}u) { s = scales[si]; }
  var sum = bitcast<f32>(sums[j]);
  if ((g.flags & ${MLP_GRAD_INT_SUMS}u) != 0u) { sum = f32(bitcast<i32>(sums[j])); }
  grad[dst] = (s * sum) * g.inv;
}
`,
  };
}

/**
 * The uniform words (with the index of its one float word) and dispatch grid of
 * {@linkcode mlpGradDequantKernel}, and the values of a message, from the message's tensors
 * (`planGradientTensors` of `grad_compress.ts`: per tensor its offset in the GPU layout, place in
 * the message, length and scale index; each layer's weights, then its bias). `scaled`: quantized
 * messages, int32 sums with the tensors' scales; else float32 sums, no scales. `workers` a power
 * of two (`GpuMlpGradient.supports` says where the kernel gives the host's bits).
 */
export function mlpGradDequantSetup(
  plan: { table: Uint32Array; elements: number; tensors: number },
  workers: number,
  scaled: boolean,
): { words: number[]; floats: Set<number>; grid: [number, number]; values: number } {
  const layers = plan.tensors / 2;
  const words = [layers, plan.elements, 1 / workers, scaled ? MLP_GRAD_INT_SUMS : 0];
  for (let i = 0; i < layers; i++) {
    const [wOff, at, weights, sw] = plan.table.subarray(8 * i, 8 * i + 4);
    const [bOff, , bias, sb] = plan.table.subarray(8 * i + 4, 8 * i + 8);
    const none = MLP_GRAD_NO_SCALE;
    words.push(at, weights, weights + bias, wOff, bOff, scaled ? sw : none, scaled ? sb : none, 0);
  }
  const groups = Math.ceil(plan.elements / MLP_GRAD_WORKGROUP);
  return { words, floats: new Set([2]), grid: gridOf(groups), values: plan.elements };
}
