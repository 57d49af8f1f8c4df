/**
 * Where every buffer of the CPU engine lives in its shared WebAssembly memory. The layout is a
 * pure function of the spec and the largest batch, so every thread computes the same one.
 * Widths are padded to multiples of 4 floats with zeros, which the kernels rely on: padding
 * rows and columns of weights, activations and gradients stay exactly zero.
 *
 * @module
 */
import { interactionWidth, type ModelSpec } from "../spec.ts";
import { WASM_PAGE } from "./wasm.ts";

/** Rounds up to a multiple of 4. */
export function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** One linear layer's buffers (byte pointers) and padded sizes (floats). */
export interface LinearLayout {
  inputs: number;
  outputs: number;
  /** Padded input width: leading dimension of the weights. */
  inP: number;
  /** Padded output width. */
  outP: number;
  w: number;
  b: number;
  gw: number;
  gb: number;
  /** Fake-quantized weights and biases (QAT), and the per-row scales they were made with. */
  wq: number;
  bq: number;
  scales: number;
  /** Gradient of the per-row scales (LSQ). */
  gscales: number;
  /** Input activation and its leading dimension. */
  x: number;
  ldx: number;
  /** Output activation and its leading dimension. */
  y: number;
  ldy: number;
  /** Gradient of the output (already through this layer's activation). */
  dy: number;
  lddy: number;
  /** Gradient of the input, or 0 when not needed (first bottom layer). */
  dx: number;
  lddx: number;
  /** Activation whose ReLU derivative masks dx (the input, when it came out of a ReLU), or 0. */
  mask: number;
  relu: boolean;
  /**
   * PACT: the unclipped ReLU output (0 for layers whose output does not feed another linear
   * layer), and the one of the layer below, which masks dx instead of `mask` under PACT.
   */
  pre: number;
  maskPre: number;
}

/** The whole engine layout. */
export interface CpuLayout {
  maxBatch: number;
  /** Vectors in the interaction (tables + 1) and padded embedding width. */
  vectors: number;
  dimP: number;
  /** Dense input [maxBatch, inP of bottom layer 0]. */
  dense: number;
  /** Interaction input T [maxBatch, vectors * dimP] and its gradient. */
  t: number;
  dt: number;
  ldt: number;
  /** Interaction output R [maxBatch, topInP] and its gradient. */
  r: number;
  dr: number;
  ldr: number;
  bottom: LinearLayout[];
  top: LinearLayout[];
  /** Bytes used, and pages to allocate. */
  bytes: number;
  pages: number;
}

/** Computes the layout of `spec` for batches of at most `maxBatch` samples. */
export function planLayout(spec: ModelSpec, maxBatch: number, pact = false): CpuLayout {
  let next = 1024; // keep address 0 unused, so that 0 means "none"
  const alloc = (floats: number) => {
    const at = next;
    next += Math.ceil((floats * 4) / 64) * 64;
    return at;
  };
  const vectors = spec.tableRows.length + 1;
  const dimP = pad4(spec.embeddingDim);
  const ldt = vectors * dimP;
  const ldr = pad4(interactionWidth(spec));
  const ld0 = pad4(spec.denseFeatures);
  const dense = alloc(maxBatch * ld0);
  const t = alloc(maxBatch * ldt);
  const dt = alloc(maxBatch * ldt);
  const r = alloc(maxBatch * ldr);
  const dr = alloc(maxBatch * ldr);

  const layers = (
    widths: number[],
    input: { x: number; ldx: number; dx: number; mask: boolean },
    last: { y: number; ldy: number; dy: number; relu: boolean } | null,
  ) => {
    const out: LinearLayout[] = [];
    let x = input.x, ldx = input.ldx, dx = input.dx, mask = 0, maskPre = 0;
    for (let l = 1; l < widths.length; l++) {
      const inP = pad4(widths[l - 1]);
      const outP = pad4(widths[l]);
      const isLast = l === widths.length - 1;
      const y = isLast && last ? last.y : alloc(maxBatch * outP);
      const ldy = isLast && last ? last.ldy : outP;
      const dy = isLast && last ? last.dy : alloc(maxBatch * outP);
      // PACT clips the outputs that feed the next linear layer of the same MLP.
      const pre = pact && !isLast ? alloc(maxBatch * outP) : 0;
      out.push({
        inputs: widths[l - 1],
        outputs: widths[l],
        inP,
        outP,
        w: alloc(outP * inP),
        b: alloc(outP),
        gw: alloc(outP * inP),
        gb: alloc(outP),
        wq: alloc(outP * inP),
        bq: alloc(outP),
        scales: alloc(outP),
        gscales: alloc(outP),
        x,
        ldx,
        y,
        ldy,
        dy,
        lddy: ldy,
        dx,
        lddx: ldx,
        mask,
        relu: isLast && last ? last.relu : true,
        pre,
        maskPre,
      });
      x = y, ldx = ldy, dx = dy, mask = y, maskPre = pre;
    }
    return out;
  };
  // Bottom MLP: dense -> ... -> slot 0 of T (ReLU after every layer, the last included).
  const bottom = layers(spec.bottomMlp, { x: dense, ldx: ld0, dx: 0, mask: false }, {
    y: t,
    ldy: ldt,
    dy: dt,
    relu: true,
  });
  // Top MLP: R -> ... -> logits (no activation on the last layer; sigmoid is in the loss).
  const top = layers(spec.topMlp, { x: r, ldx: ldr, dx: dr, mask: false }, null);
  top[top.length - 1].relu = false;
  const bytes = next;
  return {
    maxBatch,
    vectors,
    dimP,
    dense,
    t,
    dt,
    ldt,
    r,
    dr,
    ldr,
    bottom,
    top,
    bytes,
    pages: Math.ceil(bytes / WASM_PAGE),
  };
}

/** Splits `[0, n)` into `parts` contiguous ranges aligned to `unit`; returns part `i`. */
export function splitRange(n: number, unit: number, i: number, parts: number): [number, number] {
  const units = Math.ceil(n / unit);
  const lo = Math.floor((units * i) / parts) * unit;
  const hi = Math.floor((units * (i + 1)) / parts) * unit;
  return [Math.min(lo, n), Math.min(hi, n)];
}
