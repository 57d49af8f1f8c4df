/**
 * `deno task bench:gpu`: what the WebGPU engine costs, measured in one run on this machine's
 * adapter. For each batch size and method (FP32, DQRM INT4 with period 200): GPU milliseconds per
 * iteration by phase (timestamp queries), host milliseconds spent encoding, and wall-clock ms/it
 * and samples/s with chunks submitted back to back (one in flight while the next is encoded),
 * both with input batches pre-generated and with the synthetic generator filling every chunk (a
 * pool of data Workers, `--data-workers`, while the chunk before trains); from the device's
 * clock, the GPU's idle time between chunks and its untimed time within them.
 * Then scale finding over every table (a new scale every step) against a plain streaming copy's
 * bandwidth, and optionally a PyTorch step of the same model on the same GPU, eager and captured
 * whole as one CUDA graph, each beside our wall ms/it (ours / theirs).
 *
 * @module
 */
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import type { Engine, TrainChunkResult } from "../engine/engine.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { measureStreamCopy } from "./stream_copy.ts";
import { type Phase, PHASES } from "../engine/phases.ts";
import { summarize } from "../record/stats.ts";
import { type ModelSpec, parameterCounts } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { dqrm } from "../suites/experiments.ts";
import {
  batchSizesFlag,
  GPU_METHODS as METHODS,
  methodsFlag,
  suiteSpecArgs,
  tablePasses,
} from "./gpu_methods.ts";
import { writeFileAtomic } from "../record/files.ts";
import { runPytorch } from "./pytorch_peer.ts";
import { defaultDataWorkers, FillPool } from "../data/fill_pool.ts";
import { defineCli, FLAGS, intFlag, numberFlag, parseCli, runMain } from "./args.ts";
import { LOOKAHEAD_CHUNK_BUFFERS } from "../suites/training_loop.ts";

/**
 * Least wall time the warm-up chunks before each batch size and method's timing take. With 0.5 s
 * (chunks in flight), Kaggle b16384 FP32, the first row of its batch size, still ran on the H200
 * at 2.49 GPU ms/it against DQRM's 2.36 right after it in one run of two (2026-12-03).
 */
const WARM_UP_MS = 1000;

const CLI = defineCli({
  usage: "deno task bench:gpu [SUITE] [options]",
  description:
    `Times the WebGPU engine on synthetic data, one index per bag: per batch size and method (fp32,
dqrm = DQRM INT4, period 200) the GPU ms/it by phase, host encode ms/it, and wall ms/it and
samples/s with pre-generated input and with the generator filling each chunk (in --data-workers
Workers, while the chunk before trains; also the wait for the first chunk's fill, when nothing
trains yet, and the rate after it; from the device's clock, its idle ms/it between chunks and
untimed ms/it within them); then scale finding over all tables (a new scale every
step) against a streaming copy's bandwidth. SUITE picks the architecture: kaggle (default) or
terabyte.`,
  options: {
    scale: { ...FLAGS.scale, default: "1: full tables, 2.16 GB / 12.58 GB" },
    "batch-size": {
      ...FLAGS["batch-size"],
      arg: "LIST",
      help: "comma-separated batch sizes",
      default: "128,2048,16384; terabyte 2048",
    },
    samples: {
      type: "string",
      arg: "N",
      help: "training samples timed per batch size and method",
      default: "2,000,000",
    },
    methods: {
      type: "string",
      arg: "LIST",
      help: `comma-separated methods: ${Object.keys(METHODS).join(", ")}`,
      default: "fp32,dqrm",
    },
    "chunk-samples": {
      type: "string",
      arg: "N",
      help: "samples per chunk (one submit and one readback each)",
      default: "262,144",
    },
    "data-workers": {
      ...FLAGS["data-workers"],
      help: "Workers that fill each chunk in the +generator columns (0: the main thread)",
      default: "the cores but one, at most 15",
    },
    "full-table-maxima": {
      type: "boolean",
      help: "find the tables' maxima by reading every table (not from incremental block maxima)",
    },
    pytorch: {
      type: "string",
      arg: "PY",
      help: "also run cli/pytorch_dlrm.py with this python: eager and one CUDA graph per step",
    },
    out: { ...FLAGS.out, help: "write the figures as JSON" },
  },
});

