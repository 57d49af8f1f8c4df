/**
 * `deno run -A cli/bench_gpu_kernels.ts [--out FILE]`: micro-benchmark of the WebGPU engine's
 * GEMM and embedding update, old against new, in one run on this machine's GPU.
 *
 * GEMM: every product of the Kaggle and Terabyte MLPs (forward Y = X Wᵀ + b with ReLU, input
 * gradient dX = dY W masked, weight gradient dW = dYᵀ X) at each batch, timed for the previous
 * kernel (16 x 16 tiles, one output per invocation; kept here only, for the comparison) and for
 * the engine's plan (register-blocked tile and split-K chosen per shape), optionally every tile.
 * Each timing is one compute pass of `--reps` identical dispatches, measured by timestamp queries
 * where the device has them (else by the wall time of the submit), reported as µs per product
 * and GFLOP/s.
 *
 * Embedding update: the engine itself trains synthetic Criteo batches (skewed, duplicate-heavy
 * indices) with the pairwise update (O(B²) per table) and with the sorted one; reported is the
 * median GPU time of the update phase (timestamp queries, every iteration sampled) and of the
 * whole iteration.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { type GemmPlan, planGemm } from "../engine/gpu/gemm_plan.ts";
import { type GemmFields, KernelHarness } from "../engine/gpu/kernel_harness.ts";
import {
  GEMM_BIAS,
  GEMM_FIELDS,
  GEMM_K_ROWS,
  GEMM_M_ROWS,
  GEMM_MASK,
  GEMM_RELU,
  GEMM_TILES,
  type GemmTileName,
} from "../engine/gpu/kernels/gemm.ts";
import { GEMM_NAIVE16 } from "../engine/gpu/kernels/gemm_naive.ts";
import { PHASES } from "../engine/phases.ts";
import { summarize } from "../record/stats.ts";
import { kaggleSpec, type ModelSpec, terabyteSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { defineCli, FLAGS, intFlag, numberFlag, parseCli, runMain, UsageError } from "./args.ts";

const CLI = defineCli({
  usage: "deno run -A cli/bench_gpu_kernels.ts [options]",
  description:
    `Times the WebGPU GEMM (previous 16x16 kernel against the register-blocked one with the engine's
plan) for every product of the Kaggle and Terabyte MLPs, and the embedding update (pairwise
against sorted) inside the engine, at each batch size. Prints tables; writes JSON with --out.`,
  options: {
    "batch-size": {
      ...FLAGS["batch-size"],
      arg: "LIST",
      help: "batch sizes, comma-separated",
      default: "128,2048,16384",
    },
    reps: { type: "string", arg: "N", help: "dispatches per GEMM timing", default: "50" },
    iterations: {
      ...FLAGS.iterations,
      help: "timed training iterations per embedding-update run",
      default: "10, after 2",
    },
    scale: {
      ...FLAGS.scale,
      help: "table scale for the embedding runs, in (0, 1]",
      default: "0.05",
    },
    tiles: {
      type: "boolean",
      help: "also time every tile shape for each product (with the plan's splits)",
    },
    "skip-gemm": { type: "boolean", help: "only the embedding update" },
    "skip-update": { type: "boolean", help: "only the GEMMs" },
    out: { ...FLAGS.out, help: "write the results as JSON" },
  },
  positionals: false,
});

type Op = "forward" | "dX" | "dW";

/** One timed GEMM. */
interface GemmRow {
  model: string;
  batch: number;
  op: Op;
  layer: string;
  m: number;
  n: number;
  k: number;
  kernel: string;
  tile: string;
  splits: number;
  us: number;
  gflops: number;
  speedup: number;
}

/** One embedding-update run. */
interface UpdateRow {
  model: string;
  batch: number;
  path: "pairwise" | "sorted";
  updateMs: number;
  iterationMs: number;
  speedup: number;
}

/** Uniform fields and shapes of a layer's three products at batch `rows`. */
function products(inputs: number, outputs: number, rows: number) {
  return [
    {
      op: "forward" as Op,
      m: rows,
      n: outputs,
      k: inputs,
      fields: {
        n: outputs,
        k: inputs,
        flags: GEMM_M_ROWS | GEMM_BIAS | GEMM_RELU,
        aRow: inputs,
        aCol: 1,
        bRow: 1,
        bCol: inputs,
        cRow: outputs,
      },
    },
    {
      op: "dX" as Op,
      m: rows,
      n: inputs,
      k: outputs,
      fields: {
        n: inputs,
        k: outputs,
        flags: GEMM_M_ROWS | GEMM_MASK,
        aRow: outputs,
        aCol: 1,
        bRow: inputs,
        bCol: 1,
        cRow: inputs,
        maskRow: inputs,
      },
    },
    {
      op: "dW" as Op,
      m: outputs,
      n: inputs,
      k: rows,
      fields: {
        m: outputs,
        n: inputs,
        flags: GEMM_K_ROWS,
        aRow: 1,
        aCol: outputs,
        bRow: inputs,
        bCol: 1,
        cRow: inputs,
      },
    },
  ];
}

