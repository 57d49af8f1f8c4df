/**
 * The WebGPU engine's incremental table maxima (per-block maxima kept current after each step's
 * update, `engine/gpu/kernels/block_max_*.ts`) against its full read of every table: the table
 * scales must be the same bits after every step, through an FP32 warm-up, QAT, post-training
 * quantization and training after it, with hot rows (the tables' largest values sit in rows the
 * batches update), multi-hot bags, split tables and the sorted update. Needs a WebGPU adapter
 * (in CI: lavapipe, `DENO_WEBGPU_BACKEND=vulkan`); without one every test is reported as ignored.
 */
import assert from "node:assert/strict";
import type { BatchChunk } from "../engine/batch.ts";
import type { Engine } from "../engine/engine.ts";
import { createGpuEngine, type GpuEngineOptions } from "../engine/gpu/mod.ts";
import { BLOCK_MAX_FLOATS } from "../engine/gpu/kernels/block_max.ts";
import { initParams } from "../engine/params.ts";
import type { QuantConfig } from "../engine/quant.ts";
import { Rng } from "../engine/rng.ts";
import { interactionWidth, type ModelSpec } from "../engine/spec.ts";
import { dqrm, hawq, pact } from "../suites/experiments.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import { ODD } from "./test_models.ts";

const found = await findTestAdapter();
const ignore = found.adapter === null;
if (ignore) console.warn(`SKIPPING the WebGPU table maxima tests: ${found.reason}.`);

/**
 * Embedding width 8 and a table of 9000 rows (72,000 floats: 282 blocks of maxima, the last one
 * short), so updated rows fall in many different blocks.
 */
const WIDE_TABLE: ModelSpec = wideSpec(9000, 8);

/** Embedding width 12 (vec4 reads): rows of the 3000-row table straddle blocks of maxima. */
const STRADDLE: ModelSpec = wideSpec(3000, 12);

function wideSpec(rows: number, embeddingDim: number): ModelSpec {
  const tableRows = [rows, 3, 29, 12, 5];
  return {
    denseFeatures: 13,
    tableRows,
    embeddingDim,
    bottomMlp: [13, 9, 7, embeddingDim],
    topMlp: [interactionWidth({ tableRows, embeddingDim }), 10, 6, 1],
  };
}

/**
 * A table's hot rows: its first, last and middle rows, and the row holding the first float of
 * the second block of maxima (it straddles two blocks unless the width divides the block).
 */
function hotRows(rows: number, dim: number): number[] {
  const hot = [0, rows - 1, Math.floor(rows / 2)];
  const straddle = Math.floor(BLOCK_MAX_FLOATS / dim);
  return straddle < rows && !hot.includes(straddle) ? [straddle, ...hot] : hot;
}

/**
 * A batch where half the indices are hot rows (the rows holding each table's largest values),
 * the rest uniform; multi-hot bags of 0 to 3 indices when `multiHot`.
 */
function hotChunk(spec: ModelSpec, batch: number, seed: number, multiHot: boolean): BatchChunk {
  const rng = new Rng(seed, 7);
  const indices: Int32Array[] = [];
  const offsets: Int32Array[] = [];
  for (const n of spec.tableRows) {
    const hot = hotRows(n, spec.embeddingDim);
    const off = new Int32Array(batch + 1);
    const idx: number[] = [];
    for (let s = 0; s < batch; s++) {
      const bag = multiHot ? rng.int(4) : 1;
      for (let j = 0; j < bag; j++) {
        idx.push(rng.next() < 0.5 ? hot[rng.int(hot.length)] : rng.int(n));
      }
      off[s + 1] = idx.length;
    }
    indices.push(Int32Array.from(idx));
    offsets.push(off);
  }
  const dense = Float32Array.from({ length: batch * spec.denseFeatures }, () => rng.next() * 3);
  const labels = Float32Array.from({ length: batch }, () => (rng.next() < 0.4 ? 1 : 0));
  return { batchSize: batch, samples: batch, dense, labels, indices, offsets };
}

interface Case {
  name: string;
  quant: QuantConfig;
  spec: ModelSpec;
  multiHot: boolean;
  /**
   * False: the engine's default, which marks the maxima stale when a step would reread more than
   * half the tables (these small tables, most steps); else it always rereads.
   */
  rereadAny?: boolean;
  /** Samples per step (9 unless said). */
  batch?: number;
  /** Engine options beyond the model (split arenas, the sorted update). */
  extra?: Partial<GpuEngineOptions>;
}