/** One (batch, method) row of the benchmark. */
interface Row {
  batch: number;
  method: string;
  iterations: number;
  chunkIterations: number;
  gpuMsPerIt: Record<Phase | "total", number>;
  encodeMsPerIt: number;
  wallMsPerIt: number;
  samplesPerSecond: number;
  wallMsPerItGenerated: number;
  samplesPerSecondGenerated: number;
  /** The wait for the first chunk's fill (nothing trains yet), in the +generator wall time. */
  firstFillMsGenerated: number;
  /** +generator wall ms/it after that wait: the pipeline's steady rate. */
  wallMsPerItGeneratedAfterFirstFill: number;
  /** Where the main thread's wall time went, ms/it: pre-generated, then +generator. */
  mainThread: { encode: number; fillWait: number; resultWait: number }[];
  /**
   * The device's idle ms/it between chunks and untimed ms/it within them (device clock;
   * pre-generated, then +generator; null without timestamps).
   */
  device: ({ idleBetween: number; untimedWithin: number } | null)[];
  engineGB: number;
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const { suite, scale, spec } = suiteSpecArgs(positionals, values.scale);
  const batches = batchSizesFlag(
    values["batch-size"],
    suite === "kaggle" ? "128,2048,16384" : "2048",
  );
  const samples = numberFlag("samples", values.samples, 1, 1e10) ?? 2_000_000;
  const chunkSamples = numberFlag("chunk-samples", values["chunk-samples"], 1, 1e9) ?? 262144;
  const methods = methodsFlag(values.methods, "fp32,dqrm");
  const dataWorkers = intFlag("data-workers", values["data-workers"], 0) ?? defaultDataWorkers();
  const tableBytes = parameterCounts(spec).embedding * 4;
  const fullMaxima = values["full-table-maxima"] === true;

