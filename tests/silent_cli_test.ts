/**
 * Nothing silent: a bad input file, a run that timed nothing, a resume with another config, a
 * result the report cannot use and an empty results folder each say so in one line naming the
 * file or flag, and exit non-zero where nothing useful was done.
 *
 * @module
 */
import assert from "node:assert/strict";
import { softwareAdapterName } from "../engine/gpu/mod.ts";
import { findTestAdapter } from "./gpu_setup.ts";

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

const TINY = ["kaggle", "--scale", "0.0005", "--test-samples", "500", "--threads", "1", "--quiet"];

Deno.test("bench: resuming into --out with another config refuses with one line naming the fields; --fresh starts over", async () => {
  const dir = await Deno.makeTempDir();
  const first = await run("bench.ts", [
    ...TINY,
    "--iterations",
    "60",
    "--run",
    "fp32",
    "--out",
    dir,
  ]);
  assert.equal(first.code, 0, first.stderr);
  const before = await Deno.readTextFile(`${dir}/fp32.json`);
  // The same run with another --iterations, and another run with another --lr.
  for (
    const [args, field] of [
      [["--iterations", "70", "--run", "fp32"], "trainSamples: 7680 → 8960"],
      [["--iterations", "60", "--lr", "0.05", "--run", "dqrm-int4"], "learningRate: 0.1 → 0.05"],
    ] as const
  ) {
    const r = await run("bench.ts", [...TINY, ...args, "--out", dir]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /already holds 1 result\(s\) trained with another config: fp32 \(/);
    assert.ok(r.stderr.includes(field), r.stderr);
    assert.match(r.stderr, /--out DIR, or pass --fresh/);
    assert.equal(await Deno.readTextFile(`${dir}/fp32.json`), before, "nothing overwritten");
  }
  const fresh = await run("bench.ts", [
    ...TINY,
    ...["--iterations", "51", "--run", "ptq-int4", "--out", dir, "--fresh"],
  ]);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.match(fresh.stderr, /--fresh: deleted 1 result\(s\)/);
  const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".json"));
  assert.deepEqual(left.sort(), ["ptq-int4.json", "suite.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bench: a run of no more iterations than its warm-up says 'no timed iterations', never 0 ms/it", async () => {
  const dir = await Deno.makeTempDir();
  const r = await run("bench.ts", [...TINY, "--iterations", "10", "--run", "fp32", "--out", dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /bench: warning: --iterations 10 is not above the warm-up of 50 iterations \(every run\), .* use --iterations 51 or more/,
  );
  assert.match(
    r.stderr,
    /\[run 1 of 1 fp32\] ok — no timed iterations \(10 trained, 10 of them warm-up\)/,
  );
  assert.doesNotMatch(r.stderr, /0\.000 ms\/it/);
  const result = JSON.parse(await Deno.readTextFile(`${dir}/fp32.json`));
  assert.equal(result.timing.total.n, 0, "the result marks it: no samples");
  // The report shows no timing for it rather than 0.
  const html = await Deno.readTextFile(`${dir}/report.html`);
  const row = html.slice(
    html.indexOf('<table id="runs-table"'),
    html.indexOf("</table>", html.indexOf('<table id="runs-table"')),
  );
  assert.doesNotMatch(row, /<td>0\.0+<small>|<td>0 ms/);
  assert.match(html, /no timed iterations/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report: dropped results are listed by file and reason; an empty folder is an error", async () => {
  const { writeFakeResults, fakeRun } = await import("./report_fixtures.ts");
  const dir = await Deno.makeTempDir();
  const empty = await run("report.ts", [dir]);
  assert.equal(empty.code, 1, empty.stderr);
  assert.equal(empty.stderr.trim().split("\n").length, 1, empty.stderr);
  assert.match(empty.stderr, /^report: no run results in '.*'; expected the RUN\.json files/);
  await writeFakeResults(dir, [fakeRun({ name: "fp32" })]);
  const noConfig = fakeRun({ name: "dqrm-int4", method: "dqrm" });
  delete noConfig.config;
  await Deno.writeTextFile(`${dir}/dqrm-int4.json`, JSON.stringify(noConfig));
  await Deno.writeTextFile(`${dir}/cut.json`, '{"schemaVersion": 1, "conf');
  const r = await run("report.ts", [dir, "--no-csv"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /report: skipped dqrm-int4\.json: no config: /);
  assert.match(r.stderr, /report: skipped cut\.json: not JSON: /);
  const html = await Deno.readTextFile(`${dir}/report.html`);
  assert.match(html, /dqrm-int4\.json: no config/);
  // Only results are named: the suite file and a baseline are passed over.
  assert.doesNotMatch(r.stderr, /suite\.json/);
  // A folder of nothing but unusable results is an error too, after naming them.
  await Deno.remove(`${dir}/fp32.json`);
  const none = await run("report.ts", [dir]);
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr, /no run results in .* \(2 JSON file\(s\) skipped, listed above\)/);
  await Deno.remove(dir, { recursive: true });
});

const adapter = await findTestAdapter();

Deno.test({
  name: "bench --engine gpu on a software adapter warns, naming it, and records it in the result",
  ignore: adapter.adapter === null || softwareAdapterName(adapter.adapter.info) === undefined,
  async fn() {
    const dir = await Deno.makeTempDir();
    const r = await run("bench.ts", [
      ...TINY,
      ...["--iterations", "4", "--run", "fp32", "--engine", "gpu", "--out", dir],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const name = softwareAdapterName(adapter.adapter!.info)!;
    const warning = r.stderr.split("\n").find((l) => l.includes("software"));
    assert.ok(warning, r.stderr);
    assert.ok(warning.startsWith(`bench: warning: the WebGPU adapter is software (${name})`));
    const result = JSON.parse(await Deno.readTextFile(`${dir}/fp32.json`));
    assert.equal(result.environment.engine.details.softwareAdapter, true);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("software adapters are told from GPUs by name or the fallback flag", () => {
  assert.equal(
    softwareAdapterName({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" }),
    "llvmpipe (LLVM 15.0.6, 256 bits)",
  );
  assert.equal(
    softwareAdapterName({ description: "SwiftShader Device (Subzero)" }),
    "SwiftShader Device (Subzero)",
  );
  assert.equal(softwareAdapterName({ description: "x", isFallbackAdapter: true }), "x");
  assert.equal(softwareAdapterName({ description: "NVIDIA H200", vendor: "nvidia" }), undefined);
  assert.equal(
    softwareAdapterName({ description: "AMD Radeon RX 7900 XTX (RADV NAVI31)" }),
    undefined,
  );
});
