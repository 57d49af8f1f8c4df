/**
 * `deno run -A cli/bench_gpu_kernels.ts [--out FILE]`: micro-benchmark of the WebGPU engine's
 * GEMM and embedding update, old against new, in one run on this machine's GPU.
 *
 * GEMM: every product of the Kaggle and Terabyte MLPs (forward Y = X Wᵀ + b with ReLU, input
 * gradient dX = dY W masked, weight gradient dW = dYᵀ X, bias gradient dB = dYᵀ 1) at each
 * batch, timed for the previous kernel (16 x 16 tiles, one output per invocation; kept here
 * only, for the comparison) and for the engine's plan (tuned, else register-blocked tile and
 * split-K chosen per shape), optionally every engine tile; a split weight gradient whose bias
 * gradient the engine sums in its reduction is timed that way too (`plan_with_dB`). Each timing is one compute pass of `--reps` identical dispatches, measured by
 * timestamp queries where the device has them (else by the wall time of the submit), reported as
 * µs per product, TFLOP/s and % of the adapter's FMA peak (measured first, `gemm_sweep.ts`), with
 * totals per model and batch. `--sweep` then tries every candidate tile on each large product
 * and prints the `GEMM_TUNED` lines of engine/gpu/gemm_tuned.ts (engine/gpu/README.md, "GEMM
 * tuning").
 *
 * Embedding update: the engine itself trains synthetic Criteo batches (skewed, duplicate-heavy
 * indices) with the pairwise update (O(B²) per table) and with the sorted one; reported is the
 * median GPU time of the update phase (timestamp queries, every iteration sampled) and of the
 * whole iteration.
 *
 * @module
 */
import { batchSizesFlag } from "./gpu_methods.ts";
import { writeFileAtomic } from "../record/files.ts";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import {
  biasGradInReduce,
  enginePlan,
  gemmLoadOrder,
  type GemmPlan,
  planGemm,
} from "../engine/gpu/gemm_plan.ts";
import { gemmTileByName } from "../engine/gpu/gemm_candidates.ts";
import { gemmTunedKey } from "../engine/gpu/gemm_tuned.ts";
import { planGpuLayout } from "../engine/gpu/layout.ts";
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
import { GEMM_NAIVE16, gemmNaiveKernel } from "../engine/gpu/kernels/gemm_naive.ts";
import { PHASES } from "../engine/phases.ts";
import { summarize } from "../record/stats.ts";
import { kaggleSpec, type ModelSpec, terabyteSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import {
  type FmaPeak,
  fmaWarmUp,
  measureFmaPeak,
  settleClock,
  type SweepBuffers,
  sweepGemm,
  type SweepOptions,
  type SweepResult,
  timePasses,
  tunedLine,
  tunedPick,
  type WarmUp,
} from "./gemm_sweep.ts";
import { defineCli, FLAGS, intFlag, numberFlag, parseCli, runMain } from "./args.ts";

const CLI = defineCli({
  usage: "deno run -A cli/bench_gpu_kernels.ts [options]",
  description:
    `Times the WebGPU GEMM (previous 16x16 kernel against the register-blocked one with the engine's
plan; TFLOP/s and % of the measured FMA peak) for every product of the Kaggle and Terabyte MLPs,
and the embedding update (pairwise against sorted) inside the engine, at each batch size. With
--sweep, tries every candidate tile on the large products and prints GEMM_TUNED lines to paste
into engine/gpu/gemm_tuned.ts. Prints tables; writes JSON with --out.`,
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
    sweep: {
      type: "boolean",
      help: "try every candidate tile (scalar and vec4 loads, K splits) on each large product, " +
        "checked against the rule's plan; print GEMM_TUNED lines for engine/gpu/gemm_tuned.ts",
    },
    "sweep-reps": { type: "string", arg: "N", help: "dispatches per sweep timing", default: "10" },
    "sweep-min-gflop": {
      type: "string",
      arg: "X",
      help: "sweep only products of at least X GFLOP",
      default: "0.25",
    },
    "sweep-seconds": {
      type: "string",
      arg: "S",
      help: "start no product's sweep after S seconds of sweeping (the rest are listed as skipped)",
      default: "200",
    },
    "sweep-tiles": {
      type: "string",
      arg: "LIST",
      help: "sweep only these tiles (names like 128x64_8x4_k16, comma-separated)",
    },
    "sweep-split-all": {
      type: "boolean",
      help:
        "also try K splits on products the rule keeps in the CPU engine's order (small batches)",
    },
    "skip-gemm": { type: "boolean", help: "only the embedding update" },
    "skip-update": { type: "boolean", help: "only the GEMMs" },
    out: { ...FLAGS.out, help: "write the results as JSON" },
  },
  positionals: false,
});

