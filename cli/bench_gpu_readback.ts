/**
 * `deno task bench:readback [--reps N] [--out FILE]`: where the time of a WebGPU readback goes in
 * Deno, and which paths avoid Deno's fixed 10 ms sleep after `mapAsync` (see "The readback
 * floor" in `engine/gpu/README.md`), on whatever adapter this machine has.
 *
 * Single readbacks (median over `--reps`, and its ratio to a 4-byte `mapAsync` on an idle queue
 * measured in the same run): `mapAsync` split into the call (Deno polls the device until the
 * queue is idle before the call returns) and the rest (the sleep); `onSubmittedWorkDone` on an
 * idle queue; `mapAsync` after ~`--chunk-ms` of GPU work; 4 B against 4 MB; four maps awaited
 * together; the `OffscreenCanvas` readback of 4 B and 4 MB; a map by a Worker that owns a device.
 *
 * Streams of `--chunks` chunks of ~`--chunk-ms` GPU work each, every chunk's 4-byte result read
 * back (and checked): submitting each chunk after the previous readback (the engine's way),
 * submitting it right after the previous chunk's `mapAsync` call (two staging buffers), and
 * reading through the canvas. Reported: wall ms per chunk, GPU idle ms per chunk and the GPU's
 * busy fraction (each chunk's GPU time from timestamp queries, else the calibration's).
 *
 * @module
 */
import { writeFileAtomic } from "../record/files.ts";
import { CanvasReader, hasOffscreenCanvas } from "../engine/gpu/canvas_readback.ts";
import { requestGpuDevice } from "../engine/gpu/device.ts";
import { summarize } from "../record/stats.ts";
import { defineCli, FLAGS, intFlag, numberFlag, parseCli, runMain } from "./args.ts";
import type { ReadReply } from "./bench_gpu_readback_worker.ts";
import {
  workerThreads,
  workerThreadsExited,
  workerThreadsSince,
} from "../engine/gpu/worker_threads.ts";

const CLI = defineCli({
  usage: "deno task bench:readback [options]",
  description: `Times WebGPU readbacks in Deno: mapAsync (its blocking poll and its fixed sleep),
onSubmittedWorkDone, large and grouped maps, the OffscreenCanvas readback, a Worker's map, and
streams of chunks read back one by one (serial, submit-before-await, canvas). Prints tables with
ratios to a 4-byte mapAsync measured in the same run; writes JSON with --out.`,
  options: {
    reps: { type: "string", arg: "N", help: "repetitions of each single readback", default: "20" },
    chunks: { type: "string", arg: "N", help: "chunks per stream", default: "20" },
    "chunk-ms": {
      type: "string",
      arg: "LIST",
      help: "GPU ms of a chunk (the busy kernel is calibrated to it), comma-separated",
      default: "5,20",
    },
    out: { ...FLAGS.out, help: "write the results as JSON" },
  },
  positionals: false,
});

/**
 * Busy work: each of the 64 invocations of each workgroup runs a dependent integer chain of
 * `u.x` steps (at most 60,000: llvmpipe cuts a loop off at 65,535 iterations); the first writes
 * the marker `u.y`. The chain's end decides a store, so no compiler can drop the loop.
 */
const BUSY_WGSL = /* wgsl */ `
@group(0) @binding(0) var<uniform> u: vec4u;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  var x = id.x + id.y * 4194304u;
  for (var i = 0u; i < u.x; i++) { x = x * 1664525u + 1013904223u; }
  if (x == 0x9e3779b9u) { out[2] = x; }
  if (all(id == vec3u(0u))) { out[0] = u.y; }
}`;

/** The most steps of one invocation's chain (llvmpipe's loop limit is 65,535). */
const MAX_STEPS = 60000;

/** How much busy work a chunk records: steps per invocation and workgroups. */
interface Busy {
  steps: number;
  workgroups: number;
}

const MB4 = 4 << 20;

