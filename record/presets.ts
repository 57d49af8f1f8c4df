/**
 * The gradient-compression presets of data-parallel runs, by name: what a run config's
 * `dataParallel.compression` names and the report reads back. Plain data, so the result schema
 * and the reports need not import the compression code; `comm/compression.ts` checks them
 * against its `Compression` settings and exports them.
 *
 * @module
 */

/** Names of the compression presets, in the order the tools list them. */
export const COMPRESSION_PRESET_NAMES = [
  "uncompressed",
  "sparse",
  "sparse-emb8",
  "sparse-int8",
  "sparse-int8-ec",
] as const;

/** One compression preset's name. */
export type CompressionPresetName = typeof COMPRESSION_PRESET_NAMES[number];

/** The settings a preset fixes (the shape of `Compression` in `comm/compression.ts`). */
export interface CompressionPreset {
  /** Embedding gradients as unique touched rows + values (true) or as dense tables (false). */
  readonly sparseEmbeddings: boolean;
  /** Bits of the embedding gradient values, or null for FP32. */
  readonly embeddingBits: 8 | 16 | null;
  /** Bits of the MLP gradients, or null for FP32. */
  readonly mlpBits: 8 | 16 | null;
  /** Error compensation of the quantized MLP gradients. */
  readonly errorCompensation: boolean;
}

/** The settings of the paper's Table 4 and Table 6, by name. */
export const COMPRESSION_PRESETS = {
  /** Dense FP32 gradients: the uncompressed all-reduce (Table 4, first column). */
  "uncompressed": {
    sparseEmbeddings: false,
    embeddingBits: null,
    mlpBits: null,
    errorCompensation: false,
  },
  /** Specified sparsity, FP32 (Table 4 second column; Table 6 "baseline"). */
  "sparse": {
    sparseEmbeddings: true,
    embeddingBits: null,
    mlpBits: null,
    errorCompensation: false,
  },
  /** + embedding gradients INT8 (Table 6). */
  "sparse-emb8": {
    sparseEmbeddings: true,
    embeddingBits: 8,
    mlpBits: null,
    errorCompensation: false,
  },
  /** + MLP gradients INT8 (Table 4 third column; Table 6). */
  "sparse-int8": { sparseEmbeddings: true, embeddingBits: 8, mlpBits: 8, errorCompensation: false },
  /** + MLP error compensation (Table 6). */
  "sparse-int8-ec": {
    sparseEmbeddings: true,
    embeddingBits: 8,
    mlpBits: 8,
    errorCompensation: true,
  },
} as const satisfies Record<CompressionPresetName, CompressionPreset>;

/**
 * The settings of a preset's name (`"sparse-int8"`), or `undefined` when it names none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compressionPreset } from "./presets.ts";
 * assert.equal(compressionPreset("sparse-int8")?.mlpBits, 8);
 * assert.equal(compressionPreset("zip"), undefined);
 * ```
 */
export function compressionPreset(name: unknown): CompressionPreset | undefined {
  return typeof name === "string" && Object.hasOwn(COMPRESSION_PRESETS, name)
    ? COMPRESSION_PRESETS[name as CompressionPresetName]
    : undefined;
}
