/**
 * `deno task golden FILE [--engine cpu] [--threads N]`: replays a golden fixture step by step on
 * an engine, prints the largest error of every tensor, and exits 1 when any value is off by more
 * than `1e-5 + 1e-3 |expected|`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { createGpuEngine, findAdapter } from "../engine/gpu/mod.ts";
import { GOLDEN_TOLERANCE, parseFixture, runGolden } from "../engine/golden.ts";
import { choiceFlag, intFlag, runMain, UsageError } from "./args.ts";

const HELP = `Usage: deno task golden FILE... [options]

Replays each golden fixture (see tests/fixtures/FORMAT.md) on an engine and prints the largest
error per tensor and step. Exits 1 when any value is off by more than
${GOLDEN_TOLERANCE.atol} + ${GOLDEN_TOLERANCE.rtol} * |expected|.

Options:
  --engine cpu|gpu   engine to check (default cpu)
  --threads N        CPU threads (default: every core; ignored by gpu)
  --verbose          also print the parameters after each step (failures always print)
  -h, --help         this help
`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    strict: true,
    options: {
      engine: { type: "string" },
      threads: { type: "string" },
      verbose: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError("expected at least one fixture FILE");
  const engine = choiceFlag("engine", values.engine, ["cpu", "gpu"] as const) ?? "cpu";
  if (engine === "gpu") {
    const { adapter, reason } = await findAdapter();
    if (!adapter) {
      console.error(`golden: no WebGPU adapter (${reason}); use --engine cpu`);
      return 1;
    }
  }
  const threads = intFlag("threads", values.threads);
  let failures = 0;
  for (const file of positionals) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      throw new Error(`cannot read fixture ${file}: ${(e as Error).message}`);
    }
    const fixture = parseFixture(text);
    const rows = await runGolden(
      fixture,
      (spec, params, maxBatch, quantization) =>
        engine === "gpu"
          ? createGpuEngine({ spec, params, maxBatch, quantization })
          : createCpuEngine({ spec, params, maxBatch, threads, quantization }),
    );
    const failed = rows.filter((r) => !r.pass);
    console.log(`${file} (${fixture.name}, engine ${engine}): ${failed.length ? "FAIL" : "pass"}`);
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