type Op = "forward" | "dX" | "dW" | "dB";

/** A product of one layer of a model at one batch size. */
interface ProductShape {
  model: string;
  batch: number;
  op: Op;
  layer: string;
  m: number;
  n: number;
  k: number;
}

/** One timed GEMM. */
interface GemmRow extends ProductShape {
  kernel: string;
  tile: string;
  splits: number;
  us: number;
  vec4: boolean;
  gflops: number;
  tflops: number;
  /** Of the adapter's measured FMA peak. */
  percentOfPeak: number;
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

/**
 * Uniform fields and shapes of a layer's four products at batch `rows`, its input's rows `ldx`
 * floats apart (the engine pads R's rows, the Top MLP's first input, to a multiple of 4).
 */
function products(inputs: number, outputs: number, rows: number, ldx = inputs) {
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
        aRow: ldx,
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
        cRow: ldx,
        maskRow: ldx,
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
        bRow: ldx,
        bCol: 1,
        cRow: inputs,
      },
    },
    {
      // The bias gradient: column sums of dY, a product with the ones vector (n = 1).
      op: "dB" as Op,
      m: outputs,
      n: 1,
      k: rows,
      fields: {
        m: outputs,
        n: 1,
        flags: GEMM_K_ROWS,
        aRow: 1,
        aCol: outputs,
        bRow: 1,
        bCol: 0,
        cRow: 1,
      },
    },
  ];
}

/** Times `record` repeated `reps` times in one pass (after `warmUp`): µs per repetition. */
async function timePass(
  h: KernelHarness,
  reps: number,
  record: (pass: GPUComputePassEncoder) => void,
  warmUp?: WarmUp,
): Promise<number> {
  return (await timePasses(h, [{ reps, record }], warmUp))[0];
}

/** A product with its GEMM uniform fields. */
interface BenchProduct extends ProductShape {
  fields: GemmFields;
}

/** Every distinct product of the Kaggle and Terabyte MLPs at each batch size. */
function benchProducts(batches: number[]): BenchProduct[] {
  const out: BenchProduct[] = [];
  const seen = new Set<string>();
  const models = [["kaggle", kaggleSpec(0.001)], ["terabyte", terabyteSpec(0.001)]] as const;
  for (const [model, spec] of models) {
    for (const batch of batches) {
      for (const [part, widths] of [["bottom", spec.bottomMlp], ["top", spec.topMlp]] as const) {
        for (let l = 1; l < widths.length; l++) {
          const ldx = part === "top" && l === 1 ? planGpuLayout(spec).ldr : widths[l - 1];
          for (const p of products(widths[l - 1], widths[l], batch, ldx)) {
            const key = `${model}/${batch}/${p.op}/${p.m}x${p.n}x${p.k}`;
            if (seen.has(key)) continue;
            seen.add(key);
            const layer = `${part}[${l - 1}] ${widths[l - 1]}->${widths[l]}`;
            out.push({ model, batch, layer, ...p });
          }
        }
      }
    }
  }
  return out;
}

/** Operand buffers big enough for every product: batch x widest and widest x widest. */
function benchBuffers(h: KernelHarness, batches: number[]): SweepBuffers {
  const maxBatch = Math.max(...batches);
  const widest = 1024;
  const rand = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) * 0.5;
    return a;
  };
  const big = Math.max(maxBatch, widest) * widest;
  return {
    a: h.storage(rand(big)),
    b: h.storage(rand(big)),
    bias: h.storage(rand(widest)),
    mask: h.storage(rand(big)),
    reference: h.storage(big),
    candidate: h.storage(big),
    // Partials of split products: 32 splits of a widest x widest output, or what binds.
    scratch: h.storage(
      Math.min(32 * widest * widest, h.device.limits.maxStorageBufferBindingSize / 4),
    ),
  };
}

