/**
 * `mpirun -np 2 deno run -A cli/bench_mpi.ts` (or `deno task bench:mpi` under mpirun): the
 * bandwidth of MPI point-to-point ping-pong against Open MPI's `MPI_Allreduce` and our
 * {@linkcode MpiCommunicator}'s `allReduceSum` / `allReduceSumWiden`, over message sizes
 * spanning the compressed gradients, in the same run; then the time of one real compressed
 * gradient exchange per iteration (Kaggle architecture, data-parallel training across the ranks).
 *
 * @module
 */
import { COMPRESSION_PRESETS } from "../comm/compression.ts";
import {
  type BandwidthRow,
  measureBandwidth,
  measureExchangeCollectives,
} from "../comm/mpi/bandwidth.ts";
import { gatherJson, MpiCommunicator } from "../comm/mpi/communicator.ts";
import { COMPRESSION_PRESET_NAMES as PRESETS } from "../record/presets.ts";
import { trainOnMpiRanks } from "../suites/mpi_train.ts";
import { writeFileAtomic } from "../record/files.ts";
import {
  choiceFlag,
  CPU_KERNEL_FLAGS,
  cpuKernelsFlag,
  defineCli,
  FLAGS,
  intFlag,
  numberFlag,
  parseCli,
  UsageError,
} from "./args.ts";

const CLI = defineCli({
  usage: "mpirun [--allow-run-as-root] -np 2 npx -y deno@2.9.6 run -A cli/bench_mpi.ts [options]",
  description:
    `Bandwidth of MPI ping-pong (Send/Recv, one way), Open MPI's MPI_Allreduce (float) and our MPI
communicator's allReduceSum (float: gather + in-rank-order sum) and allReduceSumWiden (int8 →
int32), per message size, in alternating repetitions; then one real compressed gradient
exchange per iteration of data-parallel training across the ranks (every rank's CPU engine on the
matrix kernels --cpu-kernels picks; the figures say which ran). Rank 0 prints the figures.`,
  options: {
    sizes: {
      type: "string",
      arg: "LIST",
      help: "message sizes in KiB, comma-separated",
      default: "64,256,1024,4096,8192",
    },
    "batch-size": { ...FLAGS["batch-size"], help: "global batch of the exchange", default: "128" },
    iterations: { ...FLAGS.iterations, help: "training iterations timed", default: "20" },
    compression: {
      ...FLAGS.compression,
      help: `preset of the exchange: ${PRESETS.join(", ")}`,
      default: "sparse-int8",
    },
    scale: {
      ...FLAGS.scale,
      help: "Kaggle table scale of the exchange, in (0, 1]",
      default: "0.01",
    },
    ...CPU_KERNEL_FLAGS,
    out: { ...FLAGS.out, help: "also write the figures as JSON (atomically)" },
  },
  positionals: false,
});

const mib = (bytesPerS: number) => (bytesPerS / (1 << 20)).toFixed(1).padStart(9);

function printRows(rows: BandwidthRow[]): void {
  console.log(
    "size KiB | ping-pong MiB/s | MPI_Allreduce MiB/s (ratio) | allReduceSum MiB/s (ratio) | " +
      "allReduceSumWiden MiB/s (ratio)",
  );
  for (const r of rows) {
    const b = r.bytesPerS, q = r.ratioToPingPong;
    console.log(
      `${(r.bytes / 1024).toFixed(0).padStart(8)} | ${mib(b.pingPong)} | ` +
        `${mib(b.mpiAllreduceFloat)} (${q.mpiAllreduceFloat.toFixed(2)}) | ` +
        `${mib(b.allReduceSum)} (${q.allReduceSum.toFixed(2)}) | ` +
        `${mib(b.allReduceSumWiden)} (${q.allReduceSumWiden.toFixed(2)})`,
    );
  }
}

