/**
 * The PyTorch peer of `bench:gpu --pytorch PY`: runs cli/pytorch_dlrm.py on CUDA for each batch
 * size and method, eager and with the whole training step as one CUDA graph, and sets each beside
 * our wall ms/it (ours / theirs: below 1, ours is faster).
 *
 * @module
 */

/** Our wall ms/it for one (batch, method) beside PyTorch's eager and CUDA-graph steps. */
export interface PytorchComparison {
  batch: number;
  method: string;
  oursWallMsPerIt: number;
  eagerMsPerIt: number | null;
  graphMsPerIt: number | null;
  /** Ours / PyTorch eager: below 1, ours is faster. */
  oursOverEager: number | null;
  /** Ours / PyTorch CUDA graph: below 1, ours is faster. */
  oursOverGraph: number | null;
}

/** Timed PyTorch steps per run: two table-scale refreshes (P = 200) among them with INT4. */
export const PYTORCH_ITERATIONS = 400;

/**
 * Runs the PyTorch step of the same model on the GPU for each batch and method, eager and as one
 * CUDA graph; prints each beside our wall ms/it and returns the runs and the comparison.
 */
export async function runPytorch(
  python: string,
  suite: string,
  tableRows: readonly number[],
  batches: number[],
  ours: readonly { batch: number; method: string; wallMsPerIt: number }[],
): Promise<{ runs: unknown[]; comparison: PytorchComparison[] }> {
  const runs: unknown[] = [];
  const comparison: PytorchComparison[] = [];
  console.log(
    "\nPyTorch (cli/pytorch_dlrm.py --device cuda), same model and batches, mean ms/it; " +
      "ours/theirs < 1: ours is faster",
  );
  console.log("batch method  ours wall     eager cudagraph | ours/eager ours/graph");
  for (const batch of batches) {
    // PyTorch's forms exist for FP32 and DQRM INT4 only.
    const methods = ["fp32", "dqrm"].filter((m) => ours.some((r) => r.method === m));
    for (const method of methods) {
      const ms: Record<"eager" | "cudagraph", number | null> = { eager: null, cudagraph: null };
      for (const mode of ["eager", "cudagraph"] as const) {
        const r = await pytorchStep(python, suite, tableRows, batch, method === "dqrm", mode);
        if ("fatal" in r) {
          console.log(`  PyTorch not run: ${r.fatal}`);
          return { runs, comparison };
        }
        if ("error" in r) {
          console.log(`  batch ${batch} ${method} ${mode}: failed: ${r.error}`);
          continue;
        }
        runs.push(r.result);
        ms[mode] = r.result.msPerIter.mean;
      }
      const wall = ours.find((row) => row.batch === batch && row.method === method)!.wallMsPerIt;
      const c: PytorchComparison = {
        batch,
        method,
        oursWallMsPerIt: wall,
        eagerMsPerIt: ms.eager,
        graphMsPerIt: ms.cudagraph,
        oursOverEager: ms.eager === null ? null : wall / ms.eager,
        oursOverGraph: ms.cudagraph === null ? null : wall / ms.cudagraph,
      };
      comparison.push(c);
      const opt = (x: number | null, width: number) =>
        x === null ? "-".padStart(width) : fix(x, width);
      console.log(
        `${String(batch).padStart(5)} ${method.padEnd(6)} ${fix(wall, 10)} ${opt(ms.eager, 9)} ` +
          `${opt(ms.cudagraph, 9)} | ${opt(c.oursOverEager, 10)} ${opt(c.oursOverGraph, 10)}`,
      );
    }
  }
  return { runs, comparison };
}

/** What one run of cli/pytorch_dlrm.py printed as its JSON line (the fields read here). */
export interface PytorchResult {
  mode: string;
  torch: string;
  device: string;
  msPerIter: { median: number; mean: number; p10: number; p90: number };
}

/**
 * One run of cli/pytorch_dlrm.py on CUDA. `fatal` when no run can succeed (the python is not
 * found, torch is not importable or sees no CUDA: the script exits 2 with one line), `error` when
 * this run failed.
 */
export async function pytorchStep(
  python: string,
  suite: string,
  tableRows: readonly number[],
  batch: number,
  int4: boolean,
  mode: "eager" | "cudagraph",
): Promise<{ result: PytorchResult } | { error: string } | { fatal: string }> {
  const args = [
    new URL("./pytorch_dlrm.py", import.meta.url).pathname,
    "--device=cuda",
    suite,
    `--table-rows=${tableRows.join(",")}`,
    `--batch-size=${batch}`,
    `--iterations=${PYTORCH_ITERATIONS}`,
    "--lr=0.01",
    `--mode=${mode}`,
    ...(int4 ? ["--int4", "--period=200"] : []),
  ];
  let r: Deno.CommandOutput;
  try {
    r = await new Deno.Command(python, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (err) {
    return { fatal: `cannot run '${python}': ${err instanceof Error ? err.message : err}` };
  }
  const stderr = new TextDecoder().decode(r.stderr).trim().split("\n");
  if (r.code === 2) return { fatal: stderr.at(-1) ?? `'${python}' exited with code 2` };
  if (!r.success) return { error: stderr.slice(-3).join(" / ") };
  const last = new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!;
  return { result: JSON.parse(last) as PytorchResult };
}

function fix(x: number, width: number): string {
  return x.toFixed(3).padStart(width);
}
