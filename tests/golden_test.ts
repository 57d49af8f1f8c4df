import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { blasAvailable } from "../engine/cpu/blas.ts";
import { parseFixture, runGolden } from "../engine/golden.ts";

const BLAS = blasAvailable();

const FIXTURES = [
  "dlrm-fp32-onehot.json",
  "dlrm-fp32-multihot.json",
  "dlrm-int4-embeddings.json",
  "dlrm-int4-all.json",
  "dlrm-int8-all.json",
];

for (const file of FIXTURES) {
  for (const kernels of ["wasm", "blas"] as const) {
    for (const threads of [1, 2]) {
      const skip = kernels === "blas" && !BLAS;
      Deno.test({
        name: `CPU engine (${kernels}, ${threads} thread(s)) matches golden fixture ${file}${
          skip ? " (skipped: no BLAS library could be opened)" : ""
        }`,
        ignore: skip,
        fn: async () => {
          const fixture = parseFixture(
            await Deno.readTextFile(new URL(`./fixtures/${file}`, import.meta.url)),
          );
          const rows = await runGolden(
            fixture,
            (spec, params, maxBatch, quantization) =>
              createCpuEngine({ spec, params, maxBatch, threads, quantization, kernels }),
          );
          assert.ok(rows.length > 10);
          const failed = rows.filter((r) => !r.pass);
          assert.deepEqual(
            failed.map((r) => `step ${r.step} ${r.tensor}: max error ${r.maxAbsError}`),
            [],
          );
        },
      });
    }
  }
}

Deno.test("golden check fails on a perturbed parameter", async () => {
  const fixture = parseFixture(
    await Deno.readTextFile(new URL("./fixtures/dlrm-fp32-onehot.json", import.meta.url)),
  );
  fixture.initialParams.top[0].weight[3] += 0.05;
  const rows = await runGolden(
    fixture,
    (spec, params, maxBatch, quantization) =>
      createCpuEngine({ spec, params, maxBatch, threads: 1, quantization }),
  );
  assert.ok(rows.some((r) => !r.pass));
});
