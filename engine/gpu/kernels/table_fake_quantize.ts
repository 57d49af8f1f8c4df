/**
 * Fake-quantizes whole tables in place with their scales (post-training quantization):
 * w = clamp(round(w / s_t), -n - 1, n) s_t. x = block of a segment, y = segment.
 *
 * @module
 */
import type { BindingKind, KernelSource } from "../pipelines.ts";
import { arenaWgsl } from "./arenas.ts";
import { ITER_WGSL } from "./iter.ts";
import { SEGMENT_BINDINGS_WGSL, SEGMENT_BLOCK_MAIN_WGSL } from "./segment_blocks.ts";

/** Least floats one workgroup handles (more where a segment needs over 65,535 blocks). */
export const FAKE_QUANTIZE_BLOCK = 256 * 16;

/** The in-place table quantizer over `k` bound arenas. */
export function tableFakeQuantizeKernel(k: number): KernelSource {
  const bindings: BindingKind[] = ["uniform", "read", "read", "read"];
  for (let i = 0; i < k; i++) bindings.push("rw");
  return {
    name: `table_fake_quantize_${k}`,
    bindings,
    code: /* wgsl */ `
${ITER_WGSL}
struct G { segments: u32, d: u32, arena0: u32, arenas: u32, levels: f32, block: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
${SEGMENT_BINDINGS_WGSL}
@group(0) @binding(3) var<storage, read> scales: array<f32>;
${arenaWgsl(k, 4, true)}

${SEGMENT_BLOCK_MAIN_WGSL}
  let end = min(count, start + g.block);
  let s = scales[segTable[si]];
  let n = g.levels;
  let a = seg.z - g.arena0;
  for (var i = start + l.x; i < end; i += 256u) {
    let v = arenaRead(a, seg.w + i);
    arenaWrite(a, seg.w + i, clamp(round(v / s), -n - 1.0, n) * s);
  }
}
`,
  };
}
