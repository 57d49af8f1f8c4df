/**
 * The bound kernels of table scale finding and whole-table quantization, which read no chunk
 * input and so are bound once: max |w| per table (vec4 work lists where the segments allow),
 * the scale per bit width, in-place fake quantization (post-training), and DoReFa's scale and
 * HAWQ's quantized copies.
 *
 * @module
 */
import { levels } from "../quant.ts";
import { writeTo } from "./buffers.ts";
import { MAX_ABS_BLOCK, tableMaxAbsKernel } from "./kernels/table_max_abs.ts";
import { MAX_ABS_VEC4_BLOCK, tableMaxAbsVec4Kernel } from "./kernels/table_max_abs_vec4.ts";
import { FAKE_QUANTIZE_BLOCK, tableFakeQuantizeKernel } from "./kernels/table_fake_quantize.ts";
import { TABLE_SCALE, TABLE_SCALE_DOREFA } from "./kernels/table_scale.ts";
import { COPY_QUANTIZE_BLOCK, tableCopyQuantizeKernel } from "./kernels/table_copy_quantize.ts";
import { tableCopyQuantizeVec4Kernel } from "./kernels/table_copy_quantize_vec4.ts";
import { BLOCK_MAX_FLOATS } from "./kernels/block_max.ts";
import { blockMaxFullKernel } from "./kernels/block_max_full.ts";
import { BLOCK_MAX_REDUCE, BLOCK_MAX_REDUCE_PER_LANE } from "./kernels/block_max_reduce.ts";
import { blockMaxRowsKernel } from "./kernels/block_max_rows.ts";
import type { BoundKernel } from "./pipelines.ts";
import { type GpuState, stepTableMaxima } from "./state.ts";
import { gridOf, MOST_PER_DIMENSION } from "./kernels/grid.ts";

/** A bound kernel and its workgroup grid. */
export interface GridDispatch {
  kernel: BoundKernel;
  x: number;
  y: number;
}

/** Scale-finding kernels of one bit width (see {@linkcode ScaleKernels.forBits}). */
export interface BitsKernels {
  /** The max-|w| dispatches, one per arena group. */
  maxAbs: GridDispatch[];
  /** The minmax scales from the maxima. */
  scale: BoundKernel;
  /** In-place fake quantization, one per arena group, over a (blocks, segments) grid. */
  fakeQuantize: BoundKernel[];
  /** Floats per block of a segment, and blocks of the longest segment. */
  block: number;
  blocks: number;
}

/** {@linkcode BitsKernels} and the QAT methods' table kernels beyond DQRM's. */
export interface QatBitsKernels extends BitsKernels {
  /** DoReFa's per-table maximum (from the same maxima). */
  dorefaScale: BoundKernel;
  /** HAWQ's copy quantization, one per arena group (empty without copies). */
  copy: GridDispatch[];
}

/** The block-maxima kernels that read no chunk input (see `GpuState.blockMaxima`). */
export interface BlockMaxKernels {
  /** Every block's maximum recomputed, one dispatch per arena group. */
  full: GridDispatch[];
  /** The tables' max |w| bits from their blocks (where `maxAbs` leaves them). */
  reduce: GridDispatch;
}

/**
 * The incremental block-maxima kernel over the chunk input (bound with the training kernels),
 * one per arena group; null unless the configured QAT finds table maxima every step.
 */
export function bindBlockMaxRows(state: GpuState): BoundKernel[] | null {
  if (!stepTableMaxima(state.quant)) return null;
  const binder = state.binder;
  const plan = state.plan;
  const k = plan.arenasPerGroup;
  const m = state.blockMaxima;
  return Array.from({ length: plan.groups }, (_, g) =>
    binder.bind(blockMaxRowsKernel(k), [
      blockMaxUniform(state, "block max rows", state.spec.tableRows.length, g),
      state.input.tableDirectory,
      state.segments,
      state.input.indices,
      state.input.offsets,
      m.segmentBlocks,
      m.bits,
      ...state.groupArenas(g),
    ]));
}

/** The block-maxima kernels' uniform for arena group `g`, over `count` tables or segments. */
function blockMaxUniform(state: GpuState, label: string, count: number, g: number): GPUBuffer {
  const k = state.plan.arenasPerGroup;
  return state.binder.uniform(label, [
    count,
    state.spec.embeddingDim,
    g * k,
    k,
    BLOCK_MAX_FLOATS,
    0,
    0,
    0,
  ]);
}

