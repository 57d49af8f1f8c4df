import assert from "node:assert/strict";
import { PYTORCH_ITERATIONS, pytorchStep, runPytorch } from "../cli/pytorch_peer.ts";

/** Writes an executable stand-in for python that runs `body` (sh) with the script's arguments. */
async function fakePython(body: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/python`;
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

/** Runs `fn` with console.log captured; returns what it printed. */
async function quiet<T>(fn: () => Promise<T>): Promise<{ value: T; printed: string }> {
  const log = console.log;
  const lines: string[] = [];
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    return { value: await fn(), printed: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

// Eager 2 ms/it (fp32) or 4 (int4), CUDA graph 0.5 or 1; the arguments are echoed to stderr.
const FAKE = `mode=eager; ms=2
for a in "$@"; do
  case "$a" in --mode=cudagraph) mode=cudagraph;; esac
done
for a in "$@"; do case "$a" in --int4) ms=$(( ms * 2 ));; esac; done
if [ $mode = cudagraph ]; then if [ $ms = 2 ]; then ms=0.5; else ms=1; fi; fi
echo "$@" >&2
echo "progress line"
echo "{\\"mode\\": \\"$mode\\", \\"torch\\": \\"x\\", \\"device\\": \\"fake\\", \\"msPerIter\\": {\\"median\\": $ms, \\"mean\\": $ms, \\"p10\\": $ms, \\"p90\\": $ms}}"`;

Deno.test("pytorchStep passes the run's arguments and reads the last stdout line", async () => {
  const python = await fakePython(FAKE);
  const r = await pytorchStep(python, "kaggle", [3, 4], 128, true, "cudagraph");
  assert.ok("result" in r);
  assert.equal(r.result.mode, "cudagraph");
  assert.equal(r.result.msPerIter.mean, 1);
  const args = await fakePython(`echo "$@" >&2; exit 1`);
  const failed = await pytorchStep(args, "kaggle", [3, 4], 128, true, "cudagraph");
  assert.ok("error" in failed);
  for (
    const arg of [
      "--device=cuda",
      "kaggle",
      "--table-rows=3,4",
      "--batch-size=128",
      `--iterations=${PYTORCH_ITERATIONS}`,
      "--mode=cudagraph",
      "--int4",
      "--period=200",
    ]
  ) assert.ok(failed.error.includes(arg), `${arg} in ${failed.error}`);
});

Deno.test("runPytorch sets eager and CUDA-graph ms/it beside ours, ours / theirs", async () => {
  const python = await fakePython(FAKE);
  const ours = [
    { batch: 128, method: "fp32", wallMsPerIt: 1 },
    { batch: 128, method: "dqrm", wallMsPerIt: 2 },
  ];
  const { value, printed } = await quiet(() => runPytorch(python, "kaggle", [3], [128], ours));
  assert.equal(value.runs.length, 4);
  assert.deepEqual(value.comparison, [
    {
      batch: 128,
      method: "fp32",
      oursWallMsPerIt: 1,
      eagerMsPerIt: 2,
      graphMsPerIt: 0.5,
      oursOverEager: 0.5,
      oursOverGraph: 2,
    },
    {
      batch: 128,
      method: "dqrm",
      oursWallMsPerIt: 2,
      eagerMsPerIt: 4,
      graphMsPerIt: 1,
      oursOverEager: 0.5,
      oursOverGraph: 2,
    },
  ]);
  assert.match(printed, /128 fp32\s+1\.000\s+2\.000\s+0\.500 \|\s+0\.500\s+2\.000/);
});

Deno.test("runPytorch stops at once, with one line, when torch or the python is missing", async () => {
  const ours = [{ batch: 128, method: "fp32", wallMsPerIt: 1 }];
  const python = await fakePython(
    `echo "pytorch_dlrm: torch is not importable from /x: No module named 'torch'" >&2; exit 2`,
  );
  const missing = await quiet(() => runPytorch(python, "kaggle", [3], [128, 2048], ours));
  assert.deepEqual(missing.value, { runs: [], comparison: [] });
  assert.match(missing.printed, /PyTorch not run: pytorch_dlrm: torch is not importable/);
  assert.equal(missing.printed.match(/not run|failed/g)?.length, 1);
  const absent = await quiet(() => runPytorch("/nonexistent/python", "kaggle", [3], [128], ours));
  assert.deepEqual(absent.value, { runs: [], comparison: [] });
  assert.match(absent.printed, /PyTorch not run: cannot run '\/nonexistent\/python'/);
});

Deno.test("runPytorch keeps a row with a dash where one mode failed", async () => {
  const python = await fakePython(
    `for a in "$@"; do case "$a" in --mode=cudagraph) echo "CUDA error: out of memory" >&2; exit 1;; esac; done\n${FAKE}`,
  );
  const ours = [
    { batch: 128, method: "fp32", wallMsPerIt: 1 },
    { batch: 128, method: "dqrm", wallMsPerIt: 2 },
  ];
  const { value, printed } = await quiet(() => runPytorch(python, "kaggle", [3], [128], ours));
  assert.equal(value.runs.length, 2);
  assert.equal(value.comparison[0].graphMsPerIt, null);
  assert.equal(value.comparison[0].oursOverGraph, null);
  assert.equal(value.comparison[0].oursOverEager, 0.5);
  assert.match(printed, /batch 128 fp32 cudagraph: failed: CUDA error: out of memory/);
});