async function benchGemm(
  h: KernelHarness,
  buffers: SweepBuffers,
  batches: number[],
  reps: number,
  allTiles: boolean,
  peakTflops: number,
  warmUp?: WarmUp,
): Promise<GemmRow[]> {
  const rows: GemmRow[] = [];
  const { a, b, bias, mask, candidate: c, scratch } = buffers;
  let batch = -1;
  for (const p of benchProducts(batches)) {
    if (p.batch !== batch) h.setIterations([{ s0: 0, rows: batch = p.batch }]);
    const flops = 2 * p.m * p.n * p.k;
    const { model, op, layer, m, n, k, fields } = p;
    const base = { model, batch, op, layer, m, n, k };
    const rates = (us: number) => ({
      us,
      gflops: flops / us / 1e3,
      tflops: flops / us / 1e6,
      percentOfPeak: (100 * flops / us / 1e6) / peakTflops,
    });
    const words = GEMM_FIELDS.map((f) => fields[f] ?? 0);
    const naive = h.bind(GEMM_NAIVE16, [h.uniform(words), a, b, c, bias, mask]);
    const naiveUs = await timePass(h, reps, (pass) => {
      h.dispatch(pass, naive, Math.ceil(n / 16), Math.ceil(m / 16));
    }, warmUp);
    rows.push({
      ...base,
      kernel: "naive16",
      tile: "16x16",
      splits: 1,
      vec4: false,
      ...rates(naiveUs),
      speedup: 1,
    });
    // The small-product kernel's other steps: 16 k with a loop to K (the kernel before), and
    // 128 k written out.
    for (const [bk, unroll] of [[16, false], [128, true]] as const) {
      const variant = gemmNaiveKernel(bk, unroll);
      const bound = h.bind(variant, [h.uniform(words), a, b, c, bias, mask]);
      const us = await timePass(h, reps, (pass) => {
        h.dispatch(pass, bound, Math.ceil(n / 16), Math.ceil(m / 16));
      }, warmUp);
      rows.push({
        ...base,
        kernel: variant.name.replace("gemm_", ""),
        tile: "16x16",
        splits: 1,
        vec4: false,
        ...rates(us),
        speedup: naiveUs / us,
      });
    }
    const layout = gemmLoadOrder(fields);
    const maxWorkgroupBytes = h.device.limits.maxComputeWorkgroupStorageSize;
    const plan = enginePlan(m, n, k, { layout, maxWorkgroupBytes, columnSum: p.op === "dB" });
    const plans: [string, GemmPlan][] = [["plan", plan]];
    // The plan with its k loop rolled: the register-tiled kernel before it was written out; for
    // bias gradients, the register-tiled plan they had before.
    if (p.op === "dB" && plan.tile === "bias_grad") {
      plans.push(["plan_gemm", planGemm(m, n, k, { layout })]);
    } else if (plan.tile !== "naive16") plans.push(["plan_loop", { ...plan, loop: true }]);
    if (allTiles) {
      for (const tile of Object.keys(GEMM_TILES) as GemmTileName[]) {
        if (tile !== plan.tile) plans.push([`tile`, { tile, splits: plan.splits }]);
      }
    }
    // A split weight gradient as the engine runs it: its bias gradient's column sums in the
    // reduction's dispatch (beside C, at m n).
    const withBias = op === "dW" && plan.splits > 1 && biasGradInReduce(m, k);
    if (withBias) plans.push(["plan_with_dB", plan]);
    for (const [kernel, pl] of plans) {
      const folded = kernel === "plan_with_dB";
      const g = folded
        ? h.bindGemm(
          pl,
          { ...fields, biasBase: m * n },
          [a, b, c, bias, mask],
          scratch,
          m * n,
          true,
        )
        : h.bindGemm(pl, fields, [a, b, c, bias, mask], scratch, m * n);
      const us = await timePass(h, reps, (pass) => g.record(pass, m, n), warmUp);
      rows.push({
        ...base,
        kernel,
        tile: pl.tile,
        splits: pl.splits,
        vec4: pl.vec4 ?? false,
        ...rates(us),
        speedup: naiveUs / us,
      });
    }
  }
  return rows;
}