/** One arena group's vec4 work list: (segment, first float) of each block. */
interface WorkList {
  items: GPUBuffer;
  count: number;
}

/** The table scale kernels of one engine, bound on first use and kept. */
export class ScaleKernels {
  readonly #state: GpuState;
  #maxAbs: GridDispatch[] | null = null;
  #block = 0;
  #blocks = 0;
  readonly #byBits = new Map<number, BitsKernels>();
  #dorefaScale: BoundKernel | null = null;
  readonly #copies = new Map<number, GridDispatch[]>();
  /** Per arena group, when every segment is on 4-float boundaries (else null). */
  #workLists: WorkList[] | null = null;
  readonly #qatByBits = new Map<number, QatBitsKernels>();
  #blockMax: BlockMaxKernels | null = null;

  constructor(state: GpuState) {
    this.#state = state;
  }

  /** The scale-finding and fake-quantizing kernels of `bits`. */
  forBits(bits: number): BitsKernels {
    let kernels = this.#byBits.get(bits);
    if (kernels) return kernels;
    const maxAbs = this.#maxAbs ??= this.#bindMaxAbs();
    const state = this.#state;
    const binder = state.binder;
    const plan = state.plan;
    const k = plan.arenasPerGroup;
    kernels = {
      maxAbs,
      scale: binder.bind(TABLE_SCALE, [
        binder.uniform(
          "table scale",
          [state.spec.tableRows.length, levels(bits), 0, 0],
          new Set([1]),
        ),
        state.tableMaxBits,
        state.tableScales,
      ]),
      fakeQuantize: Array.from(
        { length: plan.groups },
        (_, g) =>
          binder.bind(tableFakeQuantizeKernel(k), [
            binder.uniform("fake quantize", [
              plan.segments.length,
              state.spec.embeddingDim,
              g * k,
              k,
              levels(bits),
              this.#block,
              0,
              0,
            ], new Set([4])),
            state.segments,
            state.segmentTables,
            state.tableScales,
            ...state.groupArenas(g),
          ]),
      ),
      block: this.#block,
      blocks: this.#blocks,
    };
    this.#byBits.set(bits, kernels);
    return kernels;
  }

