import assert from "node:assert/strict";
import { readManifest } from "../data/criteo/mod.ts";
import { goodLine, tempDir, text } from "./criteo_helpers.ts";

const CLI = new URL("../cli/preprocess.ts", import.meta.url).pathname;

async function preprocess(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
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
    /train\.txt: 700 lines, 699 samples, 0 sub-sampled, 1 bad, crc32 [0-9a-f]{8}/,
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