  // FP32 and DQRM share one engine (DQRM switched off for FP32); every other method has its own.
  const t0 = performance.now();
  const engines = new Map<string, Engine>();
  const engineFor = async (method: string): Promise<Engine> => {
    const key = method === "fp32" || method === "dqrm" ? "dqrm" : method;
    let engine = engines.get(key);
    if (!engine) {
      engine = await createGpuEngine({
        spec,
        maxBatch: Math.max(...batches),
        seed: 1,
        quantization: METHODS[key].quant,
        timingEvery: 64,
        incrementalTableMaxima: !fullMaxima,
      });
      engines.set(key, engine);
    }
    engine.setQuantizationActive(method !== "fp32");
    return engine;
  };
  const first = await engineFor(methods[0]);
  const adapter = first.info.device;
  console.log(
    `GPU: ${adapter}; ${suite} tables ${(tableBytes / 1e9).toFixed(3)} GB ` +
      `(scale ${scale}), engine ready in ${((performance.now() - t0) / 1e3).toFixed(1)} s`,
  );
  const rows: Row[] = [];
  const data = new SyntheticCriteo(spec, { seed: 1 });
  let pool: FillPool | undefined;
  try {
    if (dataWorkers > 0) {
      pool = await FillPool.start(
        { kind: "synthetic", shape: spec, options: { seed: 1 } },
        dataWorkers,
      );
    }
    console.log(
      `+generator: each chunk filled by ${
        pool ? `${dataWorkers} data workers` : "the main thread"
      } while the chunk before trains`,
    );
    console.log(
      "batch method  its   GPU ms/it: scale forward backward update  total | encode | " +
        "wall ms/it  samples/s | +generator ms/it samples/s | first fill ms, then ms/it",
    );
    for (const batch of batches) {
      // Chunks of ~262k samples: far longer than mapAsync's 10 ms sleep, which the next chunk
      // trains through (engine/gpu/README.md, "The readback floor").
      const chunkIterations = chunkIterationsFor(batch, samples, chunkSamples);
      const chunks = Math.max(3, Math.ceil(samples / batch / chunkIterations));
      // As many buffers as the training loop keeps (see timeChunks).
      const buffers = Array.from({ length: LOOKAHEAD_CHUNK_BUFFERS }, (_, b) => {
        const chunk = allocateOneHotChunk(spec, batch, batch * chunkIterations, true);
        data.fill(chunk, "train", b * batch * chunkIterations);
        return chunk;
      });
      // The pool's warm-up, as the engine gets one: fills for as long (a Worker's generator is
      // compiled in tiers over its first fills). Buffer 0 gets the samples it holds.
      if (pool) {
        const until = performance.now() + WARM_UP_MS;
        do await pool.fill(buffers[0], "train", 0); while (performance.now() < until);
      }
      for (const method of methods) {
        const engine = await engineFor(method);
        await warmUp(engine, buffers, WARM_UP_MS);
        const pre = await timeChunks(engine, buffers, chunks, null);
        const gen = await timeChunks(engine, buffers, chunks, (chunk, k) => {
          const from = ((k + LOOKAHEAD_CHUNK_BUFFERS) * batch * chunkIterations) % 2 ** 30;
          return pool ? pool.fill(chunk, "train", from) : data.fill(chunk, "train", from);
        });
        const iterations = chunks * chunkIterations;
        const row: Row = {
          batch,
          method,
          iterations,
          chunkIterations,
          gpuMsPerIt: pre.gpu,
          encodeMsPerIt: pre.encodeMs / iterations,
          wallMsPerIt: pre.wallMs / iterations,
          samplesPerSecond: (iterations * batch) / (pre.wallMs / 1e3),
          wallMsPerItGenerated: gen.wallMs / iterations,
          samplesPerSecondGenerated: (iterations * batch) / (gen.wallMs / 1e3),
          firstFillMsGenerated: gen.firstFillMs,
          wallMsPerItGeneratedAfterFirstFill: (gen.wallMs - gen.firstFillMs) / iterations,
          mainThread: [pre, gen].map((t) => ({
            encode: t.encodeMs / iterations,
            fillWait: t.fillWaitMs / iterations,
            resultWait: t.resultWaitMs / iterations,
          })),
          device: [pre, gen].map((t) =>
            t.device && {
              idleBetween: t.device.idleBetweenMs / iterations,
              untimedWithin: t.device.untimedWithinMs / iterations,
            }
          ),
          engineGB: engine.memoryBytes() / 1e9,
        };
        rows.push(row);
        const g = row.gpuMsPerIt;
        console.log(
          `${String(batch).padStart(5)} ${method.padEnd(6)} ${String(iterations).padStart(5)}  ` +
            `${fix(g.scale, 9)} ${fix(g.forward, 7)} ${fix(g.backward, 8)} ${fix(g.update, 6)} ` +
            `${fix(g.total, 6)} | ${fix(row.encodeMsPerIt, 6)} | ${fix(row.wallMsPerIt, 10)} ` +
            `${fmtRate(row.samplesPerSecond)} | ${fix(row.wallMsPerItGenerated, 16)} ` +
            `${fmtRate(row.samplesPerSecondGenerated)} | ${fix(row.firstFillMsGenerated, 10)} ` +
            `${fix(row.wallMsPerItGeneratedAfterFirstFill, 10)}`,
        );
        const [p, q] = row.mainThread;
        console.log(
          `      main thread ms/it (encode, waiting for fills, for results): pre-generated ` +
            `${fix(p.encode, 0)} ${fix(p.fillWait, 0)} ${fix(p.resultWait, 0)}; +generator ` +
            `${fix(q.encode, 0)} ${fix(q.fillWait, 0)} ${fix(q.resultWait, 0)}`,
        );
        const [dp, dq] = row.device;
        if (dp && dq) {
          console.log(
            `      device clock ms/it (idle between chunks, untimed within them): pre-generated ` +
              `${fix(dp.idleBetween, 0)} ${fix(dp.untimedWithin, 0)}; +generator ` +
              `${fix(dq.idleBetween, 0)} ${fix(dq.untimedWithin, 0)}`,
          );
        }
      }
      const f = rows.find((r) => r.batch === batch && r.method === "fp32");
      for (const q of rows.filter((r) => r.batch === batch && r.method !== "fp32")) {
        if (!f) break;
        console.log(
          `      ${q.method} / FP32: GPU ${
            (q.gpuMsPerIt.total / f.gpuMsPerIt.total).toFixed(3)
          }x, ` +
            `wall ${(q.wallMsPerIt / f.wallMsPerIt).toFixed(3)}x`,
        );
      }
    }
    for (const [key, engine] of engines) {
      console.log(`engine memory (${key}): ${fix(engine.memoryBytes() / 1e9, 0)} GB`);
    }
  } finally {
    pool?.close();
    for (const engine of engines.values()) await engine.dispose();
  }

