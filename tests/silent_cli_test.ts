/**
 * Nothing silent: a bad input file, a run that timed nothing, a resume with another config, a
 * result the report cannot use and an empty results folder each say so in one line naming the
 * file or flag, and exit non-zero where nothing useful was done.
 *
 * @module
 */
import assert from "node:assert/strict";

const CLI = new URL("../cli/", import.meta.url).pathname;

async function run(tool: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${CLI}${tool}`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("golden on a bad file names the file and what is wrong, in one line", async () => {
  const dir = await Deno.makeTempDir();
  const cases: [string, string, RegExp][] = [
    ["truncated.json", '{"arch": ', /Expected a golden fixture in JSON but found: /],
    ["list.json", "[]", /Expected a golden fixture but found: \(top\): .*expected object/],
    [
      "no-arch.json",
      '{"quantization": {}, "learningRate": 0.1, "initialParams": {}, "steps": []}',
      /Expected a golden fixture but found: arch: /,
    ],
  ];
  for (const [name, text, pattern] of cases) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
    const r = await run("golden.ts", [`${dir}/${name}`]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.startsWith(`golden: fixture ${dir}/${name}: `), r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("infer on a bad model file names the file and the cause, in one line", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/x.model`, "DQRM not a model file at all");
  const r = await run("infer.ts", [`${dir}/x.model`]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^infer: model file .*x\.model: Expected model file version 1 or 2/);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  await Deno.remove(dir, { recursive: true });
});
