/**
 * `deno task bench:gpu-compress [options]`: one data-parallel worker's gradient compression per
 * iteration, on the GPU (`engine/gpu/grad_exchange.ts`: kernels, then the readbacks of the local
 * scales and of the messages) against the same compression in JavaScript (`WorkerGradients` of
 * `comm/compression.ts`, what a CPU replica runs), on the Kaggle model's gradients and synthetic
 * Criteo batches (skewed indices, hot rows), per rank batch size and compression preset, in one
 * run on this machine. Also the readback floor (the wait of one `mapAsync` of 16 bytes), the
 * bytes read back per iteration against what a worker sends (`WorkerGradients.bytes`), and
 * whether the GPU's messages equal the JavaScript ones bit for bit.
 *
 * @module
 */
import { writeFileAtomic } from "../record/files.ts";
import { type Compression, COMPRESSION_PRESETS, WorkerGradients } from "../comm/compression.ts";
import { allocateOneHotChunk } from "../engine/batch.ts";
import {
  GpuGradientExchange,
  gpuLayoutAccess,
  packChunkInput,
} from "../engine/gpu/grad_exchange.ts";
import { largestBag } from "../engine/gpu/input.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { planGpuLayout } from "../engine/gpu/layout.ts";
import { gpuIndexSetting, selectGpu } from "../engine/gpu/mod.ts";
import { Rng } from "../engine/rng.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { upperMedian } from "../record/stats.ts";
import { choiceFlag, defineCli, FLAGS, intFlag, numberFlag, parseCli, runMain } from "./args.ts";
import { GPU_DP_FLAGS, gpuDpLists, READBACKS } from "./gpu_dp_flags.ts";

const CLI = defineCli({
  usage: "deno task bench:gpu-compress [options]",
  description:
    `Times one data-parallel worker's gradient compression per iteration on the GPU (kernels and
readbacks) against the same compression in JavaScript, on Kaggle-model gradients, per batch size
and preset; checks that both send the same bytes. Prints a table; writes JSON with --out.`,
  options: {
    ...GPU_DP_FLAGS,
    iterations: { ...FLAGS.iterations, help: "timed iterations per case", default: "20, after 3" },
    scale: { ...FLAGS.scale, help: "table scale of the Kaggle model, in (0, 1]", default: "1" },
    "gpu-index": FLAGS["gpu-index"],
    out: { ...FLAGS.out, help: "write the results as JSON" },
  },
  positionals: false,
});