  const scaleMs = await scaleFindingMs(spec, false);
  const blockScaleMs = await scaleFindingMs(spec, true);
  const stream = await measureStreamCopy();
  const scaleGBs = tableBytes / 1e6 / scaleMs;
  console.log(
    `\nscale finding over all tables (every step): ${scaleMs.toFixed(3)} ms = ` +
      `${scaleGBs.toFixed(0)} GB/s read`,
  );
  console.log(
    `scale phase from incremental block maxima (every step): ${blockScaleMs.toFixed(3)} ms ` +
      `(full read / block maxima: ${(scaleMs / blockScaleMs).toFixed(2)}x)`,
  );
  console.log(
    `streaming copy (${stream.mib} MiB in + out, vec4): ${stream.ms.toFixed(3)} ms = ` +
      `${stream.gbs.toFixed(0)} GB/s moved`,
  );
  console.log(`scale finding / streaming copy: ${(scaleGBs / stream.gbs).toFixed(2)}`);
  const floors = trafficFloors(rows, tableBytes, stream.gbs, !fullMaxima);

  const pytorch = values.pytorch
    ? await runPytorch(values.pytorch, suite, spec.tableRows, batches, rows)
    : { runs: [], comparison: [] };
  if (values.out) {
    await writeFileAtomic(
      values.out,
      JSON.stringify(
        {
          tool: "bench:gpu",
          adapter,
          deno: Deno.version.deno,
          suite,
          scale,
          tableBytes,
          dataWorkers,
          rows,
          scaleFinding: { ms: scaleMs, gbPerS: scaleGBs, blockMaximaMs: blockScaleMs },
          incrementalTableMaxima: !fullMaxima,
          streamCopy: stream,
          scaleOverStream: scaleGBs / stream.gbs,
          pytorch: pytorch.runs,
          pytorchComparison: pytorch.comparison,
          trafficFloors: floors,
        },
        null,
        2,
      ),
    );
  }
  return 0;
}

/** One method's GPU time against its memory-traffic floor at one batch size. */
interface TrafficFloor {
  batch: number;
  method: string;
  /** FP32's GPU ms/it plus the method's whole-table bytes at the streaming copy's bandwidth. */
  floorMs: number;
  gpuOverFloor: number;
  wallOverFloor: number;
}

/**
 * Each method's memory-traffic floor: the FP32 step (same batch, same run) plus its whole-table
 * passes (`METHODS`) moved at the streaming copy's bandwidth. Printed and returned.
 */
