/**
 * `deno task bench:input`: whether the input path keeps up with the WebGPU engine. Times filling
 * training chunks from synthetic data and from a Criteo cache, on the main thread and with pools
 * of 1, 2, 4, 8 and 15 data Workers (`data/fill_pool.ts`), as samples/s and the ratio to one
 * worker; then, when there is a GPU, the engine's own wall ms/it per batch size (input
 * pre-generated) beside the ms/it end to end with every chunk filled on the main thread and by
 * the pool while the chunk before trains (ratio to the engine's own).
 *
 * @module
 */
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import { createGpuEngine, findAdapter } from "../engine/gpu/mod.ts";
import { kaggleSpec, type ModelSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { CriteoData, preprocessCriteo, readManifest, writeRawTsv } from "../data/criteo/mod.ts";
import { defaultDataWorkers, FillPool, type FillSourceSpec } from "../data/fill_pool.ts";
import { writeFileAtomic } from "../record/files.ts";
import { chunkIterationsFor, timeChunks } from "./bench_gpu.ts";
import {
  defineCli,
  FLAGS,
  intFlag,
  intList,
  numberFlag,
  parseCli,
  runMain,
  UsageError,
} from "./args.ts";
import { LOOKAHEAD_CHUNK_BUFFERS } from "../suites/training_loop.ts";

const CLI = defineCli({
  usage: "deno task bench:input [options]",
  description:
    `Times filling training chunks (synthetic Kaggle-shaped data and a Criteo cache) on the main
thread and with pools of data Workers: samples/s and the ratio to one worker. With a GPU, then the
engine's wall ms/it per batch size with input pre-generated, beside end to end with each chunk
filled on the main thread and by the pool (--data-workers) while the chunk before trains.`,
  options: {
    "worker-counts": {
      type: "string",
      arg: "LIST",
      help: "pool sizes timed",
      default: "1,2,4,8,15",
    },
    "data-workers": {
      ...FLAGS["data-workers"],
      help: "the pool of the end-to-end GPU rows",
      default: "the cores but one, at most 15",
    },
    "chunk-samples": { type: "string", arg: "N", help: "samples per chunk", default: "262144" },
    fills: { type: "string", arg: "N", help: "chunks filled per timing", default: "6" },
    scale: { ...FLAGS.scale, default: "1: full Kaggle tables" },
    data: {
      type: "string",
      arg: "DIR",
      help: "a Criteo cache folder (deno task preprocess) to time instead of a generated one",
    },
    "criteo-lines": {
      type: "string",
      arg: "N",
      help: "lines of the generated raw Criteo text the cache is built from (0: no Criteo rows)",
      default: "1000000",
    },
    "batch-size": {
      ...FLAGS["batch-size"],
      arg: "LIST",
      help: "batch sizes of the end-to-end GPU rows",
      default: "128,2048,16384",
    },
    samples: {
      type: "string",
      arg: "N",
      help: "training samples per end-to-end GPU row",
      default: "1,000,000",
    },
    "no-gpu": { type: "boolean", help: "time the fills only" },
    out: { ...FLAGS.out, help: "write the figures as JSON" },
  },
  positionals: false,
});

/** One fill timing. */
interface FillRow {
  data: "synthetic" | "criteo";
  /** 0: the main thread, with the source's own fill. */
  workers: number;
  samplesPerSecond: number;
}

/** One end-to-end GPU row. */
interface EndToEndRow {
  data: "synthetic" | "criteo";
  batch: number;
  iterations: number;
  engineMsPerIt: number;
  mainThreadMsPerIt: number;
  poolMsPerIt: number;
  dataWorkers: number;
}

/** A data source under test: how one thread fills, what the pool builds, the valid ranges. */
interface Source {
  name: "synthetic" | "criteo";
  spec: ModelSpec;
  fill(chunk: BatchChunk, first: number): void;
  pool: FillSourceSpec;
  /** First sample of the `k`-th chunk of `n` samples (wrapping within the training split). */
  firstOf(k: number, n: number): number;
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values } = parsed;
  const counts = intList("worker-counts", values["worker-counts"] ?? "1,2,4,8,15");
  const batches = intList("batch-size", values["batch-size"] ?? "128,2048,16384");
  const chunkSamples = intFlag("chunk-samples", values["chunk-samples"]) ?? 262144;
  const fills = intFlag("fills", values.fills) ?? 6;
  const scale = numberFlag("scale", values.scale, 0, 1) ?? 1;
  const criteoLines = intFlag("criteo-lines", values["criteo-lines"], 0) ?? 1_000_000;
  const samples = numberFlag("samples", values.samples, 1, 1e10) ?? 1_000_000;
  const dataWorkers = intFlag("data-workers", values["data-workers"], 1) ?? defaultDataWorkers();

  const sources: Source[] = [syntheticSource(kaggleSpec(scale))];
  const cache = values.data ?? (criteoLines > 0 ? await generatedCache(criteoLines) : undefined);
  if (cache) sources.push(await criteoSource(cache, chunkSamples));

  console.log(
    `filling chunks of ${chunkSamples} samples, ${fills} per timing, on ${navigator.hardwareConcurrency} cores`,
  );
  console.log("data        workers   samples/s   x 1 worker   x main thread");
  const fillRows: FillRow[] = [];
  for (const source of sources) {
    const chunk = allocateOneHotChunk(source.spec, 128, chunkSamples, true);
    const time = async (fill: (k: number) => void | Promise<void>) => {
      await fill(0); // warm-up: JIT, pages, the first window of a cache
      const t0 = performance.now();
      for (let k = 1; k <= fills; k++) await fill(k);
      return (fills * chunkSamples) / ((performance.now() - t0) / 1e3);
    };
    const mainRate = await time((k) => source.fill(chunk, source.firstOf(k, chunkSamples)));
    const rows: FillRow[] = [{ data: source.name, workers: 0, samplesPerSecond: mainRate }];
    for (const workers of counts) {
      const pool = await FillPool.start(source.pool, workers);
      try {
        const rate = await time((k) => pool.fill(chunk, "train", source.firstOf(k, chunkSamples)));
        rows.push({ data: source.name, workers, samplesPerSecond: rate });
      } finally {
        pool.close();
      }
    }
    const one = rows.find((r) => r.workers === 1)?.samplesPerSecond ?? NaN;
    for (const r of rows) {
      console.log(
        `${r.data.padEnd(10)} ${(r.workers === 0 ? "main" : String(r.workers)).padStart(8)} ` +
          `${fmtRate(r.samplesPerSecond)} ${
            r.workers === 0 ? "".padStart(12) : (r.samplesPerSecond / one).toFixed(2).padStart(12)
          } ${(r.samplesPerSecond / mainRate).toFixed(2).padStart(15)}`,
      );
    }
    fillRows.push(...rows);
  }

  const endToEnd: EndToEndRow[] = [];
  const found = values["no-gpu"] ? undefined : await findAdapter();
  let device: string | null = null;
  if (found?.adapter) {
    console.log(
      `\nend to end (FP32): wall ms/it with input pre-generated (the engine's own), then with ` +
        `each chunk filled on the main thread and by ${dataWorkers} data workers`,
    );
    for (const source of sources) {
      const timed = await timeEndToEnd(source, batches, samples, dataWorkers);
      device = timed.device;
      endToEnd.push(...timed.rows);
    }
    printFillOverEngine(fillRows, endToEnd);
  } else if (found) console.log(`\nno WebGPU adapter (${found.reason}): end-to-end rows skipped`);

  if (values.out) {
    await writeFileAtomic(
      values.out,
      JSON.stringify(
        {
          tool: "bench:input",
          deno: Deno.version.deno,
          cores: navigator.hardwareConcurrency,
          adapter: device,
          chunkSamples,
          scale,
          criteoCache: cache ?? null,
          fills: fillRows,
          endToEnd,
        },
        null,
        2,
      ),
    );
  }
  return 0;
}

