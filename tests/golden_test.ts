import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { blasAvailable, blasLibrariesToTest } from "../engine/cpu/blas_library.ts";
import { runGolden } from "../engine/golden.ts";
import { assertMatchesGolden, GOLDEN_FIXTURES, loadFixture } from "./test_models.ts";

/** The CPU paths: WebAssembly, and BLAS with each library that opens (oneDNN, OpenBLAS). */
const PATHS = [
  { kernels: "wasm" as const, library: undefined, label: "wasm" },
  ...blasLibrariesToTest().map((library) => ({
    kernels: "blas" as const,
    library,
    label: `blas: ${library}`,
  })),
];

for (const file of GOLDEN_FIXTURES) {
  for (const { kernels, library, label } of PATHS) {
    for (const threads of [1, 2]) {
      Deno.test(
        `CPU engine (${label}, ${threads} thread(s)) matches golden fixture ${file}`,
        () =>
          assertMatchesGolden(
            file,
            (spec, params, maxBatch, quantization) =>
              createCpuEngine({
                spec,
                params,
                maxBatch,
                threads,
                quantization,
                kernels,
                blasLibrary: library,
              }),
          ),
      );
    }
  }
}

Deno.test({
  name: "the BLAS path's golden checks run (a BLAS library opens)",
  ignore: !blasAvailable(),
  fn: () => assert.ok(PATHS.length > 1),
});

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