function trafficFloors(
  rows: Row[],
  tableBytes: number,
  streamGBs: number,
  incrementalMaxima: boolean,
): TrafficFloor[] {
  const floors: TrafficFloor[] = [];
  for (const row of rows) {
    const f = rows.find((r) => r.batch === row.batch && r.method === "fp32");
    if (!f || row.method === "fp32") continue;
    const floorMs = f.gpuMsPerIt.total +
      (tablePasses(METHODS[row.method], incrementalMaxima) * tableBytes) / 1e6 / streamGBs;
    floors.push({
      batch: row.batch,
      method: row.method,
      floorMs,
      gpuOverFloor: row.gpuMsPerIt.total / floorMs,
      wallOverFloor: row.wallMsPerIt / floorMs,
    });
  }
  if (floors.length) console.log("\nmemory-traffic floor (FP32 step + whole-table passes):");
  for (const x of floors) {
    console.log(
      `${String(x.batch).padStart(5)} ${x.method.padEnd(7)} floor ${fix(x.floorMs, 7)} ms  ` +
        `GPU / floor ${x.gpuOverFloor.toFixed(2)}x  wall / floor ${x.wallOverFloor.toFixed(2)}x`,
    );
  }
  return floors;
}

/**
 * Iterations per chunk for `samples` samples at `batch`: ~`chunkSamples` samples a chunk, at
 * most 500 iterations, and at least three chunks.
 */
export function chunkIterationsFor(batch: number, samples: number, chunkSamples = 262144): number {
  const most = Math.min(500, Math.round(chunkSamples / batch), Math.floor(samples / batch / 3));
  return Math.max(1, most);
}

/**
 * Where the device's time between and inside chunks went, from their device-clock spans (null
 * unless every chunk has one): idle between one chunk's last timed pass and the next one's first,
 * and inside each span outside the timed passes (copies, timestamp resolves, pass boundaries).
 */
export function deviceGaps(results: TrainChunkResult[]): DeviceGaps | null {
  if (results.length === 0 || results.some((r) => r.deviceClockMs === undefined)) return null;
  let untimedWithinMs = 0;
  const betweenMs: number[] = [];
  results.forEach((r, k) => {
    const { start, end } = r.deviceClockMs!;
    if (k > 0) betweenMs.push(start - results[k - 1].deviceClockMs!.end);
    let timed = 0;
    for (const p of PHASES) for (const v of r.phases[p]) timed += v;
    untimedWithinMs += end - start - timed;
  });
  const idleBetweenMs = betweenMs.reduce((a, b) => a + b, 0);
  return { idleBetweenMs, untimedWithinMs, betweenMs };
}

/** What {@linkcode deviceGaps} finds: the totals, and the idle ms at each chunk boundary. */
export interface DeviceGaps {
  idleBetweenMs: number;
  untimedWithinMs: number;
  betweenMs: number[];
}

/**
 * Warms `engine` up for timing: pipelines and caches on a first chunk that settles, then chunks
 * with one in flight (as {@linkcode timeChunks} trains them) for at least `ms`. Idle while the
 * host built the buffers, an H200 clocks down and needs work without gaps to come back: after
 * a second of chunks each awaited (the GPU idle for each one's `mapAsync` sleep and the next
 * one's recording), Kaggle b16384's first two timed chunks still ran at ~6.5 GPU ms/it, the
 * rest at 2.4 (`probe:gpu-chunks`, 2026-12-03).
 */
export async function warmUp(engine: Engine, buffers: BatchChunk[], ms: number): Promise<void> {
  const from = performance.now();
  await engine.trainChunk(buffers[0], { learningRate: 0.01 });
  while (performance.now() - from < ms) {
    await timeChunks(engine, buffers, Math.max(2, buffers.length), null);
  }
}

/**
 * Trains `chunks` chunks with one in flight while the next is encoded, taking the buffers in turn;
 * `refill` (if given) fills each buffer again before it is trained on. With N buffers the fill of
 * chunk `k + N - 1` starts as soon as chunk `k` is recorded (the GPU engine copies a chunk's input
 * as it records it, so the buffer of chunk `k - 1` is free): with three, as the training loop does
 * (`suites/training_loop.ts`), a data worker pool fills the chunk after next while the device
 * trains this one and the next, so its fill has settled by the time the main thread waits for it.
 * (With two, a fill that settles after the chunk before returned lets that chunk's `mapAsync`
 * run first, which blocks the main thread until the GPU is idle: the next chunk is then recorded
 * while the GPU waits.) Give it an engine already warmed up by a call that settled (a first LSQ
 * call reads its chunk late).
 */
