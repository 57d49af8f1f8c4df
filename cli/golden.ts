/**
 * `deno task golden FILE [--engine cpu] [--threads N]`: replays a golden fixture step by step on
 * an engine, prints the largest error of every tensor, and exits 1 when any value is off by more
 * than `1e-5 + 1e-3 |expected|`.
 *
 * @module
 */
import { createCpuEngine } from "../engine/cpu/mod.ts";
import {
  createGpuEngine,
  findAdapter,
  softwareAdapterName,
  softwareAdapterWarning,
} from "../engine/gpu/mod.ts";
import { GOLDEN_TOLERANCE, parseFixture, runGolden } from "../engine/golden.ts";
import {
  choiceFlag,
  CPU_KERNEL_FLAGS,
  cpuKernelsFlag,
  defineCli,
  FLAGS,
  intFlag,
  parseCli,
  runMain,
  UsageError,
} from "./args.ts";

const CLI = defineCli({
  usage: "deno task golden FILE... [options]",
  description:
    `Replays each golden fixture (see tests/fixtures/FORMAT.md) on an engine and prints the largest
error per tensor and step. Exits 1 when any value is off by more than
${GOLDEN_TOLERANCE.atol} + ${GOLDEN_TOLERANCE.rtol} * |expected|.`,
  options: {
    engine: { ...FLAGS.engine, help: "engine to check" },
    threads: { ...FLAGS.threads, default: "every core; ignored by gpu" },
    ...CPU_KERNEL_FLAGS,
    verbose: {
      type: "boolean",
      help: "also print the parameters after each step (failures always print)",
    },
  },
});

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length === 0) throw new UsageError("expected at least one fixture FILE");
  const engine = choiceFlag("engine", values.engine, ["cpu", "gpu"] as const) ?? "cpu";
  if (engine === "gpu") {
    const { adapter, reason } = await findAdapter();
    if (!adapter) {
      console.error(`golden: no WebGPU adapter (${reason}); use --engine cpu`);
      return 1;
    }
    const software = softwareAdapterName(adapter.info);
    if (software) console.error(`golden: ${softwareAdapterWarning(software)}`);
  }
  const threads = intFlag("threads", values.threads);
  const kernels = cpuKernelsFlag(values, "auto");
  let failures = 0;
  for (const file of positionals) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      throw new Error(`cannot read fixture ${file}: ${(e as Error).message}`);
    }
    let fixture, rows;
    let ran: string = engine;
    try {
      fixture = parseFixture(text);
      rows = await runGolden(
        fixture,
        (spec, params, maxBatch, quantization) =>
          engine === "gpu"
            ? createGpuEngine({ spec, params, maxBatch, quantization })
            : createCpuEngine({ spec, params, maxBatch, threads, quantization, kernels }).then(
              (e) => {
                ran = `cpu, ${e.info.details.kernels}`;
                return e;
              },
            ),
      );
    } catch (e) {
      throw new Error(`fixture ${file}: ${(e as Error).message.split("\n")[0]}`);
    }
    const failed = rows.filter((r) => !r.pass);
    console.log(`${file} (${fixture.name}, engine ${ran}): ${failed.length ? "FAIL" : "pass"}`);
    for (const r of rows) {
      if (!values.verbose && r.tensor.startsWith("paramsAfterStep") && r.pass) continue;
      console.log(
        `  step ${r.step}  ${r.tensor.padEnd(38)} max |error| ${r.maxAbsError.toExponential(2)}  ${
          r.pass ? "ok" : "FAIL"
        }`,
      );
    }
    if (failed.length) failures++;
  }
  return failures ? 1 : 0;
}

if (import.meta.main) await runMain("golden", main);
