/**
 * GPU timing for `cli/bench_gpu_kernels.ts`: passes timed by timestamp queries, many per submit
 * ({@linkcode timePasses}); the adapter's measured FMA peak ({@linkcode measureFmaPeak}); and the
 * GEMM sweep ({@linkcode sweepGemm}): for each large product, every candidate tile
 * (gemm_candidates.ts) with scalar and vec4 loads and each K split worth trying, checked on the
 * GPU against the rule's plan and timed; the best becomes a `GEMM_TUNED` line.
 *
 * @module
 */
import { gemmStoresVec4, gemmVec4 } from "../engine/gpu/gemm_bind.ts";
import {
  gemmCandidateTiles,
  gemmSplitChoices,
  gemmTileByName,
} from "../engine/gpu/gemm_candidates.ts";
import {
  enginePlan,
  gemmLoadOrder,
  type GemmPlan,
  gemmPlanTile,
  planGemm,
} from "../engine/gpu/gemm_plan.ts";
import { gemmTunedKey, type TunedGemm } from "../engine/gpu/gemm_tuned.ts";
import { type GemmFields, type KernelHarness } from "../engine/gpu/kernel_harness.ts";
import {
  FMA_PEAK,
  FMA_PEAK_WORKGROUP,
  fmaPeakFlopsPerInvocation,
  fmaPeakUniform,
} from "../engine/gpu/kernels/fma_peak.ts";
import { gemmRunsKMajor } from "../engine/gpu/kernels/gemm_kmajor.ts";
import { MAX_ABS_DIFF } from "../engine/gpu/kernels/max_abs_diff.ts";

/** One timed pass: `record` repeated `reps` times; `prepare` before it, `check` after it. */
export interface PassJob {
  reps: number;
  record(pass: GPUComputePassEncoder): void;
  /** Commands before the timed pass (e.g. clearing the output). */
  prepare?(encoder: GPUCommandEncoder): void;
  /** Dispatches of an untimed pass after it (e.g. checking the output). */
  check?(pass: GPUComputePassEncoder): void;
}

/**
 * Dispatches that keep the GPU busy for a few milliseconds, recorded before timed passes: a GPU
 * left idle (by the readback between two timings, or while pipelines compile) runs its first
 * passes at a lower clock. Measured on the H200: the same 512x512x16384 product timed at 1721 µs
 * straight after the sweep's compiles and at 316 µs after other work.
 */
export type WarmUp = (pass: GPUComputePassEncoder) => void;

/** A {@linkcode WarmUp} of about `us` GPU µs: the FMA-peak kernel, rounds scaled from `peak`. */
export function fmaWarmUp(h: KernelHarness, peak: FmaPeak, us = 5000): WarmUp {
  const out = h.storage(peak.workgroups * FMA_PEAK_WORKGROUP);
  const loops = Math.max(1, Math.round((peak.loops * us) / peak.us));
  const kernel = h.bind(FMA_PEAK, [h.uniform(fmaPeakUniform(loops)), out]);
  return (pass) => h.dispatch(pass, kernel, peak.workgroups);
}

/**
 * Runs `warmUp` `times` times in one submit and waits for it: ~200 ms of the FMA-peak kernel at
 * the default, what an H200 idle for seconds (compiling) needs to return to its clock.
 */
export async function settleClock(h: KernelHarness, warmUp: WarmUp, times = 40): Promise<void> {
  const encoder = h.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  h.useIteration(pass, 0);
  for (let i = 0; i < times; i++) warmUp(pass);
  pass.end();
  h.device.queue.submit([encoder.finish()]);
  await h.device.queue.onSubmittedWorkDone();
}

/**
 * Runs `jobs` in one submit, each timed pass bracketed by its own timestamp queries where the
 * device has them: µs per repetition of each. Without timestamp queries each job is a submit of
 * its own timed by the wall clock (which includes the submit's own cost). `warmUp`, when given,
 * runs untimed first in the same submit (timestamp path only: on the wall clock it would count).
 */
