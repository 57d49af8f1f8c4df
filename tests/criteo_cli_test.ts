import assert from "node:assert/strict";
import { readManifest } from "../data/criteo/mod.ts";
import { goodLine, tempDir, text } from "./criteo_helpers.ts";

const CLI = new URL("../cli/preprocess.ts", import.meta.url).pathname;
const BENCH = new URL("../cli/bench.ts", import.meta.url).pathname;

async function preprocess(args: string[], cli = CLI) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("deno task preprocess builds a cache, reports bad lines, reuses it, and stops in --strict", async () => {
  const dir = await tempDir();
  const lines = Array.from({ length: 700 }, (_, i) => (i === 41 ? "1\t2\t3" : goodLine(i)));
  await Deno.writeFile(`${dir}/train.txt`, text(lines));
  const first = await preprocess(["kaggle", `${dir}/train.txt`, "--out", `${dir}/c`, "--quiet"]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /Built .*\/c/);
  assert.match(
    first.stdout,
    /train\.txt: 700 lines, 699 samples, 0 sub-sampled, 1 bad, TSV, crc32 [0-9a-f]{8}/,
  );
  assert.match(first.stdout, /bad lines, fields: 1 \(.*\); first at train\.txt:42/);
  assert.match(first.stdout, /splits: train 599, test 50, validation 50 samples/);
  assert.equal((await readManifest(`${dir}/c`))?.samples, 699);
  const again = await preprocess(["kaggle", `${dir}/train.txt`, "--out", `${dir}/c`, "--quiet"]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /Reused the complete cache/);
  const strict = await preprocess([
    "kaggle",
    `${dir}/train.txt`,
    "--out",
    `${dir}/s`,
    "--strict",
    "--quiet",
  ]);
  assert.equal(strict.code, 1);
  assert.equal(
    strict.stderr.trim(),
    "preprocess: train.txt:42: Expected 40 tab-separated fields but found 3",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task preprocess: a wrong argument prints one line naming it and exits 2", async () => {
  for (
    const [args, pattern] of [
      [
        ["kaggle"],
        /expected a dataset \(kaggle or terabyte\) and an input path but found 'kaggle'/,
      ],
      [["avazu", "x", "--out", "y"], /expected the dataset kaggle or terabyte but found 'avazu'/],
      [["kaggle", "x"], /--out DIR is required/],
      [
        ["kaggle", "x", "--out", "y", "--subsample", "1"],
        /--subsample expects a number in \[0, 1\)/,
      ],
      [["kaggle", "x", "--out", "y", "--index", "lru"], /--index expects one of hash, frequency/],
      [["kaggle", "x", "--out", "y", "--bogus"], /Unknown option '--bogus'/],
    ] as const
  ) {
    const r = await preprocess([...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  }
});

Deno.test("deno task bench --data prints the bad lines it skips and records them in each result", async () => {
  const dir = await tempDir();
  const lines = Array.from(
    { length: 2000 },
    (_, i) => (i === 9 || i === 99 ? "1\t2" : i === 500 ? "" : goodLine(i)),
  );
  await Deno.writeFile(`${dir}/train.txt`, text(lines));
  const run = await preprocess([
    "kaggle",
    "--data",
    `${dir}/train.txt`,
    "--run",
    "fp32",
    "--iterations",
    "2",
    "--test-samples",
    "128",
    "--threads",
    "1",
    "--out",
    `${dir}/out`,
    "--quiet",
  ], BENCH);
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stderr,
    /\[data\] .*: 2,000 lines read, 1,997 samples kept, 0 sub-sampled, 3 bad lines skipped:/,
  );
  assert.match(run.stderr, /\[data\] {3}empty: 1 \(.*\); first at train\.txt:501\n/);
  assert.match(
    run.stderr,
    /\[data\] {3}fields: 2 \(.*\); first at train\.txt:10, train\.txt:100\n/,
  );
  const result = JSON.parse(await Deno.readTextFile(`${dir}/out/fp32.json`));
  assert.deepEqual(result.inputLines, {
    lines: 2000,
    samples: 1997,
    subsampled: 0,
    bad: 3,
    badLines: {
      empty: { count: 1, first: [{ file: "train.txt", line: 501 }] },
      fields: {
        count: 2,
        first: [{ file: "train.txt", line: 10 }, { file: "train.txt", line: 100 }],
      },
    },
  });
  // A path that is not there: one line naming it and what was expected.
  const missing = await preprocess(["kaggle", "--data", `${dir}/nonexistent`, "--quiet"], BENCH);
  assert.equal(missing.code, 1);
  assert.equal(
    missing.stderr.trim(),
    `bench: Expected Kaggle's train.txt[.gz] (TSV, or the competition's train.csv), or a folder holding it, or a cache folder at ${dir}/nonexistent but found nothing there`,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task preprocess: the competition's CSV builds; a file with no usable sample exits 1 with one line", async () => {
  const dir = await tempDir();
  const header = "Id,Label," + Array.from({ length: 13 }, (_, i) => `I${i + 1}`).join(",") + "," +
    Array.from({ length: 26 }, (_, i) => `C${i + 1}`).join(",");
  const rows = Array.from({ length: 700 }, (_, i) => `${i},${goodLine(i).replaceAll("\t", ",")}`);
  await Deno.writeTextFile(`${dir}/train.csv`, [header, ...rows].join("\r\n") + "\r\n");
  const csv = await preprocess(["kaggle", `${dir}/train.csv`, "--out", `${dir}/c`, "--quiet"]);
  assert.equal(csv.code, 0, csv.stderr);
  assert.match(
    csv.stdout,
    /train\.csv: 700 lines, 700 samples, 0 sub-sampled, 0 bad, CSV with header and Id column/,
  );
  await Deno.writeFile(`${dir}/empty.txt`, new Uint8Array(0));
  for (const strict of [[], ["--strict"]]) {
    const empty = await preprocess(["kaggle", `${dir}/empty.txt`, "--out", `${dir}/e`, ...strict]);
    assert.equal(empty.code, 1);
    assert.equal(empty.stdout, "");
    assert.match(
      empty.stderr.trim(),
      /^preprocess: Expected Criteo samples in \S+empty\.txt but found none usable in 0 lines; likely cause: the file is empty$/,
    );
  }
  await Deno.remove(dir, { recursive: true });
});
