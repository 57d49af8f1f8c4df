/**
 * LSQ's backward of one MLP weight matrix, one invocation per output row r with learned step
 * s_r: masks the weight gradient G in place to the clipping range (G = 0 where w / s_r falls
 * outside [-n - 1, n]: the masked straight-through estimator) and writes the step's gradient
 * ds[r] = sum_c G[r, c] t(w / s_r), t(v) = -n - 1 below the range, n above it and
 * roundHalfEven(v) - v inside. The sum runs as the CPU engine's SIMD kernel does (four partial
 * sums by column modulo 4, combined as (p0 + p2) + (p1 + p3)), so the two agree exactly when
 * their weight gradients do.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Columns of a row staged in workgroup memory at a time. */
const TILE = 256;

/**
 * One workgroup per output row of one layer: its 64 lanes find a tile's products G t and mask G
 * in parallel (coalesced loads), then four lanes add the products into the four partial sums
 * in column order, so the sums stay the CPU engine's while the loads no longer wait in turn.
 */
export const LSQ_ROWS: KernelSource = {
  name: "lsq_rows",
  bindings: ["uniform", "read", "rw", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { outputs: u32, inputs: u32, wBase: u32, sBase: u32, levels: f32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read> steps: array<f32>;
@group(0) @binding(4) var<storage, read_write> stepGrads: array<f32>;

const TILE = ${TILE}u;
var<workgroup> products: array<f32, ${TILE}>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let row = wg.x;
  if (row >= g.outputs) { return; }
  let s = steps[g.sBase + row];
  let n = g.levels;
  let base = g.wBase + row * g.inputs;
  // Lane l < 4 owns the partial sum of the columns c = l (mod 4).
  var acc = 0.0;
  for (var c0 = 0u; c0 < g.inputs; c0 += TILE) {
    for (var k = 0u; k < TILE; k += 64u) {
      let c = c0 + k + l;
      // A column past the row adds +0, which leaves every partial sum as it was.
      var p = 0.0;
      if (c < g.inputs) {
        let v = w[base + c] / s;
        let gv = grad[base + c];
        var t = round(v) - v;
        if (v < -n - 1.0) {
          t = -n - 1.0;
          grad[base + c] = 0.0;
        } else if (v > n) {
          t = n;
          grad[base + c] = 0.0;
        }
        p = gv * t;
      }
      products[k + l] = p;
    }
    workgroupBarrier();
    if (l < 4u) {
      for (var j = l; j < TILE; j += 4u) { acc += products[j]; }
    }
    workgroupBarrier();
  }
  if (l < 4u) { products[l] = acc; }
  workgroupBarrier();
  if (l == 0u) {
    stepGrads[g.sBase + row] = (products[0] + products[2]) + (products[1] + products[3]);
  }
}
`,
};