/** The device, its busy kernel and the buffers every measurement shares. */
interface Bench {
  device: GPUDevice;
  timestamps: boolean;
  pipeline: GPUComputePipeline;
  uniform: GPUBuffer;
  out: GPUBuffer;
  group: GPUBindGroup;
  big: GPUBuffer;
  query: GPUQuerySet | null;
  resolved: GPUBuffer | null;
}

function createBench(device: GPUDevice, timestamps: boolean): Bench {
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code: BUSY_WGSL }), entryPoint: "main" },
  });
  const uniform = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const out = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: uniform } }, {
      binding: 1,
      resource: { buffer: out },
    }],
  });
  const big = device.createBuffer({
    size: MB4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const query = timestamps ? device.createQuerySet({ type: "timestamp", count: 2 }) : null;
  const resolved = timestamps
    ? device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    })
    : null;
  return { device, timestamps, pipeline, uniform, out, group, big, query, resolved };
}

function staging(device: GPUDevice, bytes: number): GPUBuffer {
  return device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
}

/** Where a pass writes its start and end times (slots `2 * slot` and `2 * slot + 1`). */
interface Stamp {
  querySet: GPUQuerySet;
  slot: number;
}

/** Records `busy` work (writing `marker`), timed into `stamp` when given. */
function recordBusy(
  b: Bench,
  encoder: GPUCommandEncoder,
  busy: Busy,
  marker: number,
  stamp: Stamp | null = null,
): void {
  b.device.queue.writeBuffer(b.uniform, 0, new Uint32Array([busy.steps, marker, 0, 0]));
  const writes = stamp && {
    querySet: stamp.querySet,
    beginningOfPassWriteIndex: 2 * stamp.slot,
    endOfPassWriteIndex: 2 * stamp.slot + 1,
  };
  const pass = encoder.beginComputePass(writes ? { timestampWrites: writes } : {});
  pass.setPipeline(b.pipeline);
  pass.setBindGroup(0, b.group);
  const rows = Math.ceil(busy.workgroups / 65535);
  pass.dispatchWorkgroups(Math.ceil(busy.workgroups / rows), rows);
  pass.end();
}

/** Reads the 4-byte marker out of a mapped staging buffer and unmaps it; throws if wrong. */
function takeMarker(buffer: GPUBuffer, want: number, what: string): void {
  const got = new Uint32Array(buffer.getMappedRange(0, 4))[0];
  buffer.unmap();
  if (got !== want) throw new Error(`Expected ${what} to read back ${want} but found ${got}`);
}

/** GPU ms of `busy` work (timestamp queries, else the host time of a drained map). */
async function busyMs(b: Bench, busy: Busy): Promise<number> {
  const encoder = b.device.createCommandEncoder();
  recordBusy(b, encoder, busy, 1, b.query && { querySet: b.query, slot: 0 });
  const read = staging(b.device, 16);
  if (b.query && b.resolved) {
    encoder.resolveQuerySet(b.query, 0, 2, b.resolved, 0);
    encoder.copyBufferToBuffer(b.resolved, 0, read, 0, 16);
  }
  const t0 = performance.now();
  b.device.queue.submit([encoder.finish()]);
  const mapped = read.mapAsync(GPUMapMode.READ);
  const hostMs = performance.now() - t0; // the call drains the queue (see the README)
  await mapped;
  const stamps = new BigUint64Array(read.getMappedRange().slice(0));
  read.destroy();
  return b.query ? Number(stamps[1] - stamps[0]) / 1e6 : hostMs;
}

/**
 * Busy work of about `ms` GPU ms and the GPU ms it takes: one workgroup with fewer steps when
 * that is enough, else the most steps and as many workgroups as it takes.
 */
