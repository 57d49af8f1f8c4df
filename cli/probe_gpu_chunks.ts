/**
 * `deno task probe:gpu-chunks`: where the wall time between a GPU chunk's end and the next one's
 * start goes. Trains pre-generated chunks back to back as `bench:gpu` does (`timeChunks`) and
 * logs, in host time, every `queue.submit`, `mapAsync` and canvas readback call (the first map
 * of a chunk blocks until the queue is idle) and the `writeBuffer` time, beside the device
 * clock's idle time between consecutive chunks. The WebGPU calls are timed by wrapping their
 * prototypes for the probe's duration: the engine itself is not changed.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { writeFileAtomic } from "../record/files.ts";
import { LOOKAHEAD_CHUNK_BUFFERS } from "../suites/training_loop.ts";
import { chunkIterationsFor, timeChunks, warmUp } from "./bench_gpu.ts";
import { defineCli, FLAGS, intFlag, parseCli, runMain } from "./args.ts";
import { suiteSpecArgs } from "./gpu_methods.ts";

const CLI = defineCli({
  usage: "deno task probe:gpu-chunks [SUITE] [options]",
  description: `Trains chunks of synthetic data back to back on the WebGPU engine and logs the host
time of every queue.submit and mapAsync call beside the device clock's idle time between chunks:
where a chunk boundary's time goes. SUITE: kaggle (default) or terabyte.`,
  options: {
    scale: { ...FLAGS.scale, default: "1: full tables" },
    "batch-size": { ...FLAGS["batch-size"], default: "16384" },
    chunks: { type: "string", arg: "N", help: "timed chunks", default: "16" },
    "chunk-iterations": {
      type: "string",
      arg: "N",
      help: "iterations per chunk (default: ~262k samples, as bench:gpu)",
    },
    "warm-up-ms": {
      type: "string",
      arg: "MS",
      help: "train chunks untimed (one in flight) for at least this long first (0: one chunk)",
      default: "1000",
    },
    out: { ...FLAGS.out, help: "write the log and the totals as JSON" },
  },
});

/** One timed WebGPU call, in host ms from the start of the timed chunks. */
export interface ProbeEvent {
  at: number;
  /**
   * `map-call` / `canvas-call`: the host time of the `mapAsync` / `convertToBlob` call itself
   * (each blocks until the queue is idle); `-done`: until its promise settled.
   */
  call: "submit" | "map-call" | "map-done" | "canvas-call" | "canvas-done";
  ms: number;
  bytes?: number;
}

/**
 * Wraps `GPUQueue.submit`, `GPUBuffer.mapAsync`, `OffscreenCanvas.convertToBlob` (the engine's
 * readback when nothing is queued behind a call) and `GPUQueue.writeBuffer` to log their host
 * times into `events` (and writeBuffer's total into the returned counter) until `restore`.
 */
