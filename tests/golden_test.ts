import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { blasAvailable } from "../engine/cpu/blas.ts";
import { runGolden } from "../engine/golden.ts";
import { assertMatchesGolden, GOLDEN_FIXTURES, loadFixture } from "./test_models.ts";

const BLAS = blasAvailable();

for (const file of GOLDEN_FIXTURES) {
  for (const kernels of ["wasm", "blas"] as const) {
    for (const threads of [1, 2]) {
      const skip = kernels === "blas" && !BLAS;
      Deno.test({
        name: `CPU engine (${kernels}, ${threads} thread(s)) matches golden fixture ${file}${
          skip ? " (skipped: no BLAS library could be opened)" : ""
        }`,
        ignore: skip,
        fn: () =>
          assertMatchesGolden(
            file,
            (spec, params, maxBatch, quantization) =>
              createCpuEngine({ spec, params, maxBatch, threads, quantization, kernels }),
          ),
      });
    }
  }
}

Deno.test("golden check fails on a perturbed parameter", async () => {
  const fixture = await loadFixture("dlrm-fp32-onehot.json");
  fixture.initialParams.top[0].weight[3] += 0.05;
  const rows = await runGolden(
    fixture,
    (spec, params, maxBatch, quantization) =>
      createCpuEngine({ spec, params, maxBatch, threads: 1, quantization }),
  );
  assert.ok(rows.some((r) => !r.pass));
});
