/**
 * The embedding-bag gather (`engine/gpu/kernels/gather.ts`: vec4 where the width is a multiple of
 * 4, else scalar; several samples an invocation) against the kernel it replaced, kept here as the
 * reference (one invocation per float and sample, scalar loads): the interaction input T must be
 * the same bits for plain, DQRM fake-quantized and DoReFa gathers, over tables split across
 * arenas in several arena groups (later groups adding to T), multi-index and empty bags, a batch
 * not starting at the chunk's first sample and batch sizes that fill no invocation's samples
 * evenly. Needs a WebGPU adapter; without one the test is reported as ignored.
 */
import assert from "node:assert/strict";
import { findTestAdapter } from "./gpu_setup.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { planTables, segmentWords } from "../engine/gpu/table_plan.ts";
import { arenaWgsl } from "../engine/gpu/kernels/arenas.ts";
import {
  GATHER_ACCUMULATE,
  GATHER_DOREFA,
  GATHER_QUANTIZE,
  gatherGrid,
  gatherKernel,
  gatherWidth,
} from "../engine/gpu/kernels/gather.ts";
import { ITER_WGSL } from "../engine/gpu/kernels/iter.ts";
import type { BindingKind, KernelSource } from "../engine/gpu/pipelines.ts";
import { Rng } from "../engine/rng.ts";

const ignore = (await findTestAdapter()).adapter === null;

/** The gather before vec4 loads: one invocation per (table, float, sample), x by 64 lanes. */
function referenceGather(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read", "read", "read", "rw"];
  for (let i = 0; i < k; i++) bindings.push("read");
  return {
    name: `gather_reference_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
struct G { tables: u32, d: u32, ldt: u32, flags: u32, arena0: u32, arenas: u32, levels: f32, pad: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> segs: array<vec4u>;
@group(0) @binding(3) var<storage, read> indices: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<storage, read> scales: array<f32>;
@group(0) @binding(6) var<storage, read_write> t: array<f32>;
${arenaWgsl(k, 7, false)}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let tb = id.x / g.d;
  let q = id.x % g.d;
  let s = id.y;
  if (tb >= g.tables || s >= it.rows) { return; }
  let info = dir[tb];
  let a = offsets[info.y + it.s0 + s];
  let e = offsets[info.y + it.s0 + s + 1];
  let quantize = (g.flags & 1u) != 0u;
  let scale = scales[tb];
  let n = g.levels;
  let dorefa = (g.flags & 4u) != 0u;
  let inv = 1.0 / (2.0 * scale);
  var acc = 0.0;
  for (var j = a; j < e; j++) {
    let row = indices[info.x + j];
    let seg = segmentOf(info.z, info.w, row);
    if (seg.z < g.arena0 || seg.z >= g.arena0 + g.arenas) { continue; }
    var v = arenaRead(seg.z - g.arena0, seg.w + (row - seg.x) * g.d + q);
    if (quantize) { v = clamp(round(v / scale), -n - 1.0, n) * scale; }
    if (dorefa) { v = (2.0 * round(n * (tanh(clamp(v, -10.0, 10.0)) * inv + 0.5))) / n - 1.0; }
    acc += v;
  }
  let dst = s * g.ldt + (tb + 1u) * g.d + q;
  if ((g.flags & 2u) != 0u) { t[dst] += acc; } else { t[dst] = acc; }
}
`,
  };
}

Deno.test("gather grids cover every sample block's column groups", () => {
  assert.equal(gatherWidth(64), 4);
  assert.equal(gatherWidth(6), 1);
  // Terabyte b16384: 26 tables x 16 vec4s x 4096 sample blocks, 64 invocations a workgroup.
  assert.deepEqual(gatherGrid(26, 64, 16384), [26624, 1]);
  assert.deepEqual(gatherGrid(26, 16, 2048), [832, 1]);
  // Past 65,535 workgroups in x the grid wraps into y.
  assert.deepEqual(gatherGrid(26, 127, 65536), [65535, 13]);
  assert.deepEqual(gatherGrid(26, 64, 0), [0, 0]);
});

