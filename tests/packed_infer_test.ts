/**
 * Scoring from packed tables (`engine/cpu/packed_tables.ts`) gives bit for bit the predictions
 * of the same model file expanded to FP32 tables, at INT2, INT4, INT8 and INT16, for one-hot and
 * multi-hot bags, at 1 and 2 threads.
 */
import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { PackedGather } from "../engine/cpu/packed_tables.ts";
import {
  readModelFile,
  readModelFilePacked,
  readModelFilePackedIfInteger,
  writeModelFile,
} from "../engine/model_file.ts";
import { initParams } from "../engine/params.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { ODD, randomChunk, testSpec } from "./test_models.ts";
import { type CliRun, runScript } from "./run_cli.ts";

/** Even embedding width: INT4 rows start on a byte (the lookup's two-a-byte path). */
const EVEN: ModelSpec = testSpec([13, 4, 31, 9], 8, [13, 9, 8], [10, 6, 1]);

/** A model file of `spec` with `bits`-wide tables and MLPs, in a SharedArrayBuffer. */
function sharedModelFile(spec: ModelSpec, bits: 2 | 4 | 8 | 16): Uint8Array {
  const params = initParams(spec, 3);
  // Spread the values, so that every level (the negative extreme included) occurs.
  for (const table of params.embeddings) table.forEach((v, i) => (table[i] = v * (1 + (i % 5))));
  const file = writeModelFile(spec, params, {
    embeddingBits: bits,
    mlpBits: bits,
    mlpGranularity: "channel",
  });
  const shared = new Uint8Array(new SharedArrayBuffer(file.length));
  shared.set(file);
  return shared;
}

for (const bits of [2, 4, 8, 16] as const) {
  for (const [name, spec] of [["odd widths", ODD], ["even width", EVEN]] as const) {
    Deno.test(`packed INT${bits} tables (${name}) predict bit for bit as expanded FP32 tables, 1 and 2 threads`, async () => {
      const file = sharedModelFile(spec, bits);
      const expanded = readModelFile(file);
      const packed = readModelFilePacked(file);
      assert.ok(packed.embeddings, "integer tables come back packed");
      assert.equal(packed.embeddings.bits, bits);
      const gather = new PackedGather(packed.embeddings, spec.tableRows, spec.embeddingDim);
      expanded.params.embeddings.forEach((table, t) => {
        assert.deepEqual(gather.dequantize(t), table, `table ${t} dequantizes as readModelFile`);
      });
      for (const multiHot of [false, true]) {
        const chunk = randomChunk(spec, 7, 23, 5, multiHot);
        const reference = await createCpuEngine({
          spec,
          params: expanded.params,
          maxBatch: 7,
          threads: 1,
          kernels: "wasm",
        });
        const want = await reference.predict(chunk);
        await reference.dispose();
        for (const threads of [1, 2]) {
          const engine = await createCpuEngine({
            spec,
            params: { embeddings: [], ...packed.mlps },
            packedTables: packed.embeddings,
            maxBatch: 7,
            threads,
            kernels: "wasm",
          });
          try {
            assert.equal(engine.info.details.tables, `packed INT${bits}`);
            const got = await engine.predict(chunk);
            assert.deepEqual(got, want, `${multiHot ? "multi" : "one"}-hot, ${threads} threads`);
            assert.deepEqual(await engine.readTable(2), expanded.params.embeddings[2]);
          } finally {
            await engine.dispose();
          }
        }
      }
    });
  }
}

Deno.test("an engine on packed tables only predicts, and rejects FP32 tables beside them", async () => {
  const file = sharedModelFile(EVEN, 4);
  const packed = readModelFilePacked(file);
  const engine = await createCpuEngine({
    spec: EVEN,
    params: { embeddings: [], ...packed.mlps },
    packedTables: packed.embeddings!,
    maxBatch: 4,
    threads: 1,
  });
  try {
    await assert.rejects(
      engine.trainChunk(randomChunk(EVEN, 4, 4, 1), { learningRate: 0.1 }),
      /Expected to predict with packed tables but was asked to train/,
    );
  } finally {
    await engine.dispose();
  }
  await assert.rejects(
    createCpuEngine({
      spec: EVEN,
      params: readModelFile(file).params,
      packedTables: packed.embeddings!,
      maxBatch: 4,
    }),
    /Expected packed tables with the MLPs' params, no FP32 tables/,
  );
  const fp32 = writeModelFile(EVEN, initParams(EVEN, 1), {
    embeddingBits: null,
    mlpBits: null,
    mlpGranularity: "channel",
  });
  assert.equal(readModelFilePacked(fp32).embeddings, null, "FP32 tables are not packed");
  const either = readModelFilePackedIfInteger(fp32);
  assert.ok("params" in either, "FP32 tables are read as readModelFile reads them");
  assert.deepEqual(either.params, readModelFile(fp32).params);
  const integer = readModelFilePackedIfInteger(file);
  assert.ok("embeddings" in integer && integer.embeddings, "integer tables stay packed");
  assert.deepEqual(integer, packed);
  const wrong = { ...packed.embeddings!, codes: packed.embeddings!.codes.slice(1) };
  assert.throws(
    () => new PackedGather(wrong, EVEN.tableRows, EVEN.embeddingDim),
    /Expected 4 packed tables and scales but found 3 and 4/,
  );
});

/** Runs a tool of `cli/` and returns its exit status and output. */
function runTool(tool: string, args: string[]): Promise<CliRun> {
  return runScript(new URL(`../cli/${tool}`, import.meta.url).pathname, args);
}

Deno.test("infer scores the same with tables packed and expanded, and says which and its memory", async () => {
  const path = await Deno.makeTempFile({ suffix: ".model" });
  try {
    await Deno.writeFile(path, sharedModelFile(EVEN, 4));
    const metrics =
      /(\d+ samples: accuracy [\d.]+, AUC [\d.]+, log loss [\d.]+); (\d+) samples\/s on .*, 2 thread\(s\), \w+ kernels; peak RSS \d+ MB/;
    const lines = [];
    for (const tables of ["packed", "fp32"]) {
      const r = await runTool("infer.ts", [
        path,
        "--samples",
        "500",
        "--batch-size",
        "64",
        "--threads",
        "2",
        "--tables",
        tables,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`tables ${tables === "packed" ? "kept packed" : "in FP32"}`),
      );
      lines.push(r.stdout.match(metrics)?.[1]);
    }
    assert.ok(lines[0], "infer prints metrics, samples/s and peak RSS");
    assert.equal(lines[0], lines[1]);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("bench:infer prints samples/s for every thread count, batch and table kind", async () => {
  const r = await runTool("bench_infer.ts", [
    "--max-rows",
    "50",
    "--samples",
    "256",
    "--batch-size",
    "16,64",
    "--threads",
    "1,2",
    "--rounds",
    "1",
    "--tables",
    "packed,fp32",
    "--no-pytorch",
    "--cpu-kernels",
    "wasm",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /PyTorch: not measured/);
  for (const threads of [1, 2]) {
    for (const batch of [16, 64]) {
      for (const tables of ["packed", "fp32"]) {
        assert.match(r.stdout, new RegExp(`^ +${threads} +${batch} +${tables} +\\d+ +– +–$`, "m"));
      }
    }
  }
});
