/**
 * DoReFa fake quantization of every MLP weight matrix (the public DQRM code's "PACT" weights):
 * q = 2 round(k (tanh(w) / (2 m) + 1/2)) / k - 1, k = 2^bits - 1, m = max(tanh(max|W|), 1e-8)
 * over each whole matrix, from the row maxima `row_max_abs` left. One workgroup per output row of
 * any layer, all layers in one dispatch; each reduces its layer's row maxima itself (outputs
 * reads), then quantizes its row. `tanh` is evaluated at |x| <= 10 (tanh(10) is 1 in float32),
 * which keeps every implementation finite.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";
import { rowLayersWgsl } from "./row_quantize.ts";
import { MOST_PER_DIMENSION } from "./grid.ts";

/**
 * The kernel over `layers` layers, bound with `rowQuantizeSetup`'s uniform (its levels word
 * holding k) and grid.
 */
export function dorefaQuantizeKernel(layers: number): KernelSource {
  return {
    name: `dorefa_quantize_${layers}`,
    bindings: ["uniform", "read", "rw", "read"],
    code: /* wgsl */ `
${ITER_WGSL}
${rowLayersWgsl(layers)}
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read> rowMax: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let all = wg.y * ${MOST_PER_DIMENSION}u + wg.x;
  if (all >= g.rows) { return; }
  let y = g.layer[layerOf(all)];
  let row = all - y.first;
  var m = 0.0;
  for (var r = l.x; r < y.outputs; r += 64u) { m = max(m, rowMax[y.sBase + r]); }
  let tanhMax = max(tanh(min(reduceMax(l.x, m), 10.0)), 1e-8);
  let inv = 1.0 / (2.0 * tanhMax);
  let k = g.levels;
  let base = y.wBase + row * y.inputs;
  for (var c = l.x; c < y.inputs; c += 64u) {
    let t = tanh(clamp(w[base + c], -10.0, 10.0)) * inv + 0.5;
    q[base + c] = (2.0 * round(k * t)) / k - 1.0;
  }
}
`,
  };
}