/** Times `record` repeated `reps` times in one pass: µs per repetition. */
async function timePass(
  h: KernelHarness,
  reps: number,
  record: (pass: GPUComputePassEncoder) => void,
): Promise<number> {
  const query = h.timestamps ? h.device.createQuerySet({ type: "timestamp", count: 2 }) : null;
  const resolve = query
    ? h.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    })
    : null;
  const staging = query
    ? h.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
    : null;
  const encoder = h.device.createCommandEncoder();
  const pass = encoder.beginComputePass(
    query
      ? {
        timestampWrites: { querySet: query, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
      }
      : undefined,
  );
  h.useIteration(pass, 0);
  for (let r = 0; r < reps; r++) record(pass);
  pass.end();
  if (query) {
    encoder.resolveQuerySet(query, 0, 2, resolve!, 0);
    encoder.copyBufferToBuffer(resolve!, 0, staging!, 0, 16);
  }
  const t0 = performance.now();
  h.device.queue.submit([encoder.finish()]);
  await h.device.queue.onSubmittedWorkDone();
  const wallUs = (performance.now() - t0) * 1000;
  if (!query) return wallUs / reps;
  await staging!.mapAsync(GPUMapMode.READ);
  const t = new BigUint64Array(staging!.getMappedRange().slice(0));
  staging!.unmap();
  for (const b of [staging!, resolve!]) b.destroy();
  query.destroy();
  return Number(t[1] - t[0]) / 1000 / reps;
}

async function benchGemm(
  h: KernelHarness,
  batches: number[],
  reps: number,
  allTiles: boolean,
): Promise<GemmRow[]> {
  const rows: GemmRow[] = [];
  const maxBatch = Math.max(...batches);
  const widest = 1024;
  const rand = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) * 0.5;
    return a;
  };
  // Operands big enough for every product: batch x widest and widest x widest.
  const big = maxBatch * widest;
  const a = h.storage(rand(big)), b = h.storage(rand(big)), c = h.storage(big);
  const bias = h.storage(rand(widest)), mask = h.storage(rand(big));
  const scratch = h.storage(32 * 512 * widest);
  const seen = new Set<string>();
  for (
    const [model, spec] of [["kaggle", kaggleSpec(0.001)], [
      "terabyte",
      terabyteSpec(0.001),
    ]] as const
  ) {
    for (const batch of batches) {
      h.setIterations([{ s0: 0, rows: batch }]);
      for (const [part, widths] of [["bottom", spec.bottomMlp], ["top", spec.topMlp]] as const) {
        for (let l = 1; l < widths.length; l++) {
          for (const p of products(widths[l - 1], widths[l], batch)) {
            const key = `${model}/${batch}/${p.op}/${p.m}x${p.n}x${p.k}`;
            if (seen.has(key)) continue;
            seen.add(key);
            const flops = 2 * p.m * p.n * p.k;
            const layer = `${part}[${l - 1}] ${widths[l - 1]}->${widths[l]}`;
            const base = { model, batch, op: p.op, layer, m: p.m, n: p.n, k: p.k };
            const fields: GemmFields = p.fields;
            const words = GEMM_FIELDS.map((f) => fields[f] ?? 0);
            const naive = h.bind(GEMM_NAIVE16, [h.uniform(words), a, b, c, bias, mask]);
            const naiveUs = await timePass(h, reps, (pass) => {
              h.dispatch(pass, naive, Math.ceil(p.n / 16), Math.ceil(p.m / 16));
            });
            rows.push({
              ...base,
              kernel: "naive16",
              tile: "16x16",
              splits: 1,
              us: naiveUs,
              gflops: flops / naiveUs / 1e3,
              speedup: 1,
            });
            const plan = planGemm(p.m, p.n, p.k);
            const plans: [string, GemmPlan][] = [["plan", plan]];
            if (allTiles) {
              for (const tile of Object.keys(GEMM_TILES) as GemmTileName[]) {
                if (tile !== plan.tile) plans.push([`tile`, { tile, splits: plan.splits }]);
              }
            }
            for (const [kernel, pl] of plans) {
              const g = h.bindGemm(pl, fields, [a, b, c, bias, mask], scratch, p.m * p.n);
              const us = await timePass(h, reps, (pass) => g.record(pass, p.m, p.n));
              rows.push({
                ...base,
                kernel,
                tile: pl.tile,
                splits: pl.splits,
                us,
                gflops: flops / us / 1e3,
                speedup: naiveUs / us,
              });
            }
          }
        }
      }
    }
  }
  return rows;
}