export async function timePasses(
  h: KernelHarness,
  jobs: readonly PassJob[],
  warmUp?: WarmUp,
): Promise<number[]> {
  if (!h.timestamps) {
    const out: number[] = [];
    for (const job of jobs) {
      const encoder = h.device.createCommandEncoder();
      job.prepare?.(encoder);
      const pass = encoder.beginComputePass();
      h.useIteration(pass, 0);
      for (let r = 0; r < job.reps; r++) job.record(pass);
      pass.end();
      const t0 = performance.now();
      h.device.queue.submit([encoder.finish()]);
      await h.device.queue.onSubmittedWorkDone();
      out.push(((performance.now() - t0) * 1000) / job.reps);
      if (job.check) {
        const checkEncoder = h.device.createCommandEncoder();
        const checkPass = checkEncoder.beginComputePass();
        h.useIteration(checkPass, 0);
        job.check(checkPass);
        checkPass.end();
        h.device.queue.submit([checkEncoder.finish()]);
      }
    }
    return out;
  }
  const count = 2 * jobs.length;
  const query = h.device.createQuerySet({ type: "timestamp", count });
  const resolve = h.device.createBuffer({
    size: count * 8,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const staging = h.device.createBuffer({
    size: count * 8,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  h.device.pushErrorScope("validation");
  const encoder = h.device.createCommandEncoder();
  if (warmUp) {
    const pass = encoder.beginComputePass();
    h.useIteration(pass, 0);
    warmUp(pass);
    pass.end();
  }
  jobs.forEach((job, i) => {
    job.prepare?.(encoder);
    const pass = encoder.beginComputePass({
      timestampWrites: {
        querySet: query,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      },
    });
    h.useIteration(pass, 0);
    for (let r = 0; r < job.reps; r++) job.record(pass);
    pass.end();
    if (job.check) {
      const checkPass = encoder.beginComputePass();
      h.useIteration(checkPass, 0);
      job.check(checkPass);
      checkPass.end();
    }
  });
  encoder.resolveQuerySet(query, 0, count, resolve, 0);
  encoder.copyBufferToBuffer(resolve, 0, staging, 0, count * 8);
  h.device.queue.submit([encoder.finish()]);
  const error = await h.device.popErrorScope();
  if (error) throw new Error(`Expected valid timed passes, found: ${error.message}`);
  await staging.mapAsync(GPUMapMode.READ);
  const t = new BigUint64Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  resolve.destroy();
  query.destroy();
  return jobs.map((job, i) => Number(t[2 * i + 1] - t[2 * i]) / 1000 / job.reps);
}

/** The adapter's measured FP32 FMA rate. */
export interface FmaPeak {
  tflops: number;
  /** GPU µs of the measuring dispatch. */
  us: number;
  workgroups: number;
  loops: number;
}

/**
 * Measures the FMA peak: {@linkcode FMA_PEAK} over `workgroups` workgroups, its rounds grown until
 * one dispatch takes at least `minUs` (or `maxLoops` rounds), best of three.
 */
export async function measureFmaPeak(
  h: KernelHarness,
  { workgroups = 8192, minUs = 20000, maxLoops = 1 << 16 } = {},
): Promise<FmaPeak> {
  const out = h.storage(workgroups * FMA_PEAK_WORKGROUP);
  let loops = 8, us = 0;
  const timeLoops = async (n: number, times: number) => {
    const kernel = h.bind(FMA_PEAK, [h.uniform(fmaPeakUniform(n)), out]);
    const job = {
      reps: 1,
      record: (p: GPUComputePassEncoder) => h.dispatch(p, kernel, workgroups),
    };
    return Math.min(...await timePasses(h, Array(times).fill(job)));
  };
  for (;;) {
    us = await timeLoops(loops, 1);
    if (us >= minUs || loops >= maxLoops) break;
    loops = Math.min(maxLoops, loops * Math.max(2, Math.ceil(minUs / Math.max(us, 1))));
  }
  us = await timeLoops(loops, 3);
  const flops = fmaPeakFlopsPerInvocation(loops) * workgroups * FMA_PEAK_WORKGROUP;
  return { tflops: flops / us / 1e6, us, workgroups, loops };
}

/** A product to sweep: its shape, uniform fields and what it is (for the report). */
export interface SweepProduct {
  label: string;
  m: number;
  n: number;
  k: number;
  fields: GemmFields;
}

/** Operand and output buffers of the sweep, each large enough for every product. */
export interface SweepBuffers {
  a: GPUBuffer;
  b: GPUBuffer;
  bias: GPUBuffer;
  mask: GPUBuffer;
  /** The rule plan's output (the reference). */
  reference: GPUBuffer;
  /** A candidate's output. */
  candidate: GPUBuffer;
  scratch: GPUBuffer;
}

/** One candidate plan of a product, timed and checked. */
export interface SweepCandidate {
  tile: string;
  splits: number;
  vec4: boolean;
  us: number;
  /** Largest |candidate - reference| over the output, and largest |reference|. */
  maxAbsDiff: number;
  maxAbsReference: number;
  /** Whether it keeps the reference's summation order (then it must be identical). */
  sameOrder: boolean;
  ok: boolean;
  /** Why the device refused it (compiling, binding or running), if it did. */
  error?: string;
}

/** A product's sweep: the rule's plan, the engine's current plan, the best candidate. */
export interface SweepResult {
  key: string;
  label: string;
  m: number;
  n: number;
  k: number;
  gflop: number;
  rule: GemmPlan & { us: number };
  current: GemmPlan & { us: number };
  best: SweepCandidate | null;
  rejected: number;
  candidates: SweepCandidate[];
}

/** Knobs of {@linkcode sweepGemm}. */
export interface SweepOptions {
  reps: number;
  /** Tile names to try (default: every candidate the device fits). */
  tiles?: readonly string[];
  /** Relative tolerance (to the largest |reference|) for a candidate that reorders the sums. */
  tolerance?: number;
  /**
   * Also try K splits (of at least 64 of k) on products the rule keeps unsplit, in the CPU
   * engine's summation order: a split changes their sums within `tolerance`.
   */
  splitAll?: boolean;
  /** Recorded before each submit of timed passes (see {@linkcode WarmUp}). */
  warmUp?: WarmUp;
  /** Brings the GPU back to speed after a product's compiles (see {@linkcode settleClock}). */
  settle?: () => Promise<void>;
}

/** First float of each K split's chunk for `tile`'s K step (the kernel's own split rule). */
function chunkOf(k: number, splits: number, bk: number): number {
  return Math.ceil(Math.ceil(k / splits) / bk) * bk;
}

/** Sweeps one product (see the module doc). */
export async function sweepGemm(
  h: KernelHarness,
  buffers: SweepBuffers,
  p: SweepProduct,
  options: SweepOptions,
): Promise<SweepResult> {
  const { m, n, k, fields } = p;
  const reps = options.reps, tolerance = options.tolerance ?? 1e-4;
  const layout = gemmLoadOrder(fields);
  const key = gemmTunedKey(m, n, k, layout.aKFast, layout.bKFast);
  const room = Math.floor(buffers.scratch.size / 4 / (m * n));
  // Floats from C's start to past its last output (rows may be padded: the pad is compared too,
  // so both outputs are cleared first).
  const extent = (fields.cBase ?? 0) + (m - 1) * (fields.cRow ?? n) + n;
  const { a, b, bias, mask, reference, candidate, scratch } = buffers;
  const bind = (plan: GemmPlan, c: GPUBuffer) =>
    h.bindGemm(plan, fields, [a, b, c, bias, mask], scratch, m * n);
  const rule = planGemm(m, n, k);
  const maxWorkgroupBytes = h.device.limits.maxComputeWorkgroupStorageSize;
  const current = enginePlan(m, n, k, { layout, maxWorkgroupBytes });
  const ruleGemm = bind(rule, reference), currentGemm = bind(current, candidate);
  const ruleBk = gemmPlanTile(rule)?.bk ?? 1;
  const limits = h.device.limits;
  const tiles = options.tiles ??
    gemmCandidateTiles(
      limits.maxComputeWorkgroupStorageSize,
      limits.maxComputeInvocationsPerWorkgroup,
    );
  // Every candidate: tile, loads (vec4 only where it changes the kernel), K splits.
  const byTile = tiles.map((name) => {
    const out: GemmPlan[] = [];
    for (const vec4 of [false, true]) {
      const plan = { tile: name, splits: 1, vec4 };
      const loads = gemmVec4(plan, fields, layout.aKFast, layout.bKFast);
      // The same kernel as scalar loads and stores.
      if (vec4 && !loads.a && !loads.b && !gemmStoresVec4(plan, fields)) continue;
      // A k-major tile where it would run the transposing kernel: a plain tile's candidate.
      const tile = gemmTileByName(name);
      if (tile.kMajor && !gemmRunsKMajor(tile, layout.aKFast, loads)) continue;
      const choices = gemmSplitChoices(
        tile,
        m,
        n,
        k,
        rule.splits,
        options.splitAll ? { anySplit: true, minSplitK: 64 } : {},
      );
      for (const splits of choices) {
        if (splits <= room || splits === 1) {
          out.push({ tile: name, splits, ...(vec4 ? { vec4 } : {}) });
        }
      }
    }
    return out;
  });
  const plans = byTile.flat();
  const diffs = h.storage(2 * plans.length);
  let slot = 0;
  // Every candidate compiled first, then all timed back to back: compiling a product's
  // candidates takes seconds, in which the idle GPU drops its clock further than a warm-up of a
  // few ms brings back (the first products of a sweep timed 3-5x slower than the kernel table).
  // A tile the device refuses (compiling, binding or running) fails its candidates, not the sweep.
  const groups: { jobs: PassJob[]; error: string }[] = [];
  for (const group of byTile) {
    h.device.pushErrorScope("validation");
    h.device.pushErrorScope("internal");
    const jobs = group.map((plan): PassJob => {
      const gemm = bind(plan, candidate);
      const diff = h.bind(MAX_ABS_DIFF, [h.uniform([extent, slot++]), candidate, reference, diffs]);
      return {
        reps,
        prepare: (encoder) => encoder.clearBuffer(candidate, 0, extent * 4),
        record: (pass) => gemm.record(pass, m, n),
        check: (pass) => h.dispatch(pass, diff, 256),
      };
    });
    const internal = await h.device.popErrorScope(), invalid = await h.device.popErrorScope();
    groups.push({ jobs, error: (internal ?? invalid)?.message ?? "" });
  }
  await options.settle?.();
  // One submit per tile: its candidates' timed passes, each followed by its check.
  const [ruleUs, currentUs] = await timePasses(h, [
    {
      reps,
      prepare: (encoder) => encoder.clearBuffer(reference, 0, extent * 4),
      record: (pass) => ruleGemm.record(pass, m, n),
    },
    { reps, record: (pass) => currentGemm.record(pass, m, n) },
  ], options.warmUp);
  const times: number[] = [];
  const errors: string[] = [];
  for (const { jobs, error: refused } of groups) {
    let error = refused;
    let got: number[] = [];
    if (!error) {
      try {
        got = await timePasses(h, jobs, options.warmUp);
      } catch (e) {
        error = (e as Error).message;
      }
    }
    times.push(...(error ? jobs.map(() => NaN) : got));
    errors.push(...jobs.map(() => error));
  }
  const bits = new Uint32Array((await h.read(diffs, 2 * plans.length)).buffer);
  const asFloat = new Float32Array(bits.buffer);
  const candidates = plans.map((plan, i): SweepCandidate => {
    const bk = gemmTileByName(plan.tile).bk;
    const sameOrder = plan.splits === rule.splits &&
      (plan.splits === 1 || chunkOf(k, plan.splits, bk) === chunkOf(k, rule.splits, ruleBk));
    const maxAbsDiff = asFloat[2 * i], maxAbsReference = asFloat[2 * i + 1];
    // A zero time is no measurement (a pass that did not run): never the best.
    const ok = times[i] > 0 &&
      (sameOrder
        ? maxAbsDiff === 0
        : maxAbsDiff <= tolerance * maxAbsReference && Number.isFinite(maxAbsDiff));
    return {
      tile: plan.tile,
      splits: plan.splits,
      vec4: plan.vec4 ?? false,
      us: times[i],
      maxAbsDiff,
      maxAbsReference,
      sameOrder,
      ok,
      ...(errors[i] ? { error: errors[i] } : {}),
    };
  });
  const passing = candidates.filter((c) => c.ok).sort((x, y) => x.us - y.us);
  return {
    key,
    label: p.label,
    m,
    n,
    k,
    gflop: (2 * m * n * k) / 1e9,
    rule: { ...rule, us: ruleUs },
    current: { ...current, us: currentUs },
    best: passing[0] ?? null,
    rejected: candidates.length - passing.length,
    candidates,
  };
}

/**
 * The `GEMM_TUNED` line of a swept product: its best candidate where that beats both the rule's
 * plan and the engine's current plan by at least `minGain` (0.03: 3 %), else the current plan
 * where that beats the rule's by as much, else null (the rule's plan stands):
 * `  "KEY": { tile, splits, vec4[, loop] }, // label, µs, × rule`.
 */
export function tunedLine(r: SweepResult, minGain = 0.03): string | null {
  const pick = tunedPick(r, minGain);
  if (!pick) return null;
  const loop = pick.loop ? ", loop: true" : "";
  return `  "${r.key}": { tile: "${pick.tile}", splits: ${pick.splits}, vec4: ${pick.vec4}${loop} }, // ${r.label}: ${
    pick.us.toFixed(1)
  } µs, ${(r.rule.us / pick.us).toFixed(2)}x the rule`;
}

/**
 * The plan {@linkcode tunedLine} writes for a swept product, with its time: the best candidate,
 * or the engine's current plan (a product none of whose candidates ran keeps it), or null.
 */
export function tunedPick(r: SweepResult, minGain = 0.03): (TunedGemm & { us: number }) | null {
  // The engine's current plan (a tuned entry, perhaps with its loop rolled, which the sweep's
  // candidates are not) stays unless a candidate beats it too.
  const bestWins = r.best !== null &&
    r.best.us * (1 + minGain) <= Math.min(r.rule.us, r.current.us);
  return bestWins && r.best
    ? { tile: r.best.tile, splits: r.best.splits, vec4: r.best.vec4, us: r.best.us }
    : r.current.us * (1 + minGain) <= r.rule.us
    ? { vec4: false, ...r.current }
    : null;
}