/** One measured case. */
interface Row {
  batch: number;
  compression: string;
  /** Median ms per iteration: JavaScript compression (the baseline). */
  cpuMs: number;
  /** Median ms per iteration: GPU kernels and readbacks. */
  gpuMs: number;
  /** cpuMs / gpuMs. */
  speedup: number;
  /** Readbacks per iteration (1, or 2 with INT8/INT16 scales). */
  readbacks: number;
  /** Bytes of the results read back per iteration (scales, MLP message, embedding message). */
  readBytes: number;
  /** Bytes copied to the host per iteration (the embedding message's buffer is sized for the
   * largest message a batch can make). */
  copiedBytes: number;
  /** Bytes a worker sends per iteration (`WorkerGradients.bytes().total`). */
  sentBytes: number;
  /** The GPU's messages equal the JavaScript ones. */
  identical: boolean;
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI, Deno.args);
  if (!parsed) return 0;
  const { values } = parsed;
  const { batches, presets } = gpuDpLists(values);
  const iterations = intFlag("iterations", values.iterations) ?? 20;
  const scale = numberFlag("scale", values.scale, 0, 1) ?? 1;
  const readback = choiceFlag("readback", values.readback, READBACKS) ?? "auto";
  const gpuIndex = gpuIndexSetting(intFlag("gpu-index", values["gpu-index"], 0));
  if (gpuIndex !== undefined) await selectGpu(gpuIndex);
  const h = await KernelHarness.create();
  const spec = kaggleSpec(scale);
  const layout = planGpuLayout(spec);
  const data = new SyntheticCriteo(spec, { seed: 1 });
  const rows: Row[] = [];
  const floor = await readbackFloor(h);
  console.log(
    `device: ${h.description}; readback floor ${floor.toFixed(3)} ms (one mapAsync); ` +
      `readback ${readback}`,
  );
  console.log(
    "batch  compression      js ms   gpu ms  ×js   readbacks  read bytes   sent bytes  identical",
  );
  try {
    for (const batch of batches) {
      const chunk = allocateOneHotChunk(spec, batch, batch);
      data.fill(chunk, "train", 0);
      const input = packChunkInput(chunk);
      h.setIterations([{ s0: 0, rows: batch }]);
      const bindIteration = (p: GPUComputePassEncoder) => h.useIteration(p, 0);
      const rng = new Rng(5, batch);
      const memory = new Float32Array(layout.floats + batch * layout.ldt);
      for (let i = 0; i < memory.length; i++) memory[i] = (rng.next() - 0.5) * 0.02;
      const gpuInput = {
        tableDirectory: h.storage(input.directory),
        indices: h.storage(input.indices),
        offsets: h.storage(input.offsets),
      };
      const grad = h.storage(memory.subarray(0, layout.floats));
      const dT = h.storage(memory.subarray(layout.floats));
      for (const name of presets) {
        const c = COMPRESSION_PRESETS[name] as Compression;
        const row = benchCase({ spec, layout, c, chunk, memory, batch, iterations });
        const gpu = new GpuGradientExchange({
          device: h.device,
          binder: { bind: h.bind.bind(h), uniform: (_l, w) => h.uniform(Array.from(w)) },
          spec,
          layout,
          compression: c,
          entries: largestBag(chunk, batch),
          input: gpuInput,
          dT,
          grad,
          readback,
        });
        const times: number[] = [];
        let identical = true, readBytes = 0;
        for (let it = 0; it < iterations + 3; it++) {
          // Error compensation adds the residual into the gradients: the first iteration (the
          // one compared) starts from the same gradients as JavaScript's.
          if (it === 0) h.device.queue.writeBuffer(grad, 0, memory, 0, layout.floats);
          const t0 = performance.now();
          gpu.collect(bindIteration);
          const scales = gpu.scaleCount ? await gpu.readLocalScales() : new Float32Array();
          const m = await gpu.messages(scales, bindIteration);
          if (it >= 3) times.push(performance.now() - t0);
          if (it === 0) {
            readBytes = scales.byteLength + m.mlp.byteLength + m.embedding.byteLength;
            identical = sameBytes(m.mlp, row.reference.mlp) &&
              sameBytes(m.embedding, row.reference.embedding);
          }
        }
        gpu.destroy();
        const gpuMs = upperMedian(times);
        const r: Row = {
          batch,
          compression: name,
          cpuMs: row.cpuMs,
          gpuMs,
          speedup: row.cpuMs / gpuMs,
          readbacks: gpu.scaleCount ? 2 : 1,
          readBytes,
          copiedBytes: gpu.readbackBytes,
          sentBytes: row.sentBytes,
          identical,
        };
        rows.push(r);
        console.log(
          `${String(batch).padStart(5)}  ${name.padEnd(15)} ${r.cpuMs.toFixed(2).padStart(7)} ${
            r.gpuMs.toFixed(2).padStart(8)
          } ${r.speedup.toFixed(2).padStart(5)} ${String(r.readbacks).padStart(10)} ${
            String(r.readBytes).padStart(11)
          } ${String(r.sentBytes).padStart(12)}  ${r.identical ? "yes" : "NO"}`,
        );
      }
    }
  } finally {
    h.destroy();
  }
  if (values.out) {
    const json = {
      device: h.description,
      readbackFloorMs: floor,
      readback,
      scale,
      iterations,
      rows,
    };
    await writeFileAtomic(values.out, JSON.stringify(json, null, 2) + "\n");
    console.log(`wrote ${values.out}`);
  }
  return rows.every((r) => r.identical) ? 0 : 1;
}

/**
 * The JavaScript compression of one worker (collect, local scales, quantize with its own scales
 * as the shared ones, message): median ms per iteration, bytes sent, and the messages of the
 * first iteration as the GPU's reference.
 */
function benchCase(
  o: {
    spec: ReturnType<typeof kaggleSpec>;
    layout: ReturnType<typeof planGpuLayout>;
    c: Compression;
    chunk: ReturnType<typeof allocateOneHotChunk>;
    memory: Float32Array;
    batch: number;
    iterations: number;
  },
) {
  const w = new WorkerGradients(o.spec, o.c);
  const access = gpuLayoutAccess(o.spec, o.layout, o.memory);
  const times: number[] = [];
  let reference = { mlp: new Int8Array(), embedding: new Int8Array() };
  for (let it = 0; it < o.iterations + 3; it++) {
    const t0 = performance.now();
    w.collect(access, o.chunk, 0, o.batch);
    w.quantize(Float32Array.from(w.localScales()));
    const message = w.message();
    if (it >= 3) times.push(performance.now() - t0);
    if (it === 0) {
      const mlp = w.mlpQ ?? w.mlp;
      reference = {
        mlp: new Int8Array(
          new Uint8Array(mlp.buffer, mlp.byteOffset, mlp.byteLength).slice().buffer,
        ),
        embedding: message.slice(),
      };
    }
  }
  return { cpuMs: upperMedian(times), sentBytes: w.bytes().total, reference };
}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.every((v, i) => v === y[i]);
}

/** Median ms of a 16-byte copy and its `mapAsync`: what one readback waits at least. */
async function readbackFloor(h: KernelHarness): Promise<number> {
  const source = h.storage(4);
  const times: number[] = [];
  for (let i = 0; i < 12; i++) {
    const t0 = performance.now();
    await h.read(source, 4);
    if (i >= 2) times.push(performance.now() - t0);
  }
  return upperMedian(times);
}

if (import.meta.main) runMain("bench_gpu_compress", main);