async function calibrate(b: Bench, ms: number): Promise<{ busy: Busy; gpuMs: number }> {
  let busy: Busy = { steps: MAX_STEPS, workgroups: 1 };
  await busyMs(b, busy); // the first run compiles the pipeline
  let t = await busyMs(b, busy);
  if (t >= ms) {
    busy = { steps: Math.max(1, Math.round(MAX_STEPS * ms / t)), workgroups: 1 };
  } else {
    while (t < ms / 4 && busy.workgroups < 65535 * 64) {
      busy = { ...busy, workgroups: busy.workgroups * 4 };
      t = await busyMs(b, busy);
    }
    busy = { ...busy, workgroups: Math.max(1, Math.round(busy.workgroups * ms / t)) };
  }
  const again = [await busyMs(b, busy), await busyMs(b, busy), await busyMs(b, busy)];
  return { busy, gpuMs: summarize(again).median };
}

/** One measured readback: named samples in ms (`total` at least). */
type Samples = Record<string, number[]>;

async function repeat(reps: number, once: (s: Samples) => Promise<void>): Promise<Samples> {
  const s: Samples = {};
  await once({}); // warm-up, not kept
  for (let i = 0; i < reps; i++) await once(s);
  return s;
}

function push(s: Samples, key: string, ms: number): void {
  (s[key] ??= []).push(ms);
}

/** A 4-byte (or `bytes`) map after a copy, split into the call and the rest. */
function mapOnce(b: Bench, bytes: number, busy: Busy | null = null): (s: Samples) => Promise<void> {
  const read = staging(b.device, bytes);
  const src = bytes > 16 ? b.big : b.out;
  return async (s) => {
    const encoder = b.device.createCommandEncoder();
    if (busy) recordBusy(b, encoder, busy, 7);
    encoder.copyBufferToBuffer(src, 0, read, 0, bytes);
    const commands = encoder.finish();
    const ts = performance.now();
    b.device.queue.submit([commands]);
    const t0 = performance.now();
    const mapped = read.mapAsync(GPUMapMode.READ);
    const t1 = performance.now();
    await mapped;
    const t2 = performance.now();
    const copy = read.getMappedRange().slice(0);
    read.unmap();
    const t3 = performance.now();
    if (copy.byteLength !== bytes) {
      throw new Error(`Expected ${bytes} bytes but found ${copy.byteLength}`);
    }
    push(s, "total", t3 - ts);
    push(s, "submit", t0 - ts);
    push(s, "mapAsync call", t1 - t0);
    push(s, "after call", t2 - t1);
    push(s, "getMappedRange + unmap", t3 - t2);
  };
}

function doneOnce(b: Bench): (s: Samples) => Promise<void> {
  return async (s) => {
    const t0 = performance.now();
    const done = b.device.queue.onSubmittedWorkDone();
    const t1 = performance.now();
    await done;
    const t2 = performance.now();
    push(s, "total", t2 - t0);
    push(s, "onSubmittedWorkDone call", t1 - t0);
    push(s, "after call", t2 - t1);
  };
}

/** `count` 4-byte maps of one submit, awaited together. */
function mapAllOnce(b: Bench, count: number): (s: Samples) => Promise<void> {
  const reads = Array.from({ length: count }, () => staging(b.device, 4));
  return async (s) => {
    const encoder = b.device.createCommandEncoder();
    for (const r of reads) encoder.copyBufferToBuffer(b.out, 0, r, 0, 4);
    b.device.queue.submit([encoder.finish()]);
    const t0 = performance.now();
    await Promise.all(reads.map((r) => r.mapAsync(GPUMapMode.READ)));
    for (const r of reads) r.unmap();
    push(s, "total", performance.now() - t0);
  };
}

function canvasOnce(b: Bench, reader: CanvasReader, bytes: number, busy: Busy | null = null) {
  const src = bytes > 16 ? b.big : b.out;
  return async (s: Samples) => {
    const encoder = b.device.createCommandEncoder();
    if (busy) recordBusy(b, encoder, busy, 7);
    reader.copy(encoder, src, 0, bytes);
    b.device.queue.submit([encoder.finish()]);
    const t0 = performance.now();
    const data = await reader.read(bytes);
    push(s, "total", performance.now() - t0);
    if (data.byteLength !== bytes) {
      throw new Error(`Expected ${bytes} bytes but found ${data.byteLength}`);
    }
  };
}

