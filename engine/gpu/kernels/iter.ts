/**
 * The per-iteration uniform block every kernel sees at `@group(1) @binding(0)` (one 256-byte slot
 * per iteration of a chunk, bound with a dynamic offset). Not a kernel: a WGSL declaration that
 * the kernels include.
 *
 * @module
 */

/** Words of the block, in order. */
export const ITER_FIELDS = ["s0", "rows", "slot", "mode", "lr", "out"] as const;

/** `mode` bit: compute the loss gradient (training). */
export const MODE_GRADIENT = 1;
/** `mode` bit: write probabilities. */
export const MODE_PROBABILITIES = 2;

/** WGSL declaration of the iteration block. */
export const ITER_WGSL = /* wgsl */ `
struct Iter {
  s0: u32,    // first sample of the batch in the chunk
  rows: u32,  // samples in the batch
  slot: u32,  // iteration index in the chunk (loss slot)
  mode: u32,  // 1: loss gradient, 2: write probabilities
  lr: f32,    // learning rate
  out: u32,   // first probability slot of the batch
  zero: u32,  // never written, so 0: see unfused()
  pad1: u32,
}
@group(1) @binding(0) var<uniform> it: Iter;

// p as the f32 it was rounded to, opaque to the compiler: NVIDIA's driver fuses w - a * b into one
// FMA (one rounding), where the CPU engine rounds a * b first; or-ing the bits with a 0 it
// cannot see keeps the two roundings, and the engines equal bit for bit.
fn unfused(p: f32) -> f32 { return bitcast<f32>(bitcast<u32>(p) | it.zero); }
`;