/** Sweeps every product of at least `minGflop` GFLOP (once per shape and layout), largest first. */
async function benchSweep(
  h: KernelHarness,
  buffers: SweepBuffers,
  batches: number[],
  options: SweepOptions & { minGflop: number; seconds: number },
): Promise<SweepResult[]> {
  const out: SweepResult[] = [];
  const seen = new Set<string>();
  const start = performance.now();
  let batch = -1;
  // Largest first: if --sweep-seconds runs out, the products that matter most were swept.
  const products = benchProducts(batches).sort((x, y) => y.m * y.n * y.k - x.m * x.n * x.k);
  for (const p of products) {
    if (2 * p.m * p.n * p.k < options.minGflop * 1e9) continue;
    const layout = gemmLoadOrder(p.fields);
    const key = gemmTunedKey(p.m, p.n, p.k, layout.aKFast, layout.bKFast);
    if (seen.has(key)) continue;
    seen.add(key);
    if (p.batch !== batch) h.setIterations([{ s0: 0, rows: batch = p.batch }]);
    const label = `${p.model} b${p.batch} ${p.op} ${p.layer}`;
    const t0 = performance.now();
    if (t0 - start > options.seconds * 1000) {
      console.log(
        `${label.padEnd(38)} ${pad(`${p.m}x${p.n}x${p.k}`, 16)}  skipped: --sweep-seconds`,
      );
      continue;
    }
    const r = await sweepGemm(h, buffers, { label, ...p }, options);
    const best = r.best;
    console.log(
      `${label.padEnd(38)} ${
        pad(`${r.m}x${r.n}x${r.k}`, 16)
      }  rule ${r.rule.tile}/${r.rule.splits} ${r.rule.us.toFixed(1)} µs` +
        (best
          ? `  best ${best.tile}/${best.splits}${best.vec4 ? "/vec4" : ""} ${
            best.us.toFixed(1)
          } µs ${((r.gflop / best.us) * 1e3).toFixed(2)} TFLOP/s ×${
            (r.rule.us / best.us).toFixed(2)
          }`
          : "  no candidate passed") +
        `  (${r.candidates.length} tried, ${r.rejected} rejected, ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s)`,
    );
    out.push(r);
  }
  return out;
}

/** Work and time of a group of products: their rate and share of the FMA peak. */
interface Totals {
  group: string;
  gflop: number;
  us: number;
  tflops: number;
  percentOfPeak: number;
}

function totals(group: string, gflop: number, us: number, peakTflops: number): Totals {
  const tflops = gflop / us * 1e3;
  return { group, gflop, us, tflops, percentOfPeak: 100 * tflops / peakTflops };
}

function totalsLine(t: Totals): string {
  return `  ${t.group.padEnd(34)} ${pad(t.gflop.toFixed(2), 8)} GFLOP ${
    pad(t.us.toFixed(0), 8)
  } µs ${pad(t.tflops.toFixed(2), 7)} TFLOP/s ${pad(t.percentOfPeak.toFixed(1), 5)} % of peak`;
}

/** Per model and batch, the engine's plans over all its products: GFLOP, µs, TFLOP/s. */
function summarizePlans(
  rows: GemmRow[],
  peakTflops: number,
): { lines: string[]; totals: Totals[] } {
  const groups = new Map<string, { gflop: number; us: number }>();
  for (const r of rows) {
    if (r.kernel !== "plan") continue;
    const key = `${r.model} b${r.batch} MLP products`;
    const g = groups.get(key) ?? { gflop: 0, us: 0 };
    g.gflop += 2 * r.m * r.n * r.k / 1e9;
    g.us += r.us;
    groups.set(key, g);
  }
  const out = [...groups].map(([group, g]) => totals(group, g.gflop, g.us, peakTflops));
  return { lines: ["\nEngine plans, all products together:", ...out.map(totalsLine)], totals: out };
}