/** A readback by a Worker with a device of its own: the main thread's round trip. */
async function workerSamples(reps: number): Promise<Samples | string> {
  const before = workerThreads();
  const worker = new Worker(new URL("./bench_gpu_readback_worker.ts", import.meta.url).href, {
    type: "module",
  });
  const threads = workerThreadsSince(before);
  let reply: (r: ReadReply & { ready?: true }) => void = () => {};
  worker.onmessage = (e) => reply(e.data);
  const next = () => new Promise<ReadReply & { ready?: true }>((r) => (reply = r));
  try {
    const ready = await next();
    if (ready.error) return ready.error;
    const s: Samples = {};
    for (let i = 0; i <= reps; i++) {
      const t0 = performance.now();
      const answer = next();
      worker.postMessage({ marker: 1000 + i });
      const r = await answer;
      const ms = performance.now() - t0;
      if (r.error) return r.error;
      if (r.marker !== 1000 + i) {
        throw new Error(`Expected ${1000 + i} from the worker but found ${r.marker}`);
      }
      if (i === 0) continue; // warm-up
      push(s, "total", ms);
      push(s, "worker's mapAsync", r.mapMs);
    }
    return s;
  } finally {
    worker.terminate();
    // Exiting while its thread drops its WebGPU device crashes NVIDIA's driver.
    await workerThreadsExited(threads);
  }
}

/** How one stream of chunks is read back. */
type StreamMode = "serial" | "submit-before-await" | "canvas";

/** Wall ms of `chunks` chunks of `busy` work, each chunk's marker read back and checked. */
async function stream(
  b: Bench,
  mode: StreamMode,
  chunks: number,
  busy: Busy,
  reader: CanvasReader | null,
): Promise<{ wallMs: number; gpuMs: number | null }> {
  const reads = [staging(b.device, 4), staging(b.device, 4)];
  const querySet = b.timestamps
    ? b.device.createQuerySet({ type: "timestamp", count: 2 * chunks })
    : null;
  const submitChunk = (k: number) => {
    const encoder = b.device.createCommandEncoder();
    recordBusy(b, encoder, busy, k + 1, querySet && { querySet, slot: k });
    if (mode === "canvas") reader!.copy(encoder, b.out, 0, 4);
    else encoder.copyBufferToBuffer(b.out, 0, reads[k % 2], 0, 4);
    b.device.queue.submit([encoder.finish()]);
  };
  const t0 = performance.now();
  if (mode === "submit-before-await") submitChunk(0);
  for (let k = 0; k < chunks; k++) {
    if (mode === "canvas") {
      submitChunk(k);
      const got = new Uint32Array(await reader!.read(4))[0];
      if (got !== k + 1) {
        throw new Error(`Expected chunk ${k} to read back ${k + 1} but found ${got}`);
      }
    } else if (mode === "serial") {
      submitChunk(k);
      await reads[k % 2].mapAsync(GPUMapMode.READ);
      takeMarker(reads[k % 2], k + 1, `chunk ${k}`);
    } else {
      // The call returns once the queue is idle (chunk k done); the next chunk then runs
      // during the sleep that follows, into the other staging buffer.
      const mapped = reads[k % 2].mapAsync(GPUMapMode.READ);
      if (k + 1 < chunks) submitChunk(k + 1);
      await mapped;
      takeMarker(reads[k % 2], k + 1, `chunk ${k}`);
    }
  }
  const wallMs = performance.now() - t0;
  for (const r of reads) r.destroy();
  return { wallMs, gpuMs: querySet ? await stampedMs(b.device, querySet, chunks) : null };
}