  /** {@linkcode forBits} with DoReFa's scale and HAWQ's copy kernels of `bits`. */
  forQat(bits: number): QatBitsKernels {
    let kernels = this.#qatByBits.get(bits);
    if (kernels) return kernels;
    const base = this.forBits(bits);
    const state = this.#state;
    const binder = state.binder;
    this.#dorefaScale ??= binder.bind(TABLE_SCALE, [
      binder.uniform(
        "dorefa table scale",
        [state.spec.tableRows.length, 1, TABLE_SCALE_DOREFA, 0],
        new Set([1]),
      ),
      state.tableMaxBits,
      state.tableScales,
    ]);
    const copies = state.qat.copies;
    if (copies && !this.#copies.has(bits)) {
      const plan = state.plan;
      const k = plan.arenasPerGroup;
      const d = state.spec.embeddingDim;
      const lists = this.#workLists;
      this.#copies.set(
        bits,
        Array.from({ length: plan.groups }, (_, g): GridDispatch => {
          const arenas = [
            ...state.groupArenas(g),
            ...state.groupArenas(g, copies, state.qat.copyDummy!),
          ];
          const tables = [state.segments, state.segmentTables, state.tableScales];
          if (!lists) {
            const kernel = binder.bind(tableCopyQuantizeKernel(k), [
              binder.uniform("copy quantize", [
                plan.segments.length,
                d,
                g * k,
                k,
                levels(bits),
                base.block,
                0,
                0,
              ], new Set([4])),
              ...tables,
              ...arenas,
            ]);
            return { kernel, x: base.blocks, y: plan.segments.length };
          }
          const { items, count } = lists[g];
          const kernel = binder.bind(tableCopyQuantizeVec4Kernel(k), [
            binder.uniform("copy quantize vec4", [
              count,
              d,
              g * k,
              k,
              levels(bits),
              MAX_ABS_VEC4_BLOCK,
              0,
              0,
            ], new Set([4])),
            ...tables,
            items,
            ...arenas,
          ]);
          return { kernel, ...workGrid(count) };
        }),
      );
    }
    kernels = { ...base, dorefaScale: this.#dorefaScale, copy: this.#copies.get(bits) ?? [] };
    this.#qatByBits.set(bits, kernels);
    return kernels;
  }

  /** The block-maxima kernels (the configured QAT must find table maxima every step). */
  blockMax(): BlockMaxKernels {
    if (this.#blockMax) return this.#blockMax;
    const state = this.#state;
    const binder = state.binder;
    const plan = state.plan;
    const k = plan.arenasPerGroup;
    const m = state.blockMaxima;
    const tables = state.spec.tableRows.length;
    const full = Array.from({ length: plan.groups }, (_, g): GridDispatch => ({
      kernel: binder.bind(blockMaxFullKernel(k), [
        blockMaxUniform(state, "block max full", plan.segments.length, g),
        state.segments,
        m.segmentBlocks,
        m.bits,
        ...state.groupArenas(g),
      ]),
      x: Math.min(m.directory.mostPerSegment, MOST_PER_DIMENSION),
      y: plan.segments.length,
    }));
    const perWorkgroup = 256 * BLOCK_MAX_REDUCE_PER_LANE;
    const reduce: GridDispatch = {
      kernel: binder.bind(BLOCK_MAX_REDUCE, [
        binder.uniform("block max reduce", [tables, 0, 0, 0]),
        m.tableBlocks,
        m.bits,
        state.tableMaxBits,
      ]),
      x: Math.min(Math.ceil(m.directory.mostPerTable / perWorkgroup), MOST_PER_DIMENSION),
      y: tables,
    };
    return this.#blockMax = { full, reduce };
  }

  /** The max-|w| dispatches, one per arena group (and the block sizes of the scalar kernels). */
  #bindMaxAbs(): GridDispatch[] {
    const state = this.#state;
    const binder = state.binder;
    const plan = state.plan;
    const k = plan.arenasPerGroup;
    const d = state.spec.embeddingDim;
    const maxSeg = Math.max(1, ...plan.segments.map((s) => (s.rowEnd - s.rowStart) * d));
    const least = Math.max(MAX_ABS_BLOCK, FAKE_QUANTIZE_BLOCK, COPY_QUANTIZE_BLOCK);
    const block = this.#block = Math.max(least, Math.ceil(maxSeg / MOST_PER_DIMENSION / 256) * 256);
    const blocks = this.#blocks = Math.ceil(maxSeg / block);
    // Segments on 4-float boundaries (any embedding width that is a multiple of 4) are read
    // as vec4s from a work list; others by the scalar kernel over a (block, segment) grid.
    const vec4 = d % 4 === 0 && plan.segments.every((seg) => seg.offset % 4 === 0);
    return Array.from({ length: plan.groups }, (_, g) => {
      const arenas = state.groupArenas(g);
      if (!vec4) {
        const kernel = binder.bind(tableMaxAbsKernel(k), [
          binder.uniform("max abs", [plan.segments.length, d, g * k, k, block, 0, 0, 0]),
          state.segments,
          state.segmentTables,
          state.tableMaxBits,
          ...arenas,
        ]);
        return { kernel, x: blocks, y: plan.segments.length };
      }
      const lists = this.#workLists ??= this.#buildWorkLists();
      const { items, count } = lists[g];
      const kernel = binder.bind(tableMaxAbsVec4Kernel(k), [
        binder.uniform("max abs", [count, d, g * k, k, MAX_ABS_VEC4_BLOCK, 0, 0, 0]),
        state.segments,
        state.segmentTables,
        state.tableMaxBits,
        items,
        ...arenas,
      ]);
      return { kernel, ...workGrid(count) };
    });
  }

  /** Each arena group's blocks of `MAX_ABS_VEC4_BLOCK` floats, segment by segment. */
  #buildWorkLists(): WorkList[] {
    const state = this.#state;
    const plan = state.plan;
    const k = plan.arenasPerGroup;
    const d = state.spec.embeddingDim;
    return Array.from({ length: plan.groups }, (_, g) => {
      const work: number[] = [];
      plan.segments.forEach((seg, i) => {
        if (seg.arena < g * k || seg.arena >= g * k + k) return;
        const floats = (seg.rowEnd - seg.rowStart) * d;
        for (let at = 0; at < floats; at += MAX_ABS_VEC4_BLOCK) work.push(i, at);
      });
      const items = state.buffers.create("table work list", work.length * 4);
      if (work.length) writeTo(state.device.queue, items, 0, Uint32Array.from(work));
      return { items, count: work.length / 2 };
    });
  }
}

/** The grid of a work list: rows of `MOST_PER_DIMENSION` workgroups. */
function workGrid(count: number): { x: number; y: number } {
  const [x, y] = gridOf(count);
  return { x, y };
}
