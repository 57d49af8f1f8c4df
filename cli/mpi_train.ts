/**
 * `mpirun -np N deno run -A cli/mpi_train.ts [options]` (or `deno task dp:mpi`): data-parallel
 * training across MPI ranks, one process per rank, each a single-threaded CPU engine replica,
 * on synthetic data. Rank 0 prints the result and writes it as JSON (atomically) with `--out`.
 *
 * @module
 */
import { MpiCommunicator } from "../comm/mpi/communicator.ts";
import { validateSpec } from "../engine/spec.ts";
import { COMPRESSION_PRESET_NAMES as PRESETS } from "../record/presets.ts";
import { writeFileAtomic } from "../record/files.ts";
import { MPI_ARCHS, type MpiTrainConfig, trainOnMpiRanks } from "../suites/mpi_train.ts";
import {
  choiceFlag,
  CPU_KERNEL_FLAGS,
  cpuKernelsFlag,
  defineCli,
  FLAGS,
  helpText,
  intFlag,
  numberFlag,
  parseCli,
  suiteArg,
  UsageError,
} from "./args.ts";

const CLI = defineCli({
  usage: "mpirun [--allow-run-as-root] -np N npx -y deno@2.9.6 run -A cli/mpi_train.ts [SUITE] " +
    "[options]",
  description:
    `Data-parallel training across MPI ranks (one process per rank, a single-threaded CPU engine
replica each, or a GPU engine with --engine gpu) on synthetic data; every global batch is split
across the ranks as the in-process data-parallel trainer splits it. Every rank's CPU engine runs
the matrix kernels --cpu-kernels picks (the same on every rank, or the run stops before training).
Rank 0 prints the result as JSON; its environment.engine.details.cpuKernels says which ran. SUITE picks the architecture: ${
      MPI_ARCHS.join(", ")
    } (default kaggle), or --spec FILE
trains the model spec in FILE (JSON).
The MPI library is libmpi.so.40 (Open MPI 4.x) unless DQRM_MPI_LIB names another.`,
  options: {
    spec: {
      type: "string",
      arg: "FILE",
      help: "train the model spec in FILE (JSON) instead of SUITE's",
    },
    scale: { ...FLAGS.scale, default: "0.01" },
    "batch-size": {
      ...FLAGS["batch-size"],
      help: "global batch, a multiple of the ranks",
      default: "128",
    },
    iterations: { ...FLAGS.iterations, default: "20" },
    compression: { ...FLAGS.compression, help: PRESETS.join(", "), default: "sparse" },
    seed: { ...FLAGS.seed, default: "1" },
    lr: { ...FLAGS.lr, default: "0.1" },
    engine: {
      ...FLAGS.engine,
      help: "each rank's engine: cpu, or gpu (gradients compressed on the GPU; sparse presets)",
    },
    "gpu-index": {
      ...FLAGS["gpu-index"],
      help: "with --engine gpu: every rank's GPU (default: each rank its Open MPI local rank)",
    },
    ...CPU_KERNEL_FLAGS,
    params: { type: "boolean", help: "include rank 0's parameters in the result" },
    out: { ...FLAGS.out, help: "write the result JSON to FILE (atomically)" },
  },
});

function parse(): { config: MpiTrainConfig; out?: string; params: boolean } | undefined {
  const parsed = parseCli(CLI, Deno.args, false);
  if (!parsed) return undefined;
  const { values, positionals } = parsed;
  const engine = choiceFlag("engine", values.engine, ["cpu", "gpu"] as const) ?? "cpu";
  if (engine === "gpu" && (values["cpu-kernels"] ?? values["blas-lib"]) !== undefined) {
    throw new UsageError("--cpu-kernels and --blas-lib expect --engine cpu but found --engine gpu");
  }
  return {
    config: {
      arch: suiteArg(positionals, MPI_ARCHS, "kaggle"),
      tableScale: numberFlag("scale", values.scale, 0, 1) ?? 0.01,
      batch: intFlag("batch-size", values["batch-size"]) ?? 128,
      iterations: intFlag("iterations", values.iterations) ?? 20,
      preset: choiceFlag("compression", values.compression, PRESETS) ?? "sparse",
      seed: intFlag("seed", values.seed, 0) ?? 1,
      learningRate: numberFlag("lr", values.lr, 0) ?? 0.1,
      engine,
      gpuIndex: intFlag("gpu-index", values["gpu-index"], 0),
      ...(engine === "cpu" ? { cpuKernels: cpuKernelsFlag(values, "auto") } : {}),
      ...(values.spec
        ? { spec: validateSpec(JSON.parse(Deno.readTextFileSync(values.spec))) }
        : {}),
    },
    out: values.out,
    params: values.params ?? false,
  };
}

/** Typed arrays as plain arrays in JSON. */
function replacer(_key: string, value: unknown): unknown {
  return ArrayBuffer.isView(value) ? Array.from(value as Float32Array) : value;
}

async function main(): Promise<number> {
  const args = parse();
  if (!args) {
    if ((Deno.env.get("OMPI_COMM_WORLD_RANK") ?? "0") === "0") console.log(helpText(CLI));
    return 0;
  }
  const comm = MpiCommunicator.create();
  try {
    const result = await trainOnMpiRanks(comm, args.config, args.params);
    if (result) {
      const text = JSON.stringify(result, replacer, 1) + "\n";
      if (args.out) await writeFileAtomic(args.out, text);
      const { params: _, ...summary } = result;
      console.log(JSON.stringify(summary, replacer));
      if (!result.replicasAgree) {
        throw new Error(
          `Expected identical replicas but found checksums ${result.replicaChecksums.join(", ")}`,
        );
      }
    }
  } catch (e) {
    console.error(`mpi_train (rank ${comm.rank}): ${(e as Error).message}`);
    if (Deno.env.get("DQRM_DEBUG")) console.error(e);
    // The other ranks may be blocked in a collective: end the whole job.
    if (comm.size > 1) comm.abort();
    return 1;
  }
  comm.finalize();
  return 0;
}

try {
  Deno.exit(await main());
} catch (e) {
  // Usage errors and a missing MPI library happen on every rank alike: rank 0 reports them.
  if ((Deno.env.get("OMPI_COMM_WORLD_RANK") ?? "0") === "0") {
    const usage = e instanceof UsageError ||
      (e instanceof TypeError && /option|argument/i.test(String(e)));
    console.error(`mpi_train: ${(e as Error).message}${usage ? " (see --help)" : ""}`);
  }
  Deno.exit(e instanceof UsageError ? 2 : 1);
}