/** The end-to-end rows of one source: per batch size, the engine alone, main thread, pool. */
async function timeEndToEnd(
  source: Source,
  batches: number[],
  samples: number,
  dataWorkers: number,
): Promise<{ device: string; rows: EndToEndRow[] }> {
  const rows: EndToEndRow[] = [];
  const engine = await createGpuEngine({
    spec: source.spec,
    maxBatch: Math.max(...batches),
    seed: 1,
    timingEvery: 64,
  });
  console.log(`${source.name} on ${engine.info.device}`);
  console.log("data       batch   its   engine ms/it | +main thread  ratio | +pool  ratio");
  const pool = await FillPool.start(source.pool, dataWorkers);
  try {
    for (const batch of batches) {
      // Chunks as bench:gpu sizes them (~262k samples: a readback leaves the GPU idle ~10 ms).
      const chunkIterations = chunkIterationsFor(batch, samples);
      const n = batch * chunkIterations;
      const chunks = Math.max(3, Math.ceil(samples / n));
      // As many buffers as the training loop keeps (see timeChunks).
      const buffers = Array.from({ length: LOOKAHEAD_CHUNK_BUFFERS }, (_, b) => {
        const chunk = allocateOneHotChunk(source.spec, batch, n, true);
        source.fill(chunk, source.firstOf(b, n));
        return chunk;
      });
      await engine.trainChunk(buffers[0], { learningRate: 0.01 }); // warm-up
      const own = await timeChunks(engine, buffers, chunks, null);
      const main = await timeChunks(engine, buffers, chunks, (chunk, k) => {
        source.fill(chunk, source.firstOf(k + LOOKAHEAD_CHUNK_BUFFERS, n));
      });
      const pooled = await timeChunks(
        engine,
        buffers,
        chunks,
        (chunk, k) => pool.fill(chunk, "train", source.firstOf(k + LOOKAHEAD_CHUNK_BUFFERS, n)),
      );
      const iterations = chunks * chunkIterations;
      const row: EndToEndRow = {
        data: source.name,
        batch,
        iterations,
        engineMsPerIt: own.wallMs / iterations,
        mainThreadMsPerIt: main.wallMs / iterations,
        poolMsPerIt: pooled.wallMs / iterations,
        dataWorkers,
      };
      rows.push(row);
      const e = row.engineMsPerIt;
      console.log(
        `${source.name.padEnd(10)} ${String(batch).padStart(5)} ${String(iterations).padStart(5)} ${
          e.toFixed(3).padStart(14)
        } | ${row.mainThreadMsPerIt.toFixed(3).padStart(12)} ${
          (row.mainThreadMsPerIt / e).toFixed(2).padStart(6)
        } | ${row.poolMsPerIt.toFixed(3).padStart(5)} ${
          (row.poolMsPerIt / e).toFixed(2).padStart(6)
        }`,
      );
    }
  } finally {
    pool.close();
    await engine.dispose();
  }
  return { device: engine.info.device, rows };
}