export function wrapWebGpuCalls(
  events: ProbeEvent[],
  t0: number,
): { writeMs: () => number; restore: () => void } {
  const submit = GPUQueue.prototype.submit;
  const mapAsync = GPUBuffer.prototype.mapAsync;
  const writeBuffer = GPUQueue.prototype.writeBuffer;
  const convertToBlob = OffscreenCanvas.prototype.convertToBlob;
  let writeMs = 0;
  const log = (call: ProbeEvent["call"], start: number, bytes?: number) =>
    events.push({
      at: performance.now() - t0,
      call,
      ms: performance.now() - start,
      ...(bytes === undefined ? {} : { bytes }),
    });
  GPUQueue.prototype.submit = function (this: GPUQueue, buffers: GPUCommandBuffer[]) {
    const start = performance.now();
    const result = submit.call(this, buffers);
    log("submit", start);
    return result;
  };
  /** Logs an asynchronous call's own host time (`-call`) and the time until it settled (`-done`). */
  const timeAsync = <T>(kind: "map" | "canvas", bytes: number, call: () => Promise<T>) => {
    const start = performance.now();
    const settling = call();
    log(`${kind}-call`, start, bytes);
    return settling.then((v) => {
      log(`${kind}-done`, start, bytes);
      return v;
    });
  };
  GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, ...args) {
    return timeAsync("map", this.size, () => mapAsync.apply(this, args));
  };
  OffscreenCanvas.prototype.convertToBlob = function (this: OffscreenCanvas, ...args) {
    const bytes = this.width * this.height * 4;
    return timeAsync("canvas", bytes, () => convertToBlob.apply(this, args));
  };
  GPUQueue.prototype.writeBuffer = function (
    this: GPUQueue,
    ...args: Parameters<GPUQueue["writeBuffer"]>
  ) {
    const start = performance.now();
    const result = writeBuffer.apply(this, args);
    writeMs += performance.now() - start;
    return result;
  };
  return {
    writeMs: () => writeMs,
    restore: () => {
      GPUQueue.prototype.submit = submit;
      GPUBuffer.prototype.mapAsync = mapAsync;
      GPUQueue.prototype.writeBuffer = writeBuffer;
      OffscreenCanvas.prototype.convertToBlob = convertToBlob;
    },
  };
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const { suite, scale, spec } = suiteSpecArgs(positionals, values.scale);
  const batch = intFlag("batch-size", values["batch-size"]) ?? 16384;
  const chunks = intFlag("chunks", values.chunks) ?? 16;
  const chunkIterations = intFlag("chunk-iterations", values["chunk-iterations"]) ??
    chunkIterationsFor(batch, 4_000_000);
  const warmUpMs = intFlag("warm-up-ms", values["warm-up-ms"], 0) ?? 1000;
  const engine = await createGpuEngine({ spec, maxBatch: batch, seed: 1, timingEvery: 64 });
  try {
    const data = new SyntheticCriteo(spec, { seed: 1 });
    const buffers = Array.from({ length: LOOKAHEAD_CHUNK_BUFFERS }, (_, b) => {
      const chunk = allocateOneHotChunk(spec, batch, batch * chunkIterations, true);
      data.fill(chunk, "train", b * batch * chunkIterations);
      return chunk;
    });
    await warmUp(engine, buffers, warmUpMs);
    const events: ProbeEvent[] = [];
    const t0 = performance.now();
    const wrapped = wrapWebGpuCalls(events, t0);
    let timed;
    try {
      timed = await timeChunks(engine, buffers, chunks, null);
    } finally {
      wrapped.restore();
    }
    const iterations = chunks * chunkIterations;
    const gaps = timed.device;
    console.log(
      `GPU: ${engine.info.device}; ${suite} b${batch}, ${chunks} chunks of ${chunkIterations}: ` +
        `wall ${timed.wallMs.toFixed(1)} ms, GPU passes ${
          (timed.gpu.total * iterations).toFixed(1)
        }` +
        ` ms, recording ${timed.encodeMs.toFixed(1)} ms (writeBuffer ${
          wrapped.writeMs().toFixed(1)
        })`,
    );
    if (gaps) {
      console.log(
        `device clock: idle between chunks ${gaps.idleBetweenMs.toFixed(2)} ms ` +
          `(${gaps.betweenMs.map((ms) => ms.toFixed(3)).join(", ")}), untimed within ` +
          `${gaps.untimedWithinMs.toFixed(2)} ms`,
      );
    }
    for (const e of events) {
      console.log(
        `${e.at.toFixed(3).padStart(10)} ms  ${e.call.padEnd(11)} ${
          e.ms.toFixed(3).padStart(9)
        } ms` +
          (e.bytes === undefined ? "" : `  (${e.bytes} B)`),
      );
    }
    if (values.out) {
      await writeFileAtomic(
        values.out,
        JSON.stringify(
          {
            tool: "probe:gpu-chunks",
            deno: Deno.version.deno,
            device: engine.info.device,
            suite,
            scale,
            batch,
            chunks,
            chunkIterations,
            wallMs: timed.wallMs,
            gpuPassesMs: timed.gpu.total * iterations,
            encodeMs: timed.encodeMs,
            writeBufferMs: wrapped.writeMs(),
            deviceClock: gaps,
            events,
          },
          null,
          2,
        ),
      );
    }
    return 0;
  } finally {
    await engine.dispose();
  }
}

if (import.meta.main) await runMain("probe:gpu-chunks", main);