async function benchUpdate(
  batches: number[],
  iters: number,
  scale: number,
): Promise<UpdateRow[]> {
  const out: UpdateRow[] = [];
  const warm = 2;
  for (
    const [model, spec] of [["kaggle", kaggleSpec(scale)], ["terabyte", terabyteSpec(scale)]] as [
      string,
      ModelSpec,
    ][]
  ) {
    const data = new SyntheticCriteo(spec, { seed: 1 });
    for (const batch of batches) {
      const chunk = allocateOneHotChunk(spec, batch, batch * (iters + warm));
      data.fill(chunk, "train", 0);
      let pairwise = 0;
      for (const path of ["pairwise", "sorted"] as const) {
        const engine = await createGpuEngine({
          spec,
          maxBatch: batch,
          seed: 1,
          timingEvery: 1,
          sortedUpdateFrom: path === "sorted" ? 0 : Infinity,
        });
        try {
          const r = await engine.trainChunk(chunk, { learningRate: 0.01 });
          const updateMs = summarize(r.phases.update.subarray(warm)).median;
          const iterationMs = summarize(
            r.phases.update.subarray(warm).map((_, i) =>
              PHASES.reduce((s, ph) => s + r.phases[ph][warm + i], 0)
            ),
          ).median;
          if (path === "pairwise") pairwise = updateMs;
          out.push({
            model,
            batch,
            path,
            updateMs,
            iterationMs,
            speedup: pairwise / updateMs,
          });
        } finally {
          await engine.dispose();
        }
      }
    }
  }
  return out;
}

function pad(v: string | number, n: number): string {
  return String(v).padStart(n);
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values } = parsed;
  const batches = (values["batch-size"] ?? "128,2048,16384").split(",").map((s) => {
    const n = intFlag("batch-size", s);
    if (n === undefined || n > 65535) throw new UsageError(`--batch-size: bad size '${s}'`);
    return n;
  });
  const reps = intFlag("reps", values.reps) ?? 50;
  const iters = intFlag("iterations", values.iterations) ?? 10;
  const scale = numberFlag("scale", values.scale, 0, 1) ?? 0.05;
  const h = await KernelHarness.create();
  const device = h.description;
  const timing = h.timestamps ? "timestamp-query" : "wall clock (no timestamp-query)";
  console.log(`device: ${device}; timing: ${timing}`);
  let gemm: GemmRow[] = [];
  try {
    if (!values["skip-gemm"]) {
      gemm = await benchGemm(h, batches, reps, values.tiles ?? false);
      console.log(
        `\nGEMM (µs per product, ${reps} per pass)\n` +
          "model     batch  op       layer                    m      n      k  kernel   tile    " +
          "splits        µs   GFLOP/s  ×naive",
      );
      for (const r of gemm) {
        console.log(
          `${r.model.padEnd(9)} ${pad(r.batch, 5)}  ${r.op.padEnd(7)}  ${r.layer.padEnd(20)} ${
            pad(r.m, 6)
          } ${pad(r.n, 6)} ${pad(r.k, 6)}  ${r.kernel.padEnd(7)}  ${r.tile.padEnd(7)} ${
            pad(r.splits, 6)
          } ${pad(r.us.toFixed(1), 9)} ${pad(r.gflops.toFixed(0), 9)} ${
            pad(r.speedup.toFixed(2), 7)
          }`,
        );
      }
    }
  } finally {
    h.destroy();
  }
  let update: UpdateRow[] = [];
  if (!values["skip-update"]) {
    update = await benchUpdate(batches, iters, scale);
    console.log(
      `\nEmbedding update inside the engine (median GPU ms per iteration, table scale ${scale})\n` +
        "model     batch  path      update ms  iteration ms  ×pairwise",
    );
    for (const r of update) {
      console.log(
        `${r.model.padEnd(9)} ${pad(r.batch, 5)}  ${r.path.padEnd(8)} ${
          pad(r.updateMs.toFixed(3), 10)
        } ${pad(r.iterationMs.toFixed(3), 13)} ${pad(r.speedup.toFixed(2), 10)}`,
      );
    }
  }
  if (values.out) {
    const json = { device, timing, batches, reps, iters, scale, gemm, update };
    await Deno.writeTextFile(values.out, JSON.stringify(json, null, 2) + "\n");
    console.log(`\nwrote ${values.out}`);
  }
  return 0;
}

if (import.meta.main) runMain("bench_gpu_kernels", main);
