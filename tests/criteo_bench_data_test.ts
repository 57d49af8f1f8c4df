/**
 * `bench --data` with the preprocessing options and `--test-data`, and `infer MODEL --data FILE`
 * scoring a real-format file with the model's own indexing (synthetic TSV written by the tests).
 */
import assert from "node:assert/strict";
import { parseRunResult } from "../record/schema.ts";
import { goodLine, tempDir, text } from "./criteo_helpers.ts";

const CLI = new URL("../cli/", import.meta.url).pathname;

async function run(tool: string, args: string[], cacheDir: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${CLI}${tool}`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { DQRM_CACHE_DIR: cacheDir },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const SMALL = ["--threads", "1", "--eval-every", "0", "--quiet"];
/** A short fp32 run of 2 iterations writing its results to `out`. */
const fp32TwoIterations = (out: string) => [
  "--run",
  "fp32",
  "--iterations",
  "2",
  ...SMALL,
  "--out",
  out,
];

Deno.test("bench --data takes the preprocessing options; a built cache must match them", async () => {
  const dir = await tempDir();
  await Deno.writeFile(
    `${dir}/train.txt`,
    text(Array.from({ length: 700 }, (_, i) => goodLine(i))),
  );
  const r = await run("bench.ts", [
    "kaggle",
    "--data",
    `${dir}/train.txt`,
    "--max-ind-range",
    "30",
    "--index",
    "frequency",
    "--threshold",
    "2",
    "--strict",
    ...fp32TwoIterations(`${dir}/r`),
  ], `${dir}/cache`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /bench: data: .*train\.txt \(preprocessed\) -> .*; train\.txt is cut into 7 parts by lines: parts 0-5 train, part 6 is halved into test and validation: train 600, test 50, validation 50 samples/,
  );
  const result = parseRunResult(JSON.parse(await Deno.readTextFile(`${dir}/r/fp32.json`)));
  assert.equal(result.config.data.kind, "criteo");
  if (result.config.data.kind !== "criteo") return;
  assert.equal(result.config.data.options.maxIndRange, 30);
  assert.equal(result.config.data.options.index, "frequency");
  assert.equal(result.config.data.options.threshold, 2);
  assert.ok(result.spec.tableRows.every((rows) => rows <= 31));
  // The cache it built, named with another modulo: one line saying which.
  const cache = result.config.data.cache;
  const wrong = await run("bench.ts", [
    "kaggle",
    "--data",
    cache,
    "--max-ind-range",
    "40",
    "--run",
    "fp32",
    ...SMALL,
  ], `${dir}/cache`);
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.equal(
    wrong.stderr.trim(),
    `bench: Expected --max-ind-range 40 to be the built cache's but ${cache} has 30; rebuild it with deno task preprocess`,
  );
  for (
    const [args, line] of [
      [["--max-ind-range", "5"], "bench: --max-ind-range apply only with --data (see --help)"],
      [["--test-data", "x"], "bench: --test-data apply only with --data (see --help)"],
      [
        ["--data", `${dir}/train.txt`, "--threshold", "3"],
        "bench: --threshold applies only with --index frequency (see --help)",
      ],
    ]
  ) {
    const u = await run("bench.ts", ["kaggle", ...args], `${dir}/cache`);
    assert.equal(u.code, 2, u.stderr);
    assert.equal(u.stderr.trim(), line);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bench --data --test-data trains on the whole file; infer --data scores the test file with the model's indexing alike", async () => {
  const dir = await tempDir();
  const cacheDir = `${dir}/cache`;
  await Deno.writeFile(
    `${dir}/train.txt`,
    text(Array.from({ length: 700 }, (_, i) => goodLine(i))),
  );
  const test = Array.from({ length: 210 }, (_, i) => goodLine(650 + i, 80));
  test[5] = "1\t2\t3";
  await Deno.writeFile(`${dir}/test.txt`, text(test));
  const r = await run("bench.ts", [
    "kaggle",
    "--data",
    `${dir}/train.txt`,
    "--test-data",
    `${dir}/test.txt`,
    "--max-ind-range",
    "45",
    "--run",
    "dqrm-int4",
    "--save-models",
    ...SMALL,
    "--out",
    `${dir}/r`,
  ], cacheDir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /the whole training data trains: 700 samples/);
  assert.match(r.stderr, /test\.txt -> .*: 209 samples read with the training data's dictionaries/);
  const result = parseRunResult(JSON.parse(await Deno.readTextFile(`${dir}/r/dqrm-int4.json`)));
  assert.equal(result.config.trainSamples, 700);
  assert.equal(result.iterations, 5); // whole batches of 128
  assert.equal(result.config.testSamples, 209);
  assert.equal(
    result.config.data.kind === "criteo" && result.config.data.test?.source,
    `${dir}/test.txt`,
  );
  const model = `${dir}/r/dqrm-int4.model`;
  const sidecar = JSON.parse(await Deno.readTextFile(`${model}.indexing`));
  assert.equal(sidecar.options.maxIndRange, 45);
  assert.match(sidecar.dictionaries.dir, /^dictionaries\/[0-9a-f]{16}$/);

  // The model scores the same file exactly as the run's final evaluation did.
  const infer = await run("infer.ts", [
    model,
    "--data",
    `${dir}/test.txt`,
    "--out",
    `${dir}/preds.csv`,
    "--quiet",
  ], cacheDir);
  assert.equal(infer.code, 0, infer.stderr);
  assert.match(infer.stdout, /210 lines, 209 samples/);
  assert.match(
    infer.stdout,
    new RegExp(
      `209 samples: accuracy ${result.final!.accuracy.toFixed(4)}, AUC ${
        result.final!.auc.toFixed(4)
      }, log loss ${result.final!.logLoss.toFixed(4)}; \\d+ samples/s`,
    ),
  );
  const preds = (await Deno.readTextFile(`${dir}/preds.csv`)).split("\n");
  assert.equal(preds.length, 211); // 210 lines and the final LF
  assert.equal(preds[5], "", "the bad line has no probability");
  for (const [i, p] of preds.slice(0, 210).entries()) {
    if (i !== 5) assert.ok(Number(p) > 0 && Number(p) < 1, `line ${i + 1}: ${p}`);
  }

  // Rebuilding the cache with other options leaves the results folder's dictionaries alone.
  const other = await run("bench.ts", [
    "kaggle",
    "--data",
    `${dir}/train.txt`,
    "--max-ind-range",
    "7",
    "--run",
    "fp32",
    "--iterations",
    "1",
    "--save-models",
    ...SMALL,
    "--out",
    `${dir}/r2`,
  ], cacheDir);
  assert.equal(other.code, 0, other.stderr);
  // The model moves with its folder: the sidecar and the dictionaries beside it go along.
  await Deno.rename(`${dir}/r`, `${dir}/moved`);
  await Deno.remove(cacheDir, { recursive: true });
  const moved = await run("infer.ts", [
    `${dir}/moved/dqrm-int4.model`,
    "--data",
    `${dir}/test.txt`,
    "--quiet",
  ], cacheDir);
  assert.equal(moved.code, 0, moved.stderr);
  assert.match(moved.stdout, new RegExp(`AUC ${result.final!.auc.toFixed(4)}`));

  // Indexing it cannot reproduce: one line each.
  const dicts = `${dir}/moved/${sidecar.dictionaries.dir}`;
  await Deno.writeFile(`${dicts}/table-02.bin`, new Uint8Array(8), { append: true });
  const changed = await run("infer.ts", [
    `${dir}/moved/dqrm-int4.model`,
    "--data",
    `${dir}/test.txt`,
  ], cacheDir);
  assert.equal(changed.code, 1);
  assert.match(
    changed.stderr.trim(),
    /^infer: cannot reproduce the indexing of .*dqrm-int4\.model: Expected .*table-02\.bin to hold \d+ bytes \(\d+ rows\) but found \d+$/,
  );
  await Deno.remove(`${dir}/moved/dqrm-int4.model.indexing`);
  const none = await run(
    "infer.ts",
    [`${dir}/moved/dqrm-int4.model`, "--data", `${dir}/test.txt`],
    cacheDir,
  );
  assert.equal(none.code, 1);
  assert.equal(none.stderr.trim().split("\n").length, 1);
  assert.match(
    none.stderr,
    /^infer: cannot reproduce the indexing of .*dqrm-int4\.model: expected its sidecar .*dqrm-int4\.model\.indexing but found none/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("preprocess --test-data builds the test cache beside the training cache; bench --data takes both folders", async () => {
  const dir = await tempDir();
  await Deno.writeFile(
    `${dir}/train.txt`,
    text(Array.from({ length: 700 }, (_, i) => goodLine(i))),
  );
  await Deno.writeFile(
    `${dir}/test.txt`,
    text(Array.from({ length: 100 }, (_, i) => goodLine(700 + i, 70))),
  );
  const args = [
    "kaggle",
    `${dir}/train.txt`,
    "--out",
    `${dir}/c`,
    "--test-data",
    `${dir}/test.txt`,
  ];
  const p = await run("preprocess.ts", [...args, "--quiet"], `${dir}/cache`);
  assert.equal(p.code, 0, p.stderr);
  const built = p.stdout.match(/Built the test cache (\S+) from /)?.[1];
  assert.ok(built?.startsWith(`${dir}/c/tests/test.txt-`), p.stdout);
  assert.match(p.stdout, /test: 100 samples in 1 chunk files/);
  assert.match(p.stdout, /with --test-data the whole training data trains \(700 samples\)/);
  const again = await run("preprocess.ts", [...args, "--quiet"], `${dir}/cache`);
  assert.match(again.stdout, new RegExp(`Reused the test cache ${built}`));
  const b = await run("bench.ts", [
    "kaggle",
    "--data",
    `${dir}/c`,
    "--test-data",
    built!,
    ...fp32TwoIterations(`${dir}/r`),
  ], `${dir}/cache`);
  assert.equal(b.code, 0, b.stderr);
  const result = parseRunResult(JSON.parse(await Deno.readTextFile(`${dir}/r/fp32.json`)));
  assert.equal(result.config.testSamples, 100);
  assert.equal(result.config.data.kind === "criteo" && result.config.data.test?.cache, built);
  // A test cache of other dictionaries is refused in one line.
  await Deno.writeFile(
    `${dir}/other.txt`,
    text(Array.from({ length: 300 }, (_, i) => goodLine(i, 9))),
  );
  await run(
    "preprocess.ts",
    ["kaggle", `${dir}/other.txt`, "--out", `${dir}/o`, "--quiet"],
    `${dir}/cache`,
  );
  const wrong = await run("bench.ts", [
    "kaggle",
    "--data",
    `${dir}/o`,
    "--test-data",
    built!,
    "--run",
    "fp32",
    ...SMALL,
  ], `${dir}/cache`);
  assert.equal(wrong.code, 1);
  assert.match(
    wrong.stderr.trim(),
    /^bench: Expected .* to be a test cache read through the dictionaries of .*\/o \([0-9a-f]{16}\) but found [0-9a-f]{16}$/,
  );
  await Deno.remove(dir, { recursive: true });
});
