/**
 * HAWQ's whole-table fake-quantized copies: copy = clamp(round(w / s_t), -n - 1, n) s_t for every
 * value of every table, from the FP32 arenas into copy arenas of the same plan (twice the table
 * memory, the cost DQRM avoids). x = block of a segment, y = segment.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { ITER_WGSL } from "./iter.ts";
import { SEGMENT_BINDINGS_WGSL, SEGMENT_BLOCK_MAIN_WGSL } from "./segment_blocks.ts";

/** Least floats one workgroup handles (more where a segment needs over 65,535 blocks). */
export const COPY_QUANTIZE_BLOCK = 256 * 16;

/** The copy quantizer over `k` bound source arenas and their `k` copies. */
export function tableCopyQuantizeKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read"];
  for (let i = 0; i < k; i++) bindings.push("read");
  for (let i = 0; i < k; i++) bindings.push("rw");
  const sources = Array.from(
    { length: k },
    (_, i) => `@group(0) @binding(${4 + i}) var<storage, read> source${i}: array<f32>;`,
  ).join("\n");
  const reads = Array.from({ length: k }, (_, i) => `    case ${i}u: { return source${i}[i]; }`)
    .join("\n");
  return {
    name: `table_copy_quantize_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
struct G { segments: u32, d: u32, arena0: u32, arenas: u32, levels: f32, block: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
${SEGMENT_BINDINGS_WGSL}
@group(0) @binding(3) var<storage, read> scales: array<f32>;
${sources}
fn sourceRead(a: u32, i: u32) -> f32 {
  switch a {
${reads}
    default: { return 0.0; }
  }
}
${arenaWgsl(k, 4 + k, true)}

${SEGMENT_BLOCK_MAIN_WGSL}
  let end = min(count, start + g.block);
  let s = scales[segTable[si]];
  let n = g.levels;
  let a = seg.z - g.arena0;
  for (var i = start + l.x; i < end; i += 256u) {
    arenaWrite(a, seg.w + i, clamp(round(sourceRead(a, seg.w + i) / s), -n - 1.0, n) * s);
  }
}
`,
  };
}
