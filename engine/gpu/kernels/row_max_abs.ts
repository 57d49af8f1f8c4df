/**
 * The largest |w| of every output row of every MLP weight matrix, into `rowMax[sBase + row]`: the
 * first step of the whole-matrix scales (matrix-wise minmax, DoReFa's max |tanh(w)|). One
 * workgroup per output row of any layer, reduced in workgroup memory; one dispatch for all
 * layers (they are independent, and each dispatch of a pass waits for the one before it).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";
import { rowLayersWgsl } from "./row_quantize.ts";
import { MOST_PER_DIMENSION } from "./grid.ts";

/** The kernel over `layers` layers, bound with `rowQuantizeSetup`'s uniform and grid. */
export function rowMaxAbsKernel(layers: number): KernelSource {
  return {
    name: `row_max_abs_${layers}`,
    bindings: ["uniform", "read", "rw"],
    code: /* wgsl */ `
${ITER_WGSL}
${rowLayersWgsl(layers)}
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> rowMax: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let all = wg.y * ${MOST_PER_DIMENSION}u + wg.x;
  if (all >= g.rows) { return; }
  let y = g.layer[layerOf(all)];
  let row = all - y.first;
  let base = y.wBase + row * y.inputs;
  var m = 0.0;
  for (var c = l.x; c < y.inputs; c += 64u) { m = max(m, abs(w[base + c])); }
  let most = reduceMax(l.x, m);
  if (l.x == 0u) { rowMax[y.sBase + row] = most; }
}
`,
  };
}
