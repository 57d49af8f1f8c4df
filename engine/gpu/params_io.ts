/**
 * Parameters between host and GPU: the initial upload (given values, or DLRM's seeded
 * initialisation drawn piece by piece), and staged readbacks of one table or of every parameter.
 *
 * @module
 */
import type { BatchChunk } from "../batch.ts";
import {
  checkLinearShapes,
  initMlps,
  type LinearParams,
  type Params,
  tableInitStream,
} from "../params.ts";
import type { ModelSpec } from "../spec.ts";
import { writeTo } from "./buffers.ts";
import type { PackedLinear } from "./layout.ts";
import { readStaged, stage } from "./submit.ts";
import type { GpuState } from "./state.ts";

/** Uploads given parameters, or DLRM's seeded initialisation (the CPU engine's values). */
export function uploadParams(state: GpuState, params: Params | undefined, seed: number): void {
  const L = state.layout;
  const spec = state.spec;
  const mlps = params ?? initMlps(spec, seed);
  const packed = new Float32Array(L.floats);
  const put = (layers: PackedLinear[], given: LinearParams[]) => {
    checkLinearShapes(layers, given);
    layers.forEach((l, i) => {
      const p = given[i];
      packed.set(p.weight, l.weightOffset);
      packed.set(p.bias, l.biasOffset);
    });
  };
  put(L.bottom, mlps.bottom);
  put(L.top, mlps.top);
  writeTo(state.device.queue, state.mlp, 0, packed);
  const d = spec.embeddingDim;
  spec.tableRows.forEach((rows, t) => {
    if (params && params.embeddings[t].length !== rows * d) {
      throw new RangeError(
        `Expected table ${t} to hold ${rows * d} values but found ${params.embeddings[t].length}`,
      );
    }
    forEachTablePiece(state, t, params?.embeddings[t], seed, (piece, floatStart) => {
      writeTableRange(state, t, floatStart, piece);
    });
  });
}

/** Table t's initial values in pieces of at most 16 Mi floats (the seeded stream, or given). */
function forEachTablePiece(
  state: GpuState,
  t: number,
  given: Float32Array | undefined,
  seed: number,
  each: (piece: Float32Array, floatStart: number) => void,
): void {
  const rows = state.spec.tableRows[t];
  const total = rows * state.spec.embeddingDim;
  if (given) {
    each(given, 0);
    return;
  }
  const fill = tableInitStream(rows, seed, t);
  const piece = new Float32Array(Math.min(total, 1 << 24));
  for (let at = 0; at < total; at += piece.length) {
    const view = piece.subarray(0, Math.min(piece.length, total - at));
    fill(view);
    each(view, at);
  }
}

/** Writes floats [floatStart, floatStart + data.length) of table t into its arenas. */
function writeTableRange(state: GpuState, t: number, floatStart: number, data: Float32Array): void {
  const d = state.spec.embeddingDim;
  const p = state.plan;
  state.blockMaxima.stale = true;
  for (let s = p.firstSegment[t]; s < p.firstSegment[t] + p.segmentCount[t]; s++) {
    const seg = p.segments[s];
    const lo = Math.max(seg.rowStart * d, floatStart);
    const hi = Math.min(seg.rowEnd * d, floatStart + data.length);
    if (lo >= hi) continue;
    writeTo(
      state.device.queue,
      state.arenas[seg.arena],
      (seg.offset + lo - seg.rowStart * d) * 4,
      data,
      lo - floatStart,
      hi - lo,
    );
  }
}

/**
 * Staging copies of the segments of `table` (every table when absent), and their reader, which
 * assembles the tables (the others left empty) once submitted.
 */
function stageTables(
  state: GpuState,
  encoder: GPUCommandEncoder,
  table?: number,
): () => Promise<Float32Array[]> {
  const d = state.spec.embeddingDim;
  const plan = state.plan;
  const segments = table === undefined ? plan.segments : plan.segments.slice(
    plan.firstSegment[table],
    plan.firstSegment[table] + plan.segmentCount[table],
  );
  const parts = segments.map((s) => ({
    s,
    buffer: stage(
      state.device,
      encoder,
      state.arenas[s.arena],
      s.offset * 4,
      (s.rowEnd - s.rowStart) * d * 4,
    ),
  }));
  return async () => {
    const got = await Promise.all(parts.map((p) => readStaged(p.buffer)));
    const tables = state.spec.tableRows.map((n, t) =>
      new Float32Array(table === undefined || t === table ? n * d : 0)
    );
    parts.forEach((p, i) => {
      tables[p.s.table].set(
        new Float32Array(got[i], 0, (p.s.rowEnd - p.s.rowStart) * d),
        p.s.rowStart * d,
      );
    });
    return tables;
  };
}

/** A staging copy of table `t`, and its reader. */
export function stageTable(
  state: GpuState,
  encoder: GPUCommandEncoder,
  t: number,
): () => Promise<Float32Array> {
  const read = stageTables(state, encoder, t);
  return async () => (await read())[t];
}

/** Staging copies of every parameter, and their reader. */
export function stageParams(state: GpuState, encoder: GPUCommandEncoder): () => Promise<Params> {
  const L = state.layout;
  const mlp = stage(state.device, encoder, state.mlp, 0, L.floats * 4);
  const tables = stageTables(state, encoder);
  return async () => {
    const [mlpData, embeddings] = await Promise.all([readStaged(mlp), tables()]);
    return { embeddings, ...unpackMlps(L, new Float32Array(mlpData)) };
  };
}

/** The bottom and top MLPs of a packed buffer (see `layout.ts`). */
export function unpackMlps(
  L: { bottom: PackedLinear[]; top: PackedLinear[] },
  packed: Float32Array,
): Pick<Params, "bottom" | "top"> {
  return {
    bottom: L.bottom.map((l) => unpack(packed, l)),
    top: L.top.map((l) => unpack(packed, l)),
  };
}

function unpack(packed: Float32Array, l: PackedLinear): LinearParams {
  return {
    weight: packed.slice(l.weightOffset, l.weightOffset + l.inputs * l.outputs),
    bias: packed.slice(l.biasOffset, l.biasOffset + l.outputs),
  };
}

/**
 * Dense embedding gradients of the first `rows` samples of `chunk` from dT (`dt`, rows of
 * `(tables + 1) d` floats): each bag's vector added to every row it gathered.
 */
export function denseTableGradients(
  spec: ModelSpec,
  chunk: BatchChunk,
  rows: number,
  dt: Float32Array,
): Float32Array[] {
  const d = spec.embeddingDim;
  const ldt = (spec.tableRows.length + 1) * d;
  return spec.tableRows.map((n, t) => {
    const g = new Float32Array(n * d);
    const idx = chunk.indices[t], off = chunk.offsets[t];
    for (let r = 0; r < rows; r++) {
      const src = r * ldt + (t + 1) * d;
      for (let j = off[r]; j < off[r + 1]; j++) {
        for (let q = 0; q < d; q++) g[idx[j] * d + q] += dt[src + q];
      }
    }
    return g;
  });
}
