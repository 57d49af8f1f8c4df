/**
 * Running MPI tests: whether mpirun and libmpi are here, and `mpirun` of a script as N ranks of
 * this Deno binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { loadMpi } from "../comm/mpi/ffi.ts";
import type { MpiTrainResult } from "../suites/mpi_train.ts";
import { tinySpec } from "./test_models.ts";

/** Why MPI tests cannot run here, or null when mpirun and libmpi are present. */
export async function mpiMissing(): Promise<string | null> {
  try {
    const r = await new Deno.Command("mpirun", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    if (!r.success) return "mpirun --version failed";
  } catch {
    return "mpirun is not on PATH (apt install openmpi-bin libopenmpi-dev)";
  }
  try {
    loadMpi();
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

/** Why the MPI tests are skipped here, or null. */
export const missing = await mpiMissing();
if (missing) console.log(`skipping the MPI tests: ${missing}`);

/** Runs `script args` as `ranks` MPI ranks (this Deno binary, loopback transports, root allowed). */
export async function mpirun(
  script: string,
  args: string[],
  ranks = 2,
  env: Record<string, string> = {},
): Promise<string> {
  const r = await new Deno.Command("mpirun", {
    args: [
      "--oversubscribe",
      "-np",
      `${ranks}`,
      "--mca",
      "btl",
      "self,vader,tcp",
      Deno.execPath(),
      "run",
      "-A",
      new URL(script, import.meta.url).pathname,
      ...args,
    ],
    env: {
      OMPI_ALLOW_RUN_AS_ROOT: "1",
      OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
      OMPI_MCA_btl_vader_single_copy_mechanism: "none",
      DENO_NO_UPDATE_CHECK: "1",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
    // A rank stuck in a collective fails the test instead of hanging it.
    signal: AbortSignal.timeout(120_000),
  }).output();
  const out = new TextDecoder().decode(r.stdout), err = new TextDecoder().decode(r.stderr);
  assert.ok(r.success, `Expected mpirun to succeed but it exited ${r.code}:\n${out}\n${err}`);
  return out;
}

/** `cli/mpi_train.ts` on 2 ranks training the tiny model (`--params`, plus `extra` flags). */
export async function mpiTrainTiny(o: {
  batch: number;
  iterations: number;
  seed: number;
  lr: number;
  preset: string;
  extra?: string[];
}): Promise<MpiTrainResult> {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/result.json`, specFile = `${dir}/spec.json`;
    await Deno.writeTextFile(specFile, JSON.stringify(tinySpec()));
    await mpirun("../cli/mpi_train.ts", [
      ...["--spec", specFile, "--batch-size", `${o.batch}`, "--iterations", `${o.iterations}`],
      ...["--seed", `${o.seed}`, "--lr", `${o.lr}`, "--compression", o.preset, "--params"],
      ...(o.extra ?? []),
      ...["--out", file],
    ]);
    return JSON.parse(await Deno.readTextFile(file));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
