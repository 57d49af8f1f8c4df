/**
 * What `bench:cpu` and `bench:infer` share: finding a python3 with torch, what that PyTorch is
 * built with (`torch.__config__`), the tables capped as `--max-rows` caps them, and the uniform
 * random one-hot batches that feed ours and the PyTorch scripts alike.
 *
 * @module
 */
import { allocateOneHotChunk, type BatchChunk } from "../engine/batch.ts";
import { Rng } from "../engine/rng.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { UsageError } from "./args.ts";

/**
 * Random one-hot samples as the PyTorch scripts draw them (dense `log1p` of an integer below
 * 1000, uniform row indices, a quarter of the labels 1): timing does not depend on the values.
 */
export function uniformOneHotChunk(spec: ModelSpec, batch: number, samples: number): BatchChunk {
  const chunk = allocateOneHotChunk(spec, batch, samples, true);
  const rng = new Rng(1, 99);
  for (let i = 0; i < chunk.dense.length; i++) chunk.dense[i] = Math.log1p(rng.int(1000));
  for (let i = 0; i < chunk.samples; i++) chunk.labels[i] = rng.next() < 0.25 ? 1 : 0;
  spec.tableRows.forEach((n, t) => {
    for (let s = 0; s < chunk.samples; s++) chunk.indices[t][s] = rng.int(n);
  });
  return chunk;
}

/** `spec` with every table capped at `maxRows` rows (0: the full tables), as the peers' --max-rows. */
export function cappedTables(spec: ModelSpec, maxRows: number): ModelSpec {
  return {
    ...spec,
    tableRows: spec.tableRows.map((n) => (maxRows > 0 ? Math.min(n, maxRows) : n)),
  };
}

/**
 * The python3 to run the PyTorch peer with: `given` (a usage error when it cannot import torch),
 * else the first of `python3`, `/usr/bin/python3` that imports torch, else undefined.
 */
export async function findTorchPython(given?: string): Promise<string | undefined> {
  for (const py of given ? [given] : ["python3", "/usr/bin/python3"]) {
    try {
      const out = await new Deno.Command(py, { args: ["-c", "import torch"], stderr: "null" })
        .output();
      if (out.success) return py;
    } catch {
      // not installed
    }
    if (given) throw new UsageError(`--python ${given} cannot import torch`);
  }
  return undefined;
}

/** What the PyTorch peer is built with: version, BLAS, CPU capability (`torch.__config__`). */
export interface PytorchBuild {
  version: string;
  blas: string;
  capability: string;
  /** One line for the printout. */
  summary: string;
}

const PYTORCH_BUILD_SCRIPT = `
import json, torch
try:
    capability = torch.backends.cpu.get_cpu_capability()
except Exception:
    capability = ""
print(json.dumps({"version": torch.__version__, "config": torch.__config__.show(),
                  "capability": capability}))
`;

/** Asks `python` what its torch is built with. */
export async function pytorchBuild(python: string): Promise<PytorchBuild> {
  const out = await new Deno.Command(python, {
    args: ["-c", PYTORCH_BUILD_SCRIPT],
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`torch.__config__ failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const { version, config, capability } = JSON.parse(new TextDecoder().decode(out.stdout));
  const blasInfo = config.match(/BLAS_INFO=(\w+)/)?.[1] ?? "unknown";
  const mkl = config.match(/Math Kernel Library Version [^\n]+/)?.[0];
  const onednn = config.match(/oneDNN[^\n]*?v[\d.]+/)?.[0];
  const blas = [blasInfo, mkl, onednn].filter(Boolean).join("; ");
  const cap = capability || config.match(/CPU capability usage: (\w+)/)?.[1] || "unknown";
  return {
    version,
    blas,
    capability: cap,
    summary: `torch ${version}, BLAS ${blas}, CPU capability ${cap}`,
  };
}

/**
 * Runs the peer script `script` (a file beside this module) with `python` and `args`: the JSON
 * object of its last stdout line. A failure throws `what` failed, with the script's stderr.
 */
export async function runPeerScript(
  python: string,
  script: string,
  args: string[],
  what: string,
): Promise<Record<string, unknown>> {
  const path = new URL(`./${script}`, import.meta.url).pathname;
  const out = await new Deno.Command(python, { args: [path, ...args], stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${what} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

/** Appends `v` to the samples of `k` in `m`. */
export function pushSample<K>(m: Map<K, number[]>, k: K, v: number): void {
  m.set(k, [...(m.get(k) ?? []), v]);
}
