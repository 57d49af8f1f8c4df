/**
 * `deno run -A cli/bench_preprocess.ts [options]`: the preprocessing throughput benchmark.
 * Generates a synthetic raw Criteo TSV file of at least 1 GB (once; reused while its size
 * matches), preprocesses it into a cache, and prints MB/s of raw text, the CPU cores the build
 * kept busy (process CPU time / wall time) and the machine's load. Then it times filling training
 * chunks from the cache against generating the same chunks synthetically.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { CriteoData, preprocessCriteo, writeRawTsv } from "../data/criteo/mod.ts";
import { choiceFlag, defineCli, FLAGS, intFlag, parseCli, runMain } from "./args.ts";

const CLI = defineCli({
  usage: "deno run -A cli/bench_preprocess.ts [options]",
  description:
    `Generates a synthetic raw Criteo TSV file (once; reused while its size matches), preprocesses
it into a cache and prints MB/s of raw text, the CPU cores the build kept busy and the machine's
load; then times filling training chunks from the cache against generating them synthetically.`,
  options: {
    bytes: {
      type: "string",
      arg: "N",
      help: "size of the generated raw text",
      default: "1073741824, 1 GiB",
    },
    gzip: { type: "boolean", help: "generate and read a gzipped file" },
    file: {
      type: "string",
      arg: "PATH",
      help: "raw file",
      default: "/tmp/dqrm-criteo-bench-BYTES.tsv[.gz]",
    },
    out: {
      ...FLAGS.out,
      arg: "DIR",
      help: "cache folder",
      default: "/tmp/dqrm-criteo-bench-cache",
    },
    index: { ...FLAGS.index, help: "how values are numbered" },
    workers: { ...FLAGS.workers, help: "parsing workers", default: "one per core" },
    "no-checksum": { type: "boolean", help: "do not checksum the source" },
    repeat: { type: "string", arg: "N", help: "builds to time", default: "1" },
  },
  positionals: false,
});

/** CPU seconds this process has used (all threads), from /proc; undefined elsewhere. */
function cpuSeconds(): number | undefined {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values } = parsed;
  const bytes = intFlag("bytes", values.bytes) ?? 2 ** 30;
  const gzip = values.gzip ?? false;
  const file = values.file ?? `/tmp/dqrm-criteo-bench-${bytes}.tsv${gzip ? ".gz" : ""}`;
  const out = values.out ?? "/tmp/dqrm-criteo-bench-cache";
  const index = choiceFlag("index", values.index, ["hash", "frequency"] as const) ?? "hash";
  const sizeFile = `${file}.size`;
  const recorded = await Deno.readTextFile(sizeFile).catch(() => "");
  if (recorded.trim() !== String(bytes)) {
    console.error(`Generating ${file} (${(bytes / 1e6).toFixed(0)} MB of text)…`);
    const t0 = performance.now();
    const r = await writeRawTsv(file, { bytes, gzip });
    await Deno.writeTextFile(sizeFile, `${bytes}\n`);
    console.error(
      `  ${r.lines.toLocaleString("en-US")} lines, ${r.bytes.toLocaleString("en-US")} bytes in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
  }
  const repeat = intFlag("repeat", values.repeat) ?? 1;
  for (let run = 0; run < repeat; run++) {
    const load = Deno.loadavg();
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    const { manifest } = await preprocessCriteo({
      dataset: "kaggle",
      input: file,
      out,
      index,
      workers: intFlag("workers", values.workers),
      checksum: !values["no-checksum"],
      force: true,
    });
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds();
    const mb = manifest.build.textBytes / 1e6;
    const cores = cpu0 !== undefined && cpu1 !== undefined ? (cpu1 - cpu0) / seconds : NaN;
    console.log(
      `preprocess ${gzip ? "gzip" : "plain"} ${index}: ${mb.toFixed(0)} MB of text, ${
        manifest.lines.toLocaleString("en-US")
      } lines in ${seconds.toFixed(2)} s = ${(mb / seconds).toFixed(1)} MB/s; ${
        cores.toFixed(2)
      } cores busy (${manifest.build.workers} workers + main); load average before ${
        load.map((x) => x.toFixed(2)).join(" ")
      } on ${navigator.hardwareConcurrency} cores`,
    );
  }

  // Streaming into training: fill chunks of 250 batches of 128 from the cache vs synthetic.
  const data = await CriteoData.open(out);
  const spec = { ...kaggleSpec(), tableRows: [...data.tableRows] };
  const samples = 250 * 128;
  const chunk = allocateOneHotChunk(spec, 128, samples, true);
  const fills = Math.min(40, Math.floor(data.trainSamples / samples));
  let t = performance.now();
  for (let i = 0; i < fills; i++) data.fill(chunk, "train", i * samples);
  const cacheMs = (performance.now() - t) / fills;
  const synthetic = new SyntheticCriteo(kaggleSpec(), { seed: 1 });
  t = performance.now();
  for (let i = 0; i < fills; i++) synthetic.fill(chunk, "train", i * samples);
  const syntheticMs = (performance.now() - t) / fills;
  console.log(
    `fill ${samples} training samples (250 Kaggle batches): cache ${cacheMs.toFixed(1)} ms (${
      (cacheMs / 250).toFixed(3)
    } ms/it), synthetic ${syntheticMs.toFixed(1)} ms (${(syntheticMs / 250).toFixed(3)} ms/it)`,
  );
  return 0;
}

if (import.meta.main) await runMain("bench_preprocess", main);
