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

/** One invocation per output row of one layer. */
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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let row = id.x;
  if (row >= g.outputs) { return; }
  let s = steps[g.sBase + row];
  let n = g.levels;
  let base = g.wBase + row * g.inputs;
  var acc = vec4f(0.0);
  for (var c = 0u; c < g.inputs; c++) {
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
    acc[c % 4u] += gv * t;
  }
  stepGrads[g.sBase + row] = (acc.x + acc.z) + (acc.y + acc.w);
}
`,
};