/** The GPU ms of `passes` passes timed into `querySet`, summed. */
async function stampedMs(device: GPUDevice, querySet: GPUQuerySet, passes: number) {
  const resolved = device.createBuffer({
    size: 16 * passes,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const read = staging(device, 16 * passes);
  const encoder = device.createCommandEncoder();
  encoder.resolveQuerySet(querySet, 0, 2 * passes, resolved, 0);
  encoder.copyBufferToBuffer(resolved, 0, read, 0, 16 * passes);
  device.queue.submit([encoder.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const t = new BigUint64Array(read.getMappedRange());
  let ns = 0;
  for (let i = 0; i < passes; i++) ns += Number(t[2 * i + 1] - t[2 * i]);
  read.unmap();
  for (const x of [read, resolved, querySet]) x.destroy();
  return ns / 1e6;
}

/** One row of the single-readback table: a median and its ratio to the baseline's. */
interface Row {
  what: string;
  part: string;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  /** median / the median total of a 4-byte mapAsync on an idle queue. */
  ratio: number;
}

/** One stream's figures. */
interface StreamRow {
  mode: StreamMode;
  chunkGpuMs: number;
  chunks: number;
  wallMsPerChunk: number;
  idleMsPerChunk: number;
  busyFraction: number;
  /** wall / the serial stream's wall at the same chunk size. */
  ratio: number;
}

function rowsOf(what: string, s: Samples, baseline: number): Row[] {
  return Object.entries(s).map(([part, ms]) => {
    const m = summarize(ms);
    return {
      what,
      part,
      medianMs: m.median,
      p10Ms: m.p10,
      p90Ms: m.p90,
      ratio: m.median / baseline,
    };
  });
}

const pad = (v: string | number, n: number) => String(v).padStart(n);

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values } = parsed;
  const reps = intFlag("reps", values.reps) ?? 20;
  const chunks = intFlag("chunks", values.chunks) ?? 20;
  const chunkMs = (values["chunk-ms"] ?? "5,20").split(",").map((v) =>
    numberFlag("chunk-ms", v, 0, 10000)!
  );
  const gpu = await requestGpuDevice();
  const b = createBench(gpu.device, gpu.timestamps);
  const canvas = hasOffscreenCanvas() ? new CanvasReader(gpu.device) : null;
  const timing = gpu.timestamps ? "timestamp-query" : "host clock (no timestamp-query)";
  console.log(
    `device: ${gpu.description}${gpu.software ? " (software)" : ""}; chunk GPU time: ${timing}`,
  );
  const rows: Row[] = [];
  const streams: StreamRow[] = [];
  const notes: string[] = [];
  try {
    const tiny = await repeat(reps, mapOnce(b, 4));
    const baseline = summarize(tiny.total).median;
    rows.push(...rowsOf("mapAsync 4 B, idle queue", tiny, baseline));
    rows.push(
      ...rowsOf("onSubmittedWorkDone, idle queue", await repeat(reps, doneOnce(b)), baseline),
    );
    const work = await calibrate(b, chunkMs[0]);
    const busy = await repeat(reps, mapOnce(b, 4, work.busy));
    rows.push(
      ...rowsOf(`mapAsync 4 B after ${work.gpuMs.toFixed(2)} ms GPU work`, busy, baseline),
    );
    rows.push(...rowsOf("mapAsync 4 MB", await repeat(reps, mapOnce(b, MB4)), baseline));
    rows.push(
      ...rowsOf("4 x mapAsync 4 B, Promise.all", await repeat(reps, mapAllOnce(b, 4)), baseline),
    );
    if (canvas) {
      try {
        rows.push(
          ...rowsOf("canvas readback 4 B", await repeat(reps, canvasOnce(b, canvas, 4)), baseline),
        );
        rows.push(
          ...rowsOf(
            "canvas readback 4 MB",
            await repeat(reps, canvasOnce(b, canvas, MB4)),
            baseline,
          ),
        );
        const after = await repeat(reps, canvasOnce(b, canvas, 4, work.busy));
        rows.push(
          ...rowsOf(
            `canvas readback 4 B after ${work.gpuMs.toFixed(2)} ms GPU work`,
            after,
            baseline,
          ),
        );
      } catch (e) {
        notes.push(`canvas readback failed: ${(e as Error).message}`);
      }
    } else notes.push("no OffscreenCanvas in this runtime");
    const worker = await workerSamples(reps);
    if (typeof worker === "string") notes.push(`worker: ${worker}`);
    else rows.push(...rowsOf("Worker-owned device, mapAsync 4 B round trip", worker, baseline));
    for (const ms of chunkMs) {
      const c = await calibrate(b, ms);
      const modes: StreamMode[] = canvas
        ? ["serial", "submit-before-await", "canvas"]
        : ["serial", "submit-before-await"];
      let serial = 0;
      for (const mode of modes) {
        await stream(b, mode, 2, c.busy, canvas); // warm-up
        const { wallMs, gpuMs } = await stream(b, mode, chunks, c.busy, canvas);
        if (mode === "serial") serial = wallMs;
        // The chunks' own GPU time where timestamps exist, else the calibration's.
        const chunkGpuMs = (gpuMs ?? c.gpuMs * chunks) / chunks;
        const per = wallMs / chunks;
        streams.push({
          mode,
          chunkGpuMs,
          chunks,
          wallMsPerChunk: per,
          idleMsPerChunk: Math.max(0, per - chunkGpuMs),
          busyFraction: Math.min(1, chunkGpuMs / per),
          ratio: wallMs / serial,
        });
      }
    }
  } finally {
    canvas?.dispose();
    gpu.device.destroy();
  }
  console.log(`\nSingle readbacks (${reps} reps; ratio: median / mapAsync 4 B total)`);
  console.log(
    `${"readback".padEnd(50)} ${"part".padEnd(24)} ${pad("median ms", 10)} ${pad("p10", 8)} ${
      pad("p90", 8)
    } ${pad("ratio", 7)}`,
  );
  for (const r of rows) {
    console.log(
      `${r.what.padEnd(50)} ${r.part.padEnd(24)} ${pad(r.medianMs.toFixed(3), 10)} ${
        pad(r.p10Ms.toFixed(3), 8)
      } ${pad(r.p90Ms.toFixed(3), 8)} ${pad(r.ratio.toFixed(3), 7)}`,
    );
  }
  console.log(`\nStreams of ${chunks} chunks, each read back (ratio: wall / serial wall)`);
  console.log(
    `${"mode".padEnd(20)} ${pad("chunk GPU ms", 12)} ${pad("wall ms/chunk", 14)} ${
      pad("idle ms/chunk", 14)
    } ${pad("GPU busy", 9)} ${pad("ratio", 7)}`,
  );
  for (const s of streams) {
    console.log(
      `${s.mode.padEnd(20)} ${pad(s.chunkGpuMs.toFixed(2), 12)} ${
        pad(s.wallMsPerChunk.toFixed(2), 14)
      } ${pad(s.idleMsPerChunk.toFixed(2), 14)} ${
        pad((100 * s.busyFraction).toFixed(1) + "%", 9)
      } ${pad(s.ratio.toFixed(3), 7)}`,
    );
  }
  for (const n of notes) console.log(`note: ${n}`);
  if (values.out) {
    const json = {
      device: gpu.description,
      software: gpu.software ?? null,
      deno: Deno.version.deno,
      timing,
      reps,
      chunks,
      rows,
      streams,
      notes,
    };
    await writeFileAtomic(values.out, JSON.stringify(json, null, 2) + "\n");
    console.log(`\nwrote ${values.out}`);
  }
  return 0;
}

if (import.meta.main) runMain("bench_gpu_readback", main);
