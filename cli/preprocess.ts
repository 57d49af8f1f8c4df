/**
 * `deno task preprocess kaggle|terabyte INPUT --out DIR [options]`: preprocesses raw Criteo files
 * into a binary cache that `deno task bench SUITE --data DIR` trains on, and prints what it read:
 * lines, samples, bad lines by kind with their first line numbers, table sizes, splits, MB/s.
 *
 * @module
 */
import {
  type CacheManifest,
  describeBadLineReport,
  describeUnseen,
  formatName,
  prepareTestCriteo,
  preprocessCriteo,
  type PreprocessProgress,
  splitRule,
} from "../data/criteo/mod.ts";
import { defineCli, FLAGS, intFlag, parseCli, runMain, UsageError } from "./args.ts";
import { PREPROCESS_FLAGS, preprocessChoices } from "./criteo_flags.ts";

const CLI = defineCli({
  usage: "deno task preprocess kaggle|terabyte INPUT --out DIR [options]",
  description:
    `Preprocesses raw Criteo data into a binary cache in DIR: TSV or the Kaggle competition's CSV
(Id,Label,I1..C26; header and Id skipped), plain or gzipped, LF or CR LF line ends, detected per
file. INPUT is Kaggle's train.txt[.gz] or train.csv (or its folder), or Terabyte's folder of
day_0 … day_23[.gz] (or one day's file). A complete cache with the same options and unchanged
files is reused; an interrupted build resumes after its last finished file. A file with no
usable sample is an error naming the likely cause. With --test-data FILE, FILE is also read
through the cache's dictionaries into DIR/tests/NAME-KEY (bench --data DIR --test-data FILE
reuses it).`,
  options: {
    out: { ...FLAGS.out, arg: "DIR", help: "cache folder (required)" },
    ...PREPROCESS_FLAGS,
    seed: { ...FLAGS.seed, help: "seed of the sub-sampling", default: "1" },
    workers: { ...FLAGS.workers, help: "parsing workers", default: "one per core" },
    "no-checksum": {
      type: "boolean",
      help: "do not checksum the sources (CRC-32) into the manifest",
    },
    verify: {
      type: "boolean",
      help: "when reusing a cache, also recompute each source's whole CRC-32 (by default: " +
        "path, size, time, and a CRC-32 of its first and last MiB and 32 windows between)",
    },
    force: { type: "boolean", help: "rebuild even if a complete cache matches" },
    quiet: FLAGS.quiet,
  },
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 2) {
    throw new UsageError(
      `expected a dataset (kaggle or terabyte) and an input path but found ${
        positionals.length ? positionals.map((p) => `'${p}'`).join(" ") : "none"
      }`,
    );
  }
  const dataset = positionals[0];
  if (dataset !== "kaggle" && dataset !== "terabyte") {
    throw new UsageError(`expected the dataset kaggle or terabyte but found '${dataset}'`);
  }
  if (values.out === undefined) throw new UsageError("--out DIR is required");
  const started = performance.now();
  const result = await preprocessCriteo({
    dataset,
    input: positionals[1],
    out: values.out,
    ...preprocessChoices(values),
    seed: intFlag("seed", values.seed, 0),
    workers: intFlag("workers", values.workers),
    checksum: !values["no-checksum"],
    verify: values.verify,
    force: values.force,
    onProgress: values.quiet ? undefined : printProgress,
  });
  const seconds = (performance.now() - started) / 1000;
  console.log(
    result.reused
      ? `Reused the complete cache in ${result.dir} (${seconds.toFixed(1)} s)`
      : `Built ${result.dir}`,
  );
  console.log(summarizeManifest(result.manifest));
  if (result.manifest.samples === 0) {
    throw new RangeError(
      `Expected samples in ${positionals[1]} but found none in its ${result.manifest.lines} lines`,
    );
  }
  const testData = values["test-data"];
  if (testData !== undefined) {
    const test = await prepareTestCriteo(
      { cache: result.dir, manifest: result.manifest, reused: result.reused },
      testData,
      { strict: values.strict, onProgress: values.quiet ? undefined : printProgress },
    );
    console.log(
      `${test.reused ? "Reused" : "Built"} the test cache ${test.cache} from ${testData}, ` +
        `read with the dictionaries of ${result.dir}`,
    );
    console.log(summarizeManifest(test.manifest, true));
    console.log(`  ${describeUnseen(test)}`);
    console.log(
      `  with --test-data the whole training data trains (${
        result.manifest.samples.toLocaleString("en-US")
      } samples) and every test sample tests`,
    );
  }
  return 0;
}

function printProgress(p: PreprocessProgress): void {
  const mb = p.textBytes / 1e6;
  console.error(
    `[preprocess] ${p.stage} · file ${p.source + 1}/${p.sources} · ${mb.toFixed(0)} MB · ${
      p.lines.toLocaleString("en-US")
    } lines · ${p.samples.toLocaleString("en-US")} samples · ${(mb / p.seconds).toFixed(1)} MB/s`,
  );
}

/** A human summary of a cache's manifest (`test`: a test cache, every sample tests). */
export function summarizeManifest(m: CacheManifest, test = false): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const lines = [
    `  options: ${JSON.stringify(m.options)}`,
    ...m.sources.map((s) =>
      `  ${s.file}: ${n(s.lines)} lines, ${n(s.samples)} samples, ${n(s.subsampled)} sub-sampled, ${
        n(s.badLines)
      } bad, ${formatName(s.format)}${s.gzip ? ", gzip" : ""}${s.crc32 ? `, crc32 ${s.crc32}` : ""}`
    ),
    test
      ? `  test: ${n(m.samples)} samples in ${n(m.chunks.length)} chunk files`
      : `  splits: train ${n(m.splits.train.samples)}, test ${
        n(m.splits.test.samples)
      }, validation ${n(m.splits.validation.samples)} samples in ${
        n(m.chunks.length)
      } chunk files (${splitRule(m.options.dataset, m.sources.length)})`,
    `  table rows: ${m.tableRows.join(", ")} (total ${n(m.tableRows.reduce((a, b) => a + b, 0))})`,
  ];
  const bad = describeBadLineReport(m.badLines);
  if (bad.length === 0) lines.push("  bad lines: none");
  for (const line of bad) lines.push(`  bad lines, ${line}`);
  lines.push(
    `  build: ${m.build.seconds.toFixed(1)} s, ${
      (m.build.textBytes / 1e6).toFixed(0)
    } MB of text, ${m.build.megabytesPerSecond.toFixed(1)} MB/s on ${m.build.workers} workers`,
  );
  return lines.join("\n");
}

if (import.meta.main) await runMain("preprocess", main);
