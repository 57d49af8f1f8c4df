import assert from "node:assert/strict";
import { parseRunResult } from "../record/schema.ts";

const BENCH = new URL("../cli/bench.ts", import.meta.url).pathname;

async function bench(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BENCH, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("bench kaggle runs end to end, writes a valid JSON result and HTML, and resumes", async () => {
  const dir = await Deno.makeTempDir();
  const args = [
    "kaggle",
    "--iterations",
    "60",
    "--scale",
    "0.0005",
    "--test-samples",
    "2000",
    "--eval-every",
    "20",
    "--threads",
    "2",
    "--run",
    "fp32",
    "--run",
    "dqrm-int4",
    "--run",
    "ptq-int4",
    "--out",
    dir,
  ];
  const first = await bench(args);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, new RegExp(`Results: ${dir}`));
  const result = parseRunResult(JSON.parse(await Deno.readTextFile(`${dir}/fp32.json`)));
  assert.equal(result.status, "ok");
  assert.equal(result.iterations, 60);
  assert.deepEqual(result.curve.map((c) => c.iteration), [20, 40, 60]);
  assert.equal(result.environment.deno, Deno.version.deno);
  assert.equal(result.config.seed, 1);
  assert.ok(result.final!.auc > 0.5 && result.final!.auc <= 1);
  assert.ok(result.ceiling!.auc > result.final!.auc - 0.05);
  assert.ok(result.timing.total.median > 0);
  const dqrm = parseRunResult(JSON.parse(await Deno.readTextFile(`${dir}/dqrm-int4.json`)));
  assert.equal(dqrm.status, "ok");
  assert.equal(dqrm.config.quantization?.embeddingBits, 4);
  assert.ok(dqrm.timing.phases.scale.median > 0, "the scale phase is timed");
  assert.ok(dqrm.memory.modelFileBytes < result.memory.modelFileBytes / 7);
  const ptq = parseRunResult(JSON.parse(await Deno.readTextFile(`${dir}/ptq-int4.json`)));
  assert.equal(ptq.curve.length, result.curve.length + 1, "PTQ evaluates once more, quantized");
  const html = await Deno.readTextFile(`${dir}/report.html`);
  assert.match(html, /<table/);
  assert.match(html, /fp32/);
  const again = await bench(args);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stderr.match(/already finished .* skipped/g)?.length, 3);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bench: a wrong flag or value prints one line naming it and exits 2", async () => {
  for (
    const [args, pattern] of [
      [["kaggle", "--batch-size", "abc"], /--batch-size expects an integer >= 1 but found 'abc'/],
      [["kaggle", "--scale", "2"], /--scale expects a number in \(0, 1\] but found '2'/],
      [["kaggle", "--engine", "tpu"], /--engine expects one of cpu, gpu but found 'tpu'/],
      [["kaggle", "--bogus"], /Unknown option '--bogus'/],
      [["criteo"], /unknown suite 'criteo'/],
      [[], /expected one suite name/],
      [["kaggle", "--experiment", "table1"], /--experiment expects a list of table2/],
    ] as const
  ) {
    const r = await bench([...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

Deno.test("bench --help documents every flag", async () => {
  const r = await bench(["--help"]);
  assert.equal(r.code, 0);
  for (
    const flag of [
      "--engine",
      "--iterations",
      "--epochs",
      "--batch-size",
      "--seed",
      "--scale",
      "--out",
      "--threads",
    ]
  ) {
    assert.ok(r.stdout.includes(flag), flag);
  }
});

Deno.test("a run over its time budget is recorded as could-not-finish and the suite goes on", async () => {
  const dir = await Deno.makeTempDir();
  const r = await bench([
    "kaggle",
    "--iterations",
    "2000",
    "--scale",
    "0.002",
    "--test-samples",
    "1000",
    "--budget",
    "0.5",
    "--run",
    "hawq-int4",
    "--run",
    "dqrm-int4",
    "--out",
    dir,
  ]);
  assert.equal(r.code, 0, r.stderr);
  for (const name of ["hawq-int4", "dqrm-int4"]) {
    const res = parseRunResult(JSON.parse(await Deno.readTextFile(`${dir}/${name}.json`)));
    assert.equal(res.status, "could-not-finish");
    assert.match(
      res.error!,
      /projected \d+ s of training at [\d.]+ ms\/it, over the budget of 0.5 s/,
    );
    assert.ok(res.iterations > 0 && res.iterations < 2000);
    // Trained until the budget was spent, then evaluated: the row is partial, not empty.
    assert.deepEqual(res.partial, { iterations: res.iterations, of: 2000 });
    assert.equal(res.curve.at(-1)?.iteration, res.iterations);
    assert.ok(res.final);
  }
  const html = await Deno.readTextFile(`${dir}/report.html`);
  assert.match(html, /<span class="badge partial"[^>]*>partial \(\d+ of 2,000 it\)<\/span>/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("infer scores a saved model file exactly as the run's final evaluation", async () => {
  const dir = await Deno.makeTempDir();
  const r = await bench([
    "kaggle",
    "--iterations",
    "40",
    "--scale",
    "0.0005",
    "--test-samples",
    "3000",
    "--run",
    "dqrm-int4",
    "--save-models",
    "--out",
    dir,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const result = parseRunResult(JSON.parse(await Deno.readTextFile(`${dir}/dqrm-int4.json`)));
  const file = await Deno.stat(`${dir}/dqrm-int4.model`);
  assert.equal(file.size, result.memory.modelFileBytes);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../cli/infer.ts", import.meta.url).pathname,
      `${dir}/dqrm-int4.model`,
      "--samples",
      "3000",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  assert.match(
    text,
    new RegExp(`AUC ${result.final!.auc.toFixed(4)}, log loss ${result.final!.logLoss.toFixed(4)}`),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a Table 6 run trains 4 simulated workers and records the bytes each sends", async () => {
  const dir = await Deno.makeTempDir();
  const r = await bench([
    "kaggle",
    "--experiment",
    "table6",
    "--run",
    "t6-dp4-sparse-int8",
    "--iterations",
    "20",
    "--scale",
    "0.0005",
    "--test-samples",
    "1000",
    "--out",
    dir,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const result = parseRunResult(
    JSON.parse(await Deno.readTextFile(`${dir}/t6-dp4-sparse-int8.json`)),
  );
  assert.equal(result.status, "ok");
  const c = result.communication!;
  assert.equal(c.workers, 4);
  assert.equal(c.bytesPerIteration.mlp, 475_985); // one INT8 byte per Kaggle MLP parameter
  assert.ok(c.bytesPerIteration.embedding! > 0 && c.bytesPerIteration.total < 500_000);
  await Deno.remove(dir, { recursive: true });
});
