/**
 * Symmetric uniform quantization, as DQRM and its baselines use it: zero point 0,
 * `n = 2^(bits-1) - 1`, `q(x) = clamp(roundHalfEven(x / s), -n - 1, n) * s`,
 * `s = max(|min|, |max|) / n` (the absolute maximum floored at 1e-8). Arithmetic is float32,
 * as in PyTorch.
 *
 * @module
 */
import { z } from "zod";

/** Bit widths the quantizer supports. */
export const BIT_WIDTHS = [2, 4, 8, 16] as const;

/** A supported bit width. */
export type BitWidth = typeof BIT_WIDTHS[number];

const Bits = z.union([z.literal(2), z.literal(4), z.literal(8), z.literal(16)]);

/** How an engine fake-quantizes during training (quantization-aware training). */
export const QuantConfigSchema = z.object({
  /**
   * How scales are found: `"minmax"` (DQRM, HAWQ: the absolute maximum, table scales every
   * `scalePeriod` steps) or `"lsq"` (learned step size: scales are trained by SGD, initialised to
   * `2 mean|w| / sqrt(n)`, their gradient scaled by `1 / sqrt(n numel)`) or `"dorefa"` (DoReFa,
   * the public code's "PACT" baseline: `2 round(k (tanh(w) / (2 max|tanh(w)|) + 1/2)) / k - 1`
   * over the whole table or matrix every step, `k = 2^bits - 1`).
   */
  quantizer: z.enum(["minmax", "lsq", "dorefa"]),
  /** Embedding bits (one scale per table), or null for FP32 tables. */
  embeddingBits: Bits.nullable(),
  /** MLP weight bits, or null for an FP32 MLP ("MLP in FP32"). */
  mlpBits: Bits.nullable(),
  /** One scale per output row ("channel", the paper's setting) or per matrix. */
  mlpGranularity: z.enum(["channel", "matrix"]),
  /** Quantize MLP biases with their row's scale, as the public DQRM code does. */
  quantizeBias: z.boolean(),
  /** Table scales are found every this many training steps and reused in between (DQRM). */
  scalePeriod: z.number().int().positive(),
  /**
   * DQRM's first technique: quantize only the rows a batch gathers. When false, a fake-quantized
   * copy of every whole table is made each step (HAWQ as the paper ran it: twice the memory).
   */
  gatheredRowsOnly: z.boolean(),
  /**
   * PACT's learned activation clipping: every ReLU output that feeds another linear layer is
   * clipped to a learned `a` (one per layer, initialised to 10) and quantized to `mlpBits`
   * (`round(min(x, a) k / a) a / k`, `k = 2^bits - 1`); `a`'s gradient is the sum of the output
   * gradients where `x >= a`. Needs `mlpBits`.
   */
  activationClip: z.boolean().optional(),
});

/** Quantization-aware training settings. */
export type QuantConfig = z.infer<typeof QuantConfigSchema>;

/** `n = 2^(bits-1) - 1`: the largest quantized level (the smallest is `-n - 1`). */
export function levels(bits: number): number {
  return 2 ** (bits - 1) - 1;
}

/** Rounds half to even, as `torch.round` and IEEE's default rounding do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds halves up; an odd result from an exact half goes down to the even one.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The symmetric scale of values whose largest magnitude is `maxAbs`. */
export function scaleOf(maxAbs: number, bits: number): number {
  return Math.fround(Math.max(Math.fround(maxAbs), 1e-8) / levels(bits));
}

/** The integer level of `x` at scale `s` (float32 division, half-even rounding, clamped). */
export function quantizeLevel(x: number, s: number, n: number): number {
  const r = roundHalfEven(Math.fround(x / s));
  return r > n ? n : r < -n - 1 ? -n - 1 : r;
}

/** `q(x)`: the fake-quantized value of `x` at scale `s`. */
export function fakeQuantize(x: number, s: number, n: number): number {
  return Math.fround(quantizeLevel(x, s, n) * s);
}

/** Largest absolute value of an array (NaN if it holds a NaN). */
export function maxAbs(values: Float32Array): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const a = v < 0 ? -v : v;
    if (a > m) m = a;
    else if (a !== a) return NaN;
  }
  return m;
}

/** Fake-quantizes `src` into `dst` (may be the same array) at scale `s`. */
export function fakeQuantizeArray(src: Float32Array, dst: Float32Array, s: number, bits: number) {
  const n = levels(bits);
  for (let i = 0; i < src.length; i++) dst[i] = fakeQuantize(src[i], s, n);
}

/** DoReFa's quantized value of `w`, given `m = max |tanh(w)|` of its tensor and `bits`. */
export function dorefa(w: number, m: number, bits: number): number {
  const k = 2 ** bits - 1;
  const t = Math.fround(Math.fround(Math.tanh(w)) * Math.fround(1 / (2 * m)) + 0.5);
  return Math.fround(Math.fround((2 * roundHalfEven(Math.fround(k * t))) / k) - 1);
}

/**
 * Whether `quant` clips activations (PACT): `activationClip` with quantized MLP activations
 * (`mlpBits`). Both engines decide it here.
 */
export function pactActive(quant: QuantConfig | null): boolean {
  return Boolean(quant?.activationClip && quant.mlpBits !== null);
}