/**
 * Per source and batch size, each fill rate as ms per iteration over the engine's own wall ms/it:
 * below 1, that many workers fill a batch faster than the engine trains one.
 */
function printFillOverEngine(fills: FillRow[], endToEnd: EndToEndRow[]): void {
  console.log("\nfill ms/it / engine ms/it (below 1: the fill keeps up)");
  const counts = [...new Set(fills.map((f) => f.workers))];
  console.log(
    `data       batch ${counts.map((w) => (w === 0 ? "main" : String(w)).padStart(7)).join("")}`,
  );
  for (const e of endToEnd) {
    const ratios = counts.map((w) => {
      const rate = fills.find((f) => f.data === e.data && f.workers === w)?.samplesPerSecond;
      return rate
        ? ((e.batch / rate) * 1e3 / e.engineMsPerIt).toFixed(2).padStart(7)
        : "-".padStart(7);
    });
    console.log(`${e.data.padEnd(10)} ${String(e.batch).padStart(5)} ${ratios.join("")}`);
  }
}

function syntheticSource(spec: ModelSpec): Source {
  const data = new SyntheticCriteo(spec, { seed: 1 });
  return {
    name: "synthetic",
    spec,
    fill: (chunk, first) => data.fill(chunk, "train", first),
    pool: { kind: "synthetic", shape: spec, options: { seed: 1 } },
    firstOf: (k, n) => (k * n) % 2 ** 30,
  };
}

async function criteoSource(dir: string, chunkSamples: number): Promise<Source> {
  const data = await CriteoData.open(dir, { seed: 1 });
  if (data.trainSamples < chunkSamples) {
    throw new UsageError(
      `Expected a Criteo cache of at least ${chunkSamples} training samples but ${dir} holds ${data.trainSamples}`,
    );
  }
  return {
    name: "criteo",
    spec: { ...kaggleSpec(), tableRows: [...data.tableRows] },
    fill: (chunk, first) => data.fill(chunk, "train", first),
    pool: { kind: "criteo", dir, options: data.options },
    // Whole chunks that fit in the split, in turn (a batch's chunk is a multiple of the batch).
    firstOf: (k, n) => (k % Math.max(1, Math.floor(data.trainSamples / n))) * n,
  };
}

/**
 * A Kaggle-layout cache built from `lines` lines of generated raw Criteo text under the temp
 * folder, reused while its manifest says it holds them.
 */
async function generatedCache(lines: number): Promise<string> {
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  const dir = `${tmp}/dqrm-input-bench-cache-${lines}`;
  const manifest = await readManifest(dir).catch(() => undefined);
  if (manifest?.lines === lines) return dir;
  const raw = `${tmp}/dqrm-input-bench-${lines}.tsv`;
  const t0 = performance.now();
  console.error(`building a Criteo cache of ${lines} generated lines in ${dir}…`);
  await writeRawTsv(raw, { lines });
  await preprocessCriteo({ dataset: "kaggle", input: raw, out: dir, force: true });
  await Deno.remove(raw);
  console.error(`  built in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
  return dir;
}

function fmtRate(x: number): string {
  return (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(1)}k`).padStart(11);
}

if (import.meta.main) await runMain("bench:input", main);