export async function timeChunks(
  engine: Engine,
  buffers: BatchChunk[],
  chunks: number,
  refill: ((chunk: BatchChunk, k: number) => void | Promise<void>) | null,
): Promise<{
  wallMs: number;
  encodeMs: number;
  firstFillMs: number;
  /** Waits for fills after the first (a pool that keeps up leaves none). */
  fillWaitMs: number;
  /** Waits for each chunk's results while the next one trains. */
  resultWaitMs: number;
  gpu: Record<Phase | "total", number>;
  /**
   * From the device's clock (null without it): ms it sat idle between consecutive chunks (in
   * all and at each boundary), and ms inside the chunks' spans outside their timed passes.
   */
  device: DeviceGaps | null;
}> {
  const results: TrainChunkResult[] = [];
  let encodeMs = 0, firstFillMs = 0, fillWaitMs = 0, resultWaitMs = 0;
  let inFlight: Promise<TrainChunkResult> | null = null;
  const start = performance.now();
  const n = buffers.length;
  const fills: (Promise<void> | undefined)[] = [];
  const fill = (k: number) => {
    if (!refill || k >= chunks) return;
    const filling = Promise.resolve(refill(buffers[k % n], k));
    filling.catch(() => {}); // awaited before chunk k is recorded; rejects there
    fills[k] = filling;
  };
  for (let k = 0; k < n - 1; k++) fill(k);
  for (let k = 0; k < chunks; k++) {
    const f0 = performance.now();
    await fills[k];
    if (k === 0) firstFillMs = performance.now() - start;
    else fillWaitMs += performance.now() - f0;
    const e0 = performance.now();
    const next = engine.trainChunk(buffers[k % n], { learningRate: 0.01 });
    encodeMs += performance.now() - e0;
    fill(k + n - 1);
    const r0 = performance.now();
    if (inFlight) results.push(await inFlight);
    resultWaitMs += performance.now() - r0;
    inFlight = next;
  }
  results.push(await inFlight!);
  const wallMs = performance.now() - start;
  const gpu = { total: 0 } as Record<Phase | "total", number>;
  let iterations = 0;
  for (const p of PHASES) gpu[p] = 0;
  for (const r of results) {
    iterations += r.iterations;
    for (const p of PHASES) for (const v of r.phases[p]) gpu[p] += v;
  }
  for (const p of PHASES) {
    gpu[p] /= iterations;
    gpu.total += gpu[p];
  }
  return {
    wallMs,
    encodeMs,
    firstFillMs,
    fillWaitMs,
    resultWaitMs,
    gpu,
    device: deviceGaps(results),
  };
}

/**
 * GPU ms of the scale phase per step, DQRM INT4 with a new scale every step (batch 128): reading
 * every table, or (`incremental`) the block maxima.
 */
async function scaleFindingMs(spec: ModelSpec, incremental: boolean): Promise<number> {
  const engine = await createGpuEngine({
    spec,
    maxBatch: 128,
    seed: 1,
    quantization: dqrm(4, 4, 1),
    timingEvery: 1,
    incrementalTableMaxima: incremental,
  });
  try {
    const chunk = allocateOneHotChunk(spec, 128, 128 * 40, true);
    new SyntheticCriteo(spec, { seed: 1 }).fill(chunk, "train", 0);
    await engine.trainChunk(chunk, { learningRate: 0.01 });
    const r = await engine.trainChunk(chunk, { learningRate: 0.01 });
    return summarize(r.phases.scale).median;
  } finally {
    await engine.dispose();
  }
}

function fix(x: number, width: number): string {
  return x.toFixed(3).padStart(width);
}

function fmtRate(x: number): string {
  return (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(1)}k`).padStart(10);
}

if (import.meta.main) await runMain("bench:gpu", main);
