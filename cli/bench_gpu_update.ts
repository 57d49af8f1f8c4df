/**
 * `deno run -A cli/bench_gpu_update.ts [--out FILE]`: micro-benchmark of the WebGPU engine's
 * embedding update phase, old against new, in one run on this machine's GPU.
 *
 * For the Kaggle and Terabyte tables (2.2 and 12.6 GB at full size; `--scale` shrinks every
 * table, the small hot ones too, down to 1 row), each batch size, and Zipf-skewed (the synthetic
 * Criteo stream) or uniform one-hot indices, one batch's update of every table is timed by the
 * engine's own kernels (engine/gpu/update_harness.ts): the sort by row, then **lane** (the
 * previous update: one lane sums a row's gradients one after another, n dependent steps for a
 * row of n occurrences) or **tree** (the level-parallel pairwise tree, log32(n) passes; `--fans`
 * also times it with other numbers of children a lane per pass: `tree/F`), and, for batches up
 * to 2048, **pairwise** (the engine's path for small batches: no sort, O(B²) per table). Each
 * timing is one compute pass of `--reps` updates, after one warm-up update, by timestamp queries
 * where the device has them (`timePasses` of gemm_sweep.ts); printed are ms per update and
 * lane / tree.
 *
 * @module
 */
import { batchSizesFlag } from "./gpu_methods.ts";
import { writeFileAtomic } from "../record/files.ts";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { EMBEDDING_TREE_FAN } from "../engine/gpu/kernels/embedding_tree_pass.ts";
import { type UpdateBatch, UpdateHarness, type UpdatePath } from "../engine/gpu/update_harness.ts";
import { Rng } from "../engine/rng.ts";
import { kaggleSpec, type ModelSpec, terabyteSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { timePasses } from "./gemm_sweep.ts";
import { defineCli, FLAGS, intFlag, numberFlag, parseCli, runMain, UsageError } from "./args.ts";

const CLI = defineCli({
  usage: "deno run -A cli/bench_gpu_update.ts [options]",
  description:
    `Times the WebGPU embedding update of one batch (sort, then one lane per row against the pairwise
tree; the pairwise scan for small batches) for the Kaggle and Terabyte tables, Zipf-skewed and
uniform indices, at each batch size. Prints a table; writes JSON with --out.`,
  options: {
    "batch-size": {
      ...FLAGS["batch-size"],
      arg: "LIST",
      help: "batch sizes, comma-separated",
      default: "128,2048,16384",
    },
    reps: { type: "string", arg: "N", help: "updates per timed pass", default: "20" },
    scale: {
      ...FLAGS.scale,
      help: "table row scale, in (0, 1] (below 1 the small tables shrink too)",
      default: "1",
    },
    fans: {
      type: "string",
      arg: "LIST",
      help:
        `other tree fans (children a lane sums per pass) to time beside the engine's ${EMBEDDING_TREE_FAN}`,
      default: "2,8",
    },
    out: { ...FLAGS.out, help: "write the results as JSON" },
  },
  positionals: false,
});

/** Index distributions. */
type Skew = "zipf" | "uniform";

/** One timed update. */
interface UpdateRow {
  model: string;
  batch: number;
  skew: Skew;
  /** `tree/F`: the tree with F children a lane per pass instead of the engine's. */
  path: UpdatePath | `tree/${number}`;
  /** The most occurrences of one row in any table of the batch. */
  hottestRowOccurrences: number;
  ms: number;
  /** lane ms / this ms. */
  speedupOverLane: number;
}

/** Batches larger than this skip the O(B²) pairwise path. */
const PAIRWISE_MAX_BATCH = 2048;

/** One batch of `batch` one-hot samples with `skew` indices and random gradients. */
function makeBatch(spec: ModelSpec, batch: number, skew: Skew, seed: number): UpdateBatch {
  const tables = spec.tableRows.length, d = spec.embeddingDim;
  const chunk = allocateOneHotChunk(spec, batch, batch);
  if (skew === "zipf") {
    new SyntheticCriteo(spec, { seed }).fill(chunk, "train", 0);
  } else {
    const rng = new Rng(seed, 7);
    spec.tableRows.forEach((rows, t) => {
      for (let s = 0; s < batch; s++) chunk.indices[t][s] = rng.int(rows);
    });
  }
  const rng = new Rng(seed, 8);
  const dt = Float32Array.from({ length: batch * (tables + 1) * d }, () => rng.next() - 0.5);
  return {
    tableRows: spec.tableRows,
    d,
    samples: batch,
    indices: chunk.indices.map((idx, t) => idx.subarray(0, chunk.offsets[t][batch])),
    offsets: chunk.offsets,
    dt,
  };
}

/** The most occurrences of one row in any table of `b`. */
function hottest(b: UpdateBatch): number {
  let most = 0;
  for (const idx of b.indices) {
    const count = new Map<number, number>();
    for (const r of idx) count.set(r, (count.get(r) ?? 0) + 1);
    for (const c of count.values()) most = Math.max(most, c);
  }
  return most;
}

async function bench(
  h: KernelHarness,
  batches: number[],
  reps: number,
  scale: number,
  fans: number[],
): Promise<UpdateRow[]> {
  const rows: UpdateRow[] = [];
  const models: [string, ModelSpec][] = [
    ["kaggle", kaggleSpec(scale)],
    ["terabyte", terabyteSpec(scale)],
  ];
  for (const [model, spec] of models) {
    for (const batch of batches) {
      for (const skew of ["zipf", "uniform"] as const) {
        const b = makeBatch(spec, batch, skew, 1);
        const u = UpdateHarness.create(h, b, 0.01);
        const paths: [UpdatePath, number | undefined][] = [
          ["lane", undefined],
          ["tree", undefined],
          ...fans.map((f): [UpdatePath, number] => ["tree", f]),
          ...(batch <= PAIRWISE_MAX_BATCH
            ? [["pairwise", undefined] as [UpdatePath, undefined]]
            : []),
        ];
        const hottestRowOccurrences = hottest(b);
        let lane = 0;
        for (const [path, fan] of paths) {
          const record = (pass: GPUComputePassEncoder) => u.record(pass, path, fan);
          // A first pass of one update warms up (compiles, first touches) before the timed one.
          const ms = (await timePasses(h, [{ reps: 1, record }, { reps, record }]))[1] / 1000;
          if (path === "lane") lane = ms;
          rows.push({
            model,
            batch,
            skew,
            path: fan === undefined ? path : `tree/${fan}`,
            hottestRowOccurrences,
            ms,
            speedupOverLane: lane / ms,
          });
        }
        u.destroy();
      }
    }
  }
  return rows;
}

function pad(v: string | number, n: number): string {
  return String(v).padStart(n);
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values } = parsed;
  const batches = batchSizesFlag(values["batch-size"], "128,2048,16384");
  const reps = intFlag("reps", values.reps) ?? 20;
  const scale = numberFlag("scale", values.scale, 0, 1) ?? 1;
  const fans = (values.fans ?? "2,8").split(",").filter((f) => f !== "").map((f) => {
    const n = intFlag("fans", f);
    if (n < 2 || (n & (n - 1)) !== 0) {
      throw new UsageError(`--fans: expected powers of two from 2 but found '${f}'`);
    }
    return n;
  });
  const h = await KernelHarness.create();
  const device = h.description;
  const timing = h.timestamps ? "timestamp-query" : "wall clock (no timestamp-query)";
  console.log(`device: ${device}; timing: ${timing}; table scale ${scale}; ${reps} per pass`);
  let rows: UpdateRow[];
  try {
    rows = await bench(h, batches, reps, scale, fans);
  } finally {
    h.destroy();
  }
  console.log(
    "\nEmbedding update of one batch, every table (ms; lane = previous sorted update)\n" +
      "model     batch  skew     hottest row  path            ms   lane / this",
  );
  for (const r of rows) {
    console.log(
      `${r.model.padEnd(9)} ${pad(r.batch, 5)}  ${r.skew.padEnd(7)} ${
        pad(r.hottestRowOccurrences, 12)
      }  ${r.path.padEnd(8)} ${pad(r.ms.toFixed(4), 10)} ${pad(r.speedupOverLane.toFixed(2), 13)}`,
    );
  }
  if (values.out) {
    const json = {
      device,
      timing,
      batches,
      reps,
      scale,
      fan: EMBEDDING_TREE_FAN,
      fans,
      update: rows,
    };
    await writeFileAtomic(values.out, JSON.stringify(json, null, 2) + "\n");
    console.log(`\nwrote ${values.out}`);
  }
  return 0;
}

if (import.meta.main) runMain("bench_gpu_update", main);