async function main(comm: MpiCommunicator, args: string[]): Promise<number> {
  const parsed = parseCli(CLI, args, comm.rank === 0);
  if (!parsed) return 0;
  const { values } = parsed;
  const sizes = (values.sizes ?? "64,256,1024,4096,8192").split(",").map((s) =>
    (intFlag("sizes", s.trim()) ?? 0) * 1024
  );
  const batch = intFlag("batch-size", values["batch-size"]) ?? 128;
  const iterations = intFlag("iterations", values.iterations) ?? 20;
  const preset = choiceFlag("compression", values.compression, PRESETS) ?? "sparse-int8";
  const tableScale = numberFlag("scale", values.scale, 0, 1) ?? 0.01;
  const cpuKernels = cpuKernelsFlag(values, "auto");

  const rows = sizes.map((bytes) => measureBandwidth(comm, bytes));
  if (comm.rank === 0) {
    console.log(`MPI bandwidth, ${comm.size} ranks (rank 0's clock; medians)`);
    printRows(rows);
  }
  const config = {
    arch: "kaggle" as const,
    tableScale,
    batch,
    iterations,
    preset,
    seed: 1,
    learningRate: 0.01,
    cpuKernels,
  };
  const trained = await trainOnMpiRanks(comm, config);
  // Rank 0 knows the message size; every rank measures the transports at it.
  const exchangeBytes = gatherJson(comm, trained?.bytesPerIteration ?? null)[0]!;
  const atExchange = measureBandwidth(comm, Math.ceil(exchangeBytes.total / 4) * 4);
  const collectives = measureExchangeCollectives(
    comm,
    exchangeBytes,
    COMPRESSION_PRESETS[preset].mlpBits,
  );
  if (comm.rank !== 0) return 0;
  const t = trained!;
  const ran = t.environment.engine.details;
  const exchange = {
    config,
    bytesPerIteration: t.bytesPerIteration,
    medianExchangeMs: t.medianPhaseMs.communication,
    achievedBytesPerS: t.bytesPerIteration.total / (t.medianPhaseMs.communication / 1000),
    medianPhaseMs: t.medianPhaseMs,
    samplesPerS: t.samplesPerS,
    replicasAgree: t.replicasAgree,
    cpuKernels: ran.cpuKernels,
    collectivesOnly: collectives,
    transportsAtExchangeSize: atExchange,
  };
  console.log(
    `\nCompressed gradient exchange (Kaggle, table scale ${tableScale}, global batch ${batch}, ` +
      `${preset}, ${comm.size} ranks, ${ran.kernels}): ${
        t.bytesPerIteration.total.toFixed(0)
      } bytes per rank ` +
      `per iteration, median ${exchange.medianExchangeMs.toFixed(3)} ms per iteration ` +
      `(collect, scales, quantize, collectives, apply) = ${
        mib(exchange.achievedBytesPerS).trim()
      } MiB/s; ${t.samplesPerS} samples/s; replicas agree: ${t.replicasAgree}`,
  );
  const c = collectives.medianMs;
  console.log(
    `Its collectives alone (same sizes, no compute): median ${c.total} ms per iteration ` +
      `(scales ${c.scales}, MLP ${c.mlp}, embedding gather ${c.embedding}) = ` +
      `${(100 * c.total / exchange.medianExchangeMs).toFixed(1)}% of the exchange`,
  );
  console.log("Transports at the exchange's message size:");
  printRows([atExchange]);
  if (values.out) {
    const env = {
      host: Deno.hostname(),
      cpus: navigator.hardwareConcurrency,
      mpiLibrary: comm.mpi.path,
      engine: t.environment.engine,
    };
    await writeFileAtomic(
      values.out,
      JSON.stringify(
        { tool: "bench_mpi", ranks: comm.size, environment: env, rows, exchange },
        null,
        1,
      ) +
        "\n",
    );
  }
  return t.replicasAgree ? 0 : 1;
}

let comm: MpiCommunicator | undefined;
try {
  comm = MpiCommunicator.create();
  const code = await main(comm, Deno.args);
  comm.finalize();
  Deno.exit(code);
} catch (e) {
  const usage = e instanceof UsageError ||
    (e instanceof TypeError && /option|argument/i.test(String(e)));
  if ((comm?.rank ?? 0) === 0) {
    console.error(`bench_mpi: ${(e as Error).message}${usage ? " (see --help)" : ""}`);
  }
  if (Deno.env.get("DQRM_DEBUG")) console.error(e);
  // Other ranks may be blocked in a collective: end the whole job.
  if (comm && comm.size > 1 && !usage) comm.abort();
  Deno.exit(usage ? 2 : 1);
}