/** The swept products together: under the rule's plans, and under the tuned lines' plans. */
function summarizeSweep(
  results: SweepResult[],
  peakTflops: number,
): { lines: string[]; totals: Totals[] } {
  const gflop = results.reduce((s, r) => s + r.gflop, 0);
  const rule = results.reduce((s, r) => s + r.rule.us, 0);
  // What the engine would run once the GEMM_TUNED lines are pasted.
  const tunedUs = results.reduce((s, r) => s + (tunedPick(r)?.us ?? r.rule.us), 0);
  const out = [
    totals(`${results.length} swept products, rule`, gflop, rule, peakTflops),
    totals(`${results.length} swept products, tuned`, gflop, tunedUs, peakTflops),
  ];
  return { lines: ["\nSwept products together:", ...out.map(totalsLine)], totals: out };
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
  const batches = batchSizesFlag(values["batch-size"], "128,2048,16384");
  const reps = intFlag("reps", values.reps) ?? 50;
  const iters = intFlag("iterations", values.iterations) ?? 10;
  const scale = numberFlag("scale", values.scale, 0, 1) ?? 0.05;
  const h = await KernelHarness.create();
  const device = h.description;
  const timing = h.timestamps ? "timestamp-query" : "wall clock (no timestamp-query)";
  console.log(`device: ${device}; timing: ${timing}`);
  let gemm: GemmRow[] = [];
  let peak: FmaPeak | null = null;
  let sweep: SweepResult[] = [];
  let summary: { lines: string[]; totals: Totals[]; sweep?: Totals[] } | null = null;
  const tuned: string[] = [];
  try {
    if (!values["skip-gemm"]) {
      h.setIterations([{ s0: 0, rows: 0 }]);
      peak = await measureFmaPeak(h, h.software ? { workgroups: 64, minUs: 2000 } : {});
      console.log(
        `FMA peak: ${peak.tflops.toFixed(2)} TFLOP/s (${peak.workgroups} workgroups x ` +
          `${peak.loops} rounds, ${peak.us.toFixed(0)} µs)`,
      );
      const buffers = benchBuffers(h, batches);
      // A GPU idle between timings runs the next pass at a lower clock (see WarmUp).
      const warmUp = h.software ? undefined : fmaWarmUp(h, peak);
      gemm = await benchGemm(
        h,
        buffers,
        batches,
        reps,
        values.tiles ?? false,
        peak.tflops,
        warmUp,
      );
      console.log(
        `\nGEMM (µs per product, ${reps} per pass; % of the FMA peak)\n` +
          "model     batch  op       layer                    m      n      k  kernel   tile          " +
          "    splits v4       µs  TFLOP/s  %peak  ×naive",
      );
      for (const r of gemm) {
        console.log(
          `${r.model.padEnd(9)} ${pad(r.batch, 5)}  ${r.op.padEnd(7)}  ${r.layer.padEnd(20)} ${
            pad(r.m, 6)
          } ${pad(r.n, 6)} ${pad(r.k, 6)}  ${r.kernel.padEnd(7)}  ${r.tile.padEnd(17)} ${
            pad(r.splits, 6)
          } ${r.vec4 ? "v4" : "  "} ${pad(r.us.toFixed(1), 8)} ${pad(r.tflops.toFixed(2), 8)} ${
            pad(r.percentOfPeak.toFixed(1), 6)
          } ${pad(r.speedup.toFixed(2), 7)}`,
        );
      }
      summary = summarizePlans(gemm, peak.tflops);
      for (const line of summary.lines) console.log(line);
      if (values.sweep) {
        const sweepReps = intFlag("sweep-reps", values["sweep-reps"]) ?? 10;
        const minGflop = numberFlag("sweep-min-gflop", values["sweep-min-gflop"], 0) ?? 0.25;
        const tiles = values["sweep-tiles"]?.split(",").map((t) => t.trim());
        tiles?.forEach((t) => gemmTileByName(t)); // a bad name fails before any timing
        console.log(`\nGEMM sweep (${sweepReps} per timing, products of >= ${minGflop} GFLOP)`);
        const seconds = numberFlag("sweep-seconds", values["sweep-seconds"], 0) ?? 200;
        sweep = await benchSweep(h, buffers, batches, {
          reps: sweepReps,
          minGflop,
          seconds,
          tiles,
          splitAll: values["sweep-split-all"] ?? false,
          warmUp,
          ...(warmUp ? { settle: () => settleClock(h, warmUp) } : {}),
        });
        for (const r of sweep) {
          const line = tunedLine(r);
          if (line) tuned.push(line);
        }
        console.log(
          `\nGEMM_TUNED entries (${tuned.length}; paste into GEMM_TUNED in engine/gpu/gemm_tuned.ts):`,
        );
        for (const line of tuned) console.log(line);
        if (sweep.length) {
          const swept = summarizeSweep(sweep, peak.tflops);
          for (const line of swept.lines) console.log(line);
          summary = { ...summary, sweep: swept.totals };
        }
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
    const json = {
      device,
      timing,
      batches,
      reps,
      iters,
      scale,
      peak,
      gemm,
      summary: summary && { plans: summary.totals, sweep: summary.sweep },
      sweep,
      tuned,
      update,
    };
    await writeFileAtomic(values.out, JSON.stringify(json, null, 2) + "\n");
    console.log(`\nwrote ${values.out}`);
  }
  return 0;
}

if (import.meta.main) runMain("bench_gpu_kernels", main);
