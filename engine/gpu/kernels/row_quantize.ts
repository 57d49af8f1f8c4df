/**
 * Fake quantization of every MLP weight matrix in one dispatch, one workgroup per output row of
 * any layer (the rows of the layers in order): q = clamp(round(w / s), -n - 1, n) s (round is
 * half to even in WGSL), the bias too when flag 1 is set. The row's scale s is, by flag:
 * - none (channel-wise minmax): s = max(max|w_row|, 1e-8) / n, reduced in workgroup memory and
 *   written to `scales`;
 * - `ROW_QUANTIZE_MATRIX` (matrix-wise minmax): s = max(max_r rowMax[r], 1e-8) / n over the
 *   layer's rows, from the maxima `row_max_abs` left (also written to `scales`);
 * - `ROW_QUANTIZE_LEARNED` (LSQ): s = scales[row], the learned step, read and left as it is.
 * One dispatch for all layers, not one per layer: the layers are independent, and each dispatch
 * of a pass waits for the one before it.
 *
 * @module
 */
import type { PackedLinear } from "../layout.ts";
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";
import { gridOf, MOST_PER_DIMENSION } from "./grid.ts";

/** Flag: quantize the bias with its row's scale. */
export const ROW_QUANTIZE_BIAS = 1;
/** Flag: one scale for the whole matrix, from the row maxima in `rowMax`. */
export const ROW_QUANTIZE_MATRIX = 2;
/** Flag: the scale is the learned step in `scales` (LSQ). */
export const ROW_QUANTIZE_LEARNED = 4;

/**
 * The uniform of a kernel with one workgroup (of 64 lanes) per output row of any of `layers`
 * layers, as {@linkcode rowQuantizeSetup} writes it (at binding 0 of group 0); `layerOf(row)`: the
 * layer that the row (counted over all layers in order) belongs to; and `reduceMax(lane, m)`: the
 * largest `m` of the workgroup's lanes.
 */
export function rowLayersWgsl(layers: number): string {
  return /* wgsl */ `
struct Layer { outputs: u32, inputs: u32, wBase: u32, bBase: u32, sBase: u32, first: u32, p0: u32, p1: u32 }
struct G { layers: u32, flags: u32, levels: f32, rows: u32, layer: array<Layer, ${layers}> }
@group(0) @binding(0) var<uniform> g: G;

fn layerOf(all: u32) -> u32 {
  var li = 0u;
  for (; li + 1u < g.layers; li++) {
    if (all < g.layer[li + 1u].first) { break; }
  }
  return li;
}

var<workgroup> part: array<f32, 64>;

fn reduceMax(l: u32, m: f32) -> f32 {
  part[l] = m;
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    if (l < h) { part[l] = max(part[l], part[l + h]); }
    workgroupBarrier();
  }
  return part[0];
}`;
}

/** The kernel over `layers` layers (their shapes and offsets in its uniform). */
export function rowQuantizeKernel(layers: number): KernelSource {
  return {
    name: `row_quantize_${layers}`,
    bindings: ["uniform", "read", "rw", "rw", "read"],
    code: /* wgsl */ `
${ITER_WGSL}
${rowLayersWgsl(layers)}
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;
@group(0) @binding(4) var<storage, read> rowMax: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let all = wg.y * ${MOST_PER_DIMENSION}u + wg.x;
  if (all >= g.rows) { return; }
  let y = g.layer[layerOf(all)];
  let row = all - y.first;
  let base = y.wBase + row * y.inputs;
  let n = g.levels;
  let learned = (g.flags & 4u) != 0u;
  var s = 0.0;
  if (learned) {
    s = scales[y.sBase + row];
  } else if ((g.flags & 2u) != 0u) {
    var m = 0.0;
    for (var r = l.x; r < y.outputs; r += 64u) { m = max(m, rowMax[y.sBase + r]); }
    s = max(reduceMax(l.x, m), 1e-8) / n;
  } else {
    var m = 0.0;
    for (var c = l.x; c < y.inputs; c += 64u) { m = max(m, abs(w[base + c])); }
    s = max(reduceMax(l.x, m), 1e-8) / n;
  }
  for (var c = l.x; c < y.inputs; c += 64u) {
    q[base + c] = clamp(round(w[base + c] / s), -n - 1.0, n) * s;
  }
  if (l.x == 0u) {
    if (!learned) { scales[y.sBase + row] = s; }
    if ((g.flags & 1u) != 0u) {
      q[y.bBase + row] = clamp(round(w[y.bBase + row] / s), -n - 1.0, n) * s;
    }
  }
}
`,
  };
}

/**
 * The uniform words of {@linkcode rowQuantizeKernel} over `layers` (with the index of its one
 * float word) and its dispatch grid.
 */
export function rowQuantizeSetup(
  layers: readonly PackedLinear[],
  levels: number,
  flags: number,
): { words: number[]; floats: Set<number>; grid: [number, number] } {
  const words = [layers.length, flags, levels, 0];
  let first = 0;
  for (const l of layers) {
    words.push(l.outputs, l.inputs, l.weightOffset, l.biasOffset, l.scaleOffset, first, 0, 0);
    first += l.outputs;
  }
  words[3] = first;
  return {
    words,
    floats: new Set([2]),
    grid: gridOf(first),
  };
}