Deno.test({
  name:
    "gather equals the scalar one-invocation-per-float kernel bit for bit (every flag, split tables)",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    const rng = new Rng(71, 3);
    try {
      // Widths 8 and 12 take vec4 loads, 6 and 5 scalar ones; arenas of 7 rows, two a group.
      for (const d of [8, 12, 6, 5]) {
        const tableRows = [23, 1, 9, 40, 6];
        const tables = tableRows.length;
        const plan = planTables(tableRows, d, 7 * d * 4, 2);
        assert.ok(plan.groups >= 3, "expected several arena groups");
        const arenas = plan.arenaFloats.map((f) =>
          h.storage(Float32Array.from({ length: f }, () => (rng.next() * 2 - 1) * 1.5))
        );
        const samples = 41;
        // Bags of 0-5 rows; hot rows (0) repeated within a bag.
        const indices: number[] = [], offsets: number[] = [];
        const dir = new Uint32Array(tables * 4);
        const firstSegment = plan.firstSegment, counts = plan.segmentCount;
        tableRows.forEach((rows, t) => {
          dir.set([indices.length, offsets.length, firstSegment[t], counts[t]], 4 * t);
          offsets.push(0);
          let n = 0;
          for (let s = 0; s < samples; s++) {
            const bag = rng.int(6);
            for (let j = 0; j < bag; j++) indices.push(rng.next() < 0.2 ? 0 : rng.int(rows));
            n += bag;
            offsets.push(n);
          }
        });
        const ldt = (tables + 1) * d;
        const tInit = Float32Array.from({ length: samples * ldt + 8 }, () => rng.next() - 0.5);
        const scales = Float32Array.from({ length: tables }, () => 0.05 + rng.next() * 0.3);
        const shared = [
          h.storage(dir),
          h.storage(segmentWords(plan)),
          h.storage(Uint32Array.from(indices)),
          h.storage(Uint32Array.from(offsets)),
          h.storage(scales),
        ];
        const k = plan.arenasPerGroup;
        const groupArenas = (g: number) => {
          const list = arenas.slice(g * k, g * k + k);
          while (list.length < k) list.push(h.storage(4));
          return list;
        };
        const batches = [{ s0: 3, rows: 13 }, { s0: 0, rows: 41 }, { s0: 40, rows: 1 }];
        h.setIterations(batches);
        for (const [method, levels] of [[0, 7], [GATHER_QUANTIZE, 7], [GATHER_DOREFA, 15]]) {
          for (let b = 0; b < batches.length; b++) {
            const run = async (source: KernelSource, grid: (rows: number) => [number, number]) => {
              const t = h.storage(tInit);
              const encoder = h.device.createCommandEncoder();
              const pass = encoder.beginComputePass();
              h.useIteration(pass, b);
              for (let g = 0; g < plan.groups; g++) {
                const flags = method | (g > 0 ? GATHER_ACCUMULATE : 0);
                const uniform = h.uniform(
                  [tables, d, ldt, flags, g * k, k, levels, 0],
                  new Set([6]),
                );
                const kernel = h.bind(source, [uniform, ...shared, t, ...groupArenas(g)]);
                h.dispatch(pass, kernel, ...grid(batches[b].rows));
              }
              pass.end();
              h.device.queue.submit([encoder.finish()]);
              return new Uint32Array((await h.read(t, tInit.length)).buffer);
            };
            const want = await run(
              referenceGather(k),
              (rows) => [Math.ceil((tables * d) / 64), rows],
            );
            const got = await run(
              gatherKernel(k, gatherWidth(d)),
              (rows) => gatherGrid(tables, d, rows),
            );
            const what = JSON.stringify({ d, method, batch: batches[b] });
            const at = got.findIndex((v, i) => v !== want[i]);
            assert.equal(at, -1, `${what}: T[${at}] bits ${got[at]}, expected ${want[at]}`);
          }
        }
      }
    } finally {
      h.destroy();
    }
  },
});
