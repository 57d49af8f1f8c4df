/**
 * PACT's backward over one hidden layer's input gradient G (rows x width, already masked by
 * pre > 0): entries whose unclipped value reached the clip a are zeroed (a clipped value passes no
 * gradient) and summed into a's gradient, one part per 8-column unit, in the CPU engine's order
 * (per unit, four partial sums by column modulo 4 over rows in order, combined as
 * (p0 + p2) + (p1 + p3)), so both engines find the same parts.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { ITER_WGSL } from "./iter.ts";

/** Columns per unit of a's gradient. */
export const PACT_UNIT = 8;

/** Rows of a unit staged in workgroup memory at a time. */
const TILE_ROWS = 256;

/**
 * One workgroup per 8-column unit of one layer. The workgroup stages a tile of rows (every lane
 * loading and zeroing 8 entries, so the loads are parallel and coalesced per 32-byte sector), then
 * four lanes add the tile's entries into the four partial sums in the CPU engine's order: each
 * sum is a chain of dependent adds, so the order stays exact while the loads no longer wait.
 */
export const PACT_BACKWARD: KernelSource = {
  name: "pact_backward",
  bindings: ["uniform", "read", "rw", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
struct G { width: u32, layer: u32, partBase: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> alphas: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read> pre: array<f32>;
@group(0) @binding(4) var<storage, read_write> parts: array<f32>;

const TILE_ROWS = ${TILE_ROWS}u;
var<workgroup> tile: array<f32, ${TILE_ROWS * 8}>;

@compute @workgroup_size(${TILE_ROWS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let u = wg.x;
  let c0 = u * 8u;
  if (c0 >= g.width) { return; }
  let cols = min(8u, g.width - c0);
  let a = alphas[g.layer];
  // Lane t < 4 owns the partial sum of columns c0 + t and c0 + t + 4.
  var acc = 0.0;
  for (var r0 = 0u; r0 < it.rows; r0 += TILE_ROWS) {
    for (var k = 0u; k < 8u; k++) {
      let e = k * TILE_ROWS + t;
      let r = r0 + e / 8u;
      let c = e % 8u;
      // An unclipped entry adds +0, which leaves every partial sum as it was.
      var v = 0.0;
      if (r < it.rows && c < cols) {
        let i = r * g.width + c0 + c;
        if (pre[i] >= a) {
          v = grad[i];
          grad[i] = 0.0;
        }
      }
      tile[e] = v;
    }
    workgroupBarrier();
    if (t < 4u) {
      let n = min(TILE_ROWS, it.rows - r0);
      var rr = 0u;
      // Eight loads, then their adds in the same order: the chain waits on adds, not loads.
      for (; rr + 4u <= n; rr += 4u) {
        let e = rr * 8u + t;
        let v0 = tile[e];
        let v1 = tile[e + 4u];
        let v2 = tile[e + 8u];
        let v3 = tile[e + 12u];
        let v4 = tile[e + 16u];
        let v5 = tile[e + 20u];
        let v6 = tile[e + 24u];
        let v7 = tile[e + 28u];
        acc += v0;
        acc += v1;
        acc += v2;
        acc += v3;
        acc += v4;
        acc += v5;
        acc += v6;
        acc += v7;
      }
      for (; rr < n; rr++) {
        acc += tile[rr * 8u + t];
        acc += tile[rr * 8u + t + 4u];
      }
    }
    workgroupBarrier();
  }
  if (t < 4u) { tile[t] = acc; }
  workgroupBarrier();
  if (t == 0u) { parts[g.partBase + u] = (tile[0] + tile[2]) + (tile[1] + tile[3]); }
}
`,
};
