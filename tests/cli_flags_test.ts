/**
 * Every command-line tool speaks the shared vocabulary of `cli/args.ts`: the same `--help`
 * layout, the shared flag names, and a one-line usage error (exit status 2) for a wrong flag.
 *
 * @module
 */
import assert from "node:assert/strict";

const CLI = new URL("../cli/", import.meta.url).pathname;

/** The CPU engine's kernel flags: every tool that runs CPU engines, data-parallel ones included. */
const CPU_KERNELS = ["--cpu-kernels", "--blas-lib"];

/** Each tool (bench_mpi needs an MPI library before it parses, so it is left to dp_mpi_test). */
const TOOLS: Record<string, string[]> = {
  "bench.ts": [
    "--batch-size",
    "--iterations",
    "--scale",
    "--threads",
    "--workers",
    "--seed",
    ...CPU_KERNELS,
  ],
  "bench_cpu.ts": ["--batch-size", "--iterations", "--threads", "--out", ...CPU_KERNELS],
  "bench_infer.ts": ["--batch-size", "--threads", "--out", ...CPU_KERNELS],
  "bench_blas.ts": ["--out", "--blas-lib"],
  "bench_dp.ts": [
    "--batch-size",
    "--iterations",
    "--scale",
    "--workers",
    "--compression",
    ...CPU_KERNELS,
  ],
  "bench_gpu.ts": ["--batch-size", "--scale", "--out"],
  "bench_gpu_kernels.ts": ["--batch-size", "--iterations", "--scale", "--out"],
  "bench_gpu_compress.ts": ["--batch-size", "--iterations", "--scale", "--compression", "--out"],
  "bench_gpu_dp.ts": ["--batch-size", "--iterations", "--scale", "--compression", "--out"],
  "bench_gpu_update.ts": ["--batch-size", "--scale", "--out"],
  "bench_gpu_interaction.ts": ["--batch-size", "--out"],
  "probe_gpu_chunks.ts": ["--batch-size", "--scale", "--out"],
  "bench_preprocess.ts": ["--workers", "--out"],
  "bench_qat.ts": ["--iterations", "--scale", "--threads", ...CPU_KERNELS],
  "golden.ts": ["--engine", "--threads", ...CPU_KERNELS],
  "infer.ts": ["--batch-size", "--seed", "--threads", ...CPU_KERNELS],
  "mpi_train.ts": [
    "--batch-size",
    "--iterations",
    "--scale",
    "--compression",
    "--seed",
    "--lr",
    ...CPU_KERNELS,
  ],
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

Deno.test("flag errors are one line: negative numbers are values, near misses are suggested", async () => {
  const { defineCli, FLAGS, parseCli, UsageError } = await import("../cli/args.ts");
  const cli = defineCli({
    usage: "t",
    description: "t",
    options: {
      iterations: FLAGS.iterations,
      lr: FLAGS.lr,
      quiet: FLAGS.quiet,
      run: { type: "string", arg: "NAME", multiple: true, help: "runs" },
    },
  });
  const parse = (...args: string[]) => parseCli(cli, args, false)!;
  assert.equal(parse("--iterations", "-5").values.iterations, "-5");
  assert.equal(parse("--lr", "-1e-3").values.lr, "-1e-3");
  assert.equal(parse("--lr=-.5").values.lr, "-.5");
  assert.deepEqual(parse("--run", "a", "--run", "b").values.run, ["a", "b"]);
  assert.deepEqual(parse("x", "--", "--quiet").positionals, ["x", "--quiet"]);
  assert.equal(parse("-h"), undefined);
  for (
    const [args, message] of [
      [["--iteration", "5"], "Unknown option '--iteration'; did you mean --iterations?"],
      [["--itreations=5"], "Unknown option '--itreations'; did you mean --iterations?"],
      [["--qiuet"], "Unknown option '--qiuet'; did you mean --quiet?"],
      [["--iter", "5"], "Unknown option '--iter'; did you mean --iterations?"],
      [["--bogus"], "Unknown option '--bogus'"],
      [["-x"], "Unknown option '-x'"],
      [["--iterations"], "--iterations expects a value N but found none"],
      [["--iterations", "--quiet"], "--iterations expects a value N but found the flag '--quiet'"],
      [["--quiet=yes"], "--quiet takes no value but found 'yes'"],
      [["--lr", "1", "--lr", "2"], "--lr given twice ('1' and '2'); give it once"],
    ] as const
  ) {
    assert.throws(
      () => parse(...args),
      (e: Error) => e instanceof UsageError && e.message === message,
      `${args.join(" ")}`,
    );
  }
});

Deno.test("negative numbers and near-miss flags give one line naming the flag (bench)", async () => {
  for (
    const [args, pattern] of [
      [["--iterations", "-5"], /^bench: --iterations expects an integer >= 1 but found '-5'/],
      [["--lr", "-1"], /^bench: --lr expects a number > 0 but found '-1'/],
      [["--iteration", "5"], /^bench: Unknown option '--iteration'; did you mean --iterations\?/],
    ] as const
  ) {
    const r = await run("bench.ts", ["kaggle", ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /ambiguous|To specify a positional/);
  }
});
