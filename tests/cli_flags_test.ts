/**
 * Every command-line tool speaks the shared vocabulary of `cli/args.ts`: the same `--help`
 * layout, the shared flag names, and a one-line usage error (exit status 2) for a wrong flag.
 *
 * @module
 */
import assert from "node:assert/strict";

const CLI = new URL("../cli/", import.meta.url).pathname;

/** Each tool (bench_mpi needs an MPI library before it parses, so it is left to dp_mpi_test). */
const TOOLS: Record<string, string[]> = {
  "bench.ts": ["--batch-size", "--iterations", "--scale", "--threads", "--workers", "--seed"],
  "bench_cpu.ts": ["--batch-size", "--iterations", "--threads", "--out"],
  "bench_dp.ts": ["--batch-size", "--iterations", "--scale", "--workers", "--compression"],
  "bench_gpu.ts": ["--batch-size", "--scale", "--out"],
  "bench_gpu_kernels.ts": ["--batch-size", "--iterations", "--scale", "--out"],
  "bench_preprocess.ts": ["--workers", "--out"],
  "bench_qat.ts": ["--iterations", "--scale", "--threads"],
  "golden.ts": ["--engine", "--threads"],
  "infer.ts": ["--batch-size", "--seed", "--threads"],
  "mpi_train.ts": ["--batch-size", "--iterations", "--scale", "--compression", "--seed", "--lr"],
  "preprocess.ts": ["--out", "--seed", "--workers", "--quiet"],
  "regress.ts": ["--baseline", "--quiet"],
  "report.ts": ["--out"],
};
/** Names no tool uses any more. */
const RETIRED = [
  "--batch ",
  "--iters",
  "--arch",
  "--table-scale",
  "--suite",
  "--presets",
  "--batches",
];

async function run(tool: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${CLI}${tool}`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { OMPI_COMM_WORLD_RANK: "0" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("every CLI prints the same --help layout with the shared flag names", async () => {
  await Promise.all(
    Object.entries(TOOLS).map(async ([tool, flags]) => {
      const r = await run(tool, ["--help"]);
      assert.equal(r.code, 0, `${tool}: ${r.stderr}`);
      const lines = r.stdout.split("\n");
      assert.match(lines[0], /^Usage: \S/, tool);
      assert.equal(lines[1], "", tool);
      assert.ok(lines.includes("Options:"), `${tool} has an options table`);
      assert.ok(lines.some((l) => /^ {2}-h, --help {2,}this help$/.test(l)), `${tool}: -h, --help`);
      for (const flag of flags) {
        assert.ok(
          lines.some((l) => l.startsWith(`  ${flag} `) || l === `  ${flag}`),
          `${tool} --help lists ${flag}`,
        );
      }
      for (const old of RETIRED) {
        assert.ok(!r.stdout.includes(`  ${old}`), `${tool} --help still lists ${old}`);
      }
    }),
  );
});

Deno.test("every CLI rejects a wrong flag with one line and exit status 2", async () => {
  await Promise.all(
    Object.keys(TOOLS).map(async (tool) => {
      const r = await run(tool, ["--bogus"]);
      assert.equal(r.code, 2, `${tool}: ${r.stderr}`);
      assert.match(r.stderr, /Unknown option '--bogus'/, tool);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${tool}: ${r.stderr}`);
    }),
  );
});

Deno.test("CLIs that take a suite take it as the first argument, checked alike", async () => {
  await Promise.all(
    ["bench.ts", "bench_cpu.ts", "bench_gpu.ts", "mpi_train.ts"].map(async (tool) => {
      const r = await run(tool, ["criteo"]);
      assert.equal(r.code, 2, `${tool}: ${r.stderr}`);
      assert.match(r.stderr, /unknown suite 'criteo'; expected one of kaggle, /, tool);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${tool}: ${r.stderr}`);
    }),
  );
});
