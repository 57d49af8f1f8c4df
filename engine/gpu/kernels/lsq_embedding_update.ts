/**
 * LSQ's sparse update of the embedding tables (learned per-table step s_t, `levels` n): every
 * gathered value moves by -lr * its gradient only where w / s_t lies inside [-n - 1, n] (the mask
 * of LSQ's straight-through estimator), and each gathered value's part of the step's gradient,
 * grad * t(w / s_t) (t as in `lsq_rows`), is written to `parts` at [table, entry of the batch,
 * column] for `lsq_table_step` to sum. Rows are owned as in `embedding_update`: the invocation of
 * a row's first occurrence in the batch applies every occurrence in index order, so a value seen
 * twice is masked (and its part found) with the value the first occurrence left, as the CPU
 * engine does.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { BAG_OF_WGSL } from "./bags.ts";
import { ITER_WGSL } from "./iter.ts";
import { ROW_OWNER_MAIN_WGSL, UPDATE_INPUTS_WGSL } from "./row_owner.ts";

/** The LSQ update kernel over `k` bound arenas. */
export function lsqEmbeddingUpdateKernel(k: number): KernelSource {
  const bindings: BindingKind[] = [
    "uniform",
    "read",
    "read",
    "read",
    "read",
    "read",
    "read",
    "rw",
  ];
  for (let i = 0; i < k; i++) bindings.push("rw");
  return {
    name: `lsq_embedding_update_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
${BAG_OF_WGSL}
struct G {
  tables: u32, d: u32, ldt: u32, partStride: u32,
  arena0: u32, arenas: u32, levels: f32, pad0: u32,
}
@group(0) @binding(0) var<uniform> g: G;
${UPDATE_INPUTS_WGSL}
@group(0) @binding(6) var<storage, read> scales: array<f32>;
// Per table, partStride floats: the step-gradient part of each gathered value of the batch.
@group(0) @binding(7) var<storage, read_write> parts: array<f32>;
${arenaWgsl(k, 8, true)}

${ROW_OWNER_MAIN_WGSL}
  let s = scales[tb];
  let n = g.levels;
  var v = arenaRead(local, p);
  for (var jj = j; jj < b; jj++) {
    if (entryRow(jj) != row) { continue; }
    let lo = entryBag(jj);
    let grad = dt[lo * g.ldt + (tb + 1u) * g.d + q];
    let x = v / s;
    var t = 0.0;
    if (x < -n - 1.0) {
      t = -n - 1.0;
    } else if (x > n) {
      t = n;
    } else {
      t = round(x) - x;
      v = v - it.lr * grad;
    }
    parts[tb * g.partStride + (jj - a) * g.d + q] = grad * t;
  }
  arenaWrite(local, p, v);
}
`,
  };
}