const SPLIT = { arenaBytes: 60, arenasPerGroup: 2 };
const CASES: Case[] = [
  // One index per table and step: a missed entry is never covered by a duplicate.
  {
    name: "DQRM P=1, one sample a step",
    quant: dqrm(4, 4, 1),
    spec: ODD,
    multiHot: false,
    batch: 1,
  },
  { name: "DQRM P=1", quant: dqrm(4, 4, 1), spec: ODD, multiHot: false },
  {
    name: "DQRM P=1, multi-hot, split tables",
    quant: dqrm(4, 4, 1),
    spec: ODD,
    multiHot: true,
    extra: SPLIT,
  },
  {
    name: "DQRM P=3, width 8, a table of 282 blocks",
    quant: dqrm(4, null, 3),
    spec: WIDE_TABLE,
    multiHot: true,
  },
  { name: "PACT", quant: pact(4, 4), spec: ODD, multiHot: true },
  {
    name: "PACT, width 8, sorted update",
    quant: pact(4, null),
    spec: WIDE_TABLE,
    multiHot: false,
    extra: { sortedUpdateFrom: 0 },
  },
  { name: "HAWQ", quant: hawq(4, 4), spec: ODD, multiHot: false },
  {
    name: "HAWQ, multi-hot, split tables",
    quant: hawq(4, null),
    spec: ODD,
    multiHot: true,
    extra: SPLIT,
  },
  {
    name: "DQRM P=1, width 12, rows straddling blocks, split tables",
    quant: dqrm(4, null, 1),
    spec: STRADDLE,
    multiHot: true,
    extra: { arenaBytes: 20_000, arenasPerGroup: 2 },
  },
  {
    name: "DQRM P=1, width 8, incremental only when cheaper",
    quant: dqrm(4, 4, 1),
    spec: WIDE_TABLE,
    multiHot: true,
    rereadAny: false,
  },
  {
    name: "HAWQ, width 8, split tables",
    quant: hawq(4, null),
    spec: WIDE_TABLE,
    multiHot: true,
    extra: { arenaBytes: 40_000, arenasPerGroup: 2 },
  },
];

/** Asserts both engines' table scales are the same bits. */
async function assertSameScales(what: string, full: Engine, incremental: Engine): Promise<void> {
  const want = new Uint32Array((await full.embeddingScales()).buffer);
  const got = new Uint32Array((await incremental.embeddingScales()).buffer);
  assert.ok(want.some((b) => b !== 0), `expected scales found at ${what} but found none`);
  for (let t = 0; t < want.length; t++) {
    assert.equal(
      got[t],
      want[t],
      `${what}: expected table ${t}'s scale bits ${want[t].toString(16)} (full read) but found ` +
        `${got[t].toString(16)} (incremental maxima)`,
    );
  }
}

for (const c of CASES) {
  Deno.test({
    name: `GPU incremental table maxima give the full read's scales, bit for bit (${c.name})`,
    ignore,
    sanitizeResources: false,
    fn: async () => {
      const batch = c.batch ?? 9;
      const params = initParams(c.spec, 11);
      // The hot rows hold each table's largest values, so updates move the maxima; one of them
      // (a different one table by table, the straddling row in the first table) holds the max.
      params.embeddings.forEach((e, t) => {
        const d = c.spec.embeddingDim;
        const hot = hotRows(c.spec.tableRows[t], d);
        hot.forEach((r, k) => {
          const gain = k === t % hot.length ? 6 : 4;
          for (let q = 0; q < d; q++) e[r * d + q] *= gain;
        });
      });
      const base = { spec: c.spec, maxBatch: batch, params, quantization: c.quant, ...c.extra };
      const full = await createGpuEngine({ ...base, incrementalTableMaxima: false });
      const incremental = await createGpuEngine({
        ...base,
        incrementalTableMaxima: c.rereadAny === false ? true : "always",
      });
      const both = [full, incremental];
      let seed = 100;
      const step = async (what: string, lr: number) => {
        const chunk = hotChunk(c.spec, batch, seed++, c.multiHot);
        for (const e of both) await e.trainChunk(chunk, { learningRate: lr });
        await assertSameScales(what, full, incremental);
      };
      try {
        // QAT from the uploaded parameters, then FP32 steps (the tables change while no maxima
        // are kept), then QAT again.
        for (let i = 0; i < 3; i++) await step(`QAT step ${i}`, 0.5);
        for (const e of both) e.setQuantizationActive(false);
        for (let i = 0; i < 2; i++) {
          const chunk = hotChunk(c.spec, batch, seed++, c.multiHot);
          for (const e of both) await e.trainChunk(chunk, { learningRate: 0.5 });
        }
        for (const e of both) e.setQuantizationActive(true);
        for (let i = 0; i < 4; i++) await step(`QAT step ${i} after FP32 steps`, 0.5);
        // Two bits (one level): every value at least half its table's max becomes the max and
        // the rest 0, so most blocks' maxima change (the tables' maxima only by rounding).
        for (const e of both) {
          e.quantizeInPlace({ embeddingBits: 2, mlpBits: null, quantizeBias: false });
        }
        await assertSameScales("after quantizeInPlace", full, incremental);
        for (let i = 0; i < 4; i++) await step(`step ${i} after quantizeInPlace`, 0.5);
        // A chunk of several steps: the maxima follow each step's update.
        const many = { ...hotChunk(c.spec, 3 * batch, seed++, c.multiHot), batchSize: batch };
        for (const e of both) await e.trainChunk(many, { learningRate: 0.5 });
        await assertSameScales("after a chunk of 3 steps", full, incremental);
        const [a, b] = await Promise.all(both.map((e) => e.readParams()));
        a.embeddings.forEach((e, t) =>
          assert.deepEqual(b.embeddings[t], e, `expected table ${t} equal in both engines`)
        );
      } finally {
        for (const e of both) await e.dispose();
      }
    },
  });
}
