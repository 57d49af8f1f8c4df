/**
 * `bench:blas`: every library that opens is timed at every product of both architectures, and
 * its products agree with the first library's.
 */
import assert from "node:assert/strict";
import { blasLibrariesToTest } from "../engine/cpu/blas_library.ts";
import { runScript } from "./run_cli.ts";

const LIBRARIES = blasLibrariesToTest();

Deno.test({
  name: `bench:blas times each library at the engine's products and compares their results${
    LIBRARIES.length ? "" : " (skipped: no BLAS library opens)"
  }`,
  ignore: LIBRARIES.length === 0,
  fn: async () => {
    const out = await Deno.makeTempFile({ suffix: ".json" });
    try {
      const r = await runScript(new URL("../cli/bench_blas.ts", import.meta.url).pathname, [
        "--min-ms",
        "1",
        "--out",
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      for (const file of LIBRARIES) assert.match(r.stdout, new RegExp(`library \\d: ${file}: `));
      const json = JSON.parse(await Deno.readTextFile(out));
      assert.deepEqual(json.libraries.map((l: { path: string }) => l.path), LIBRARIES);
      const kinds = new Set<string>();
      for (const arch of ["kaggle", "terabyte"]) {
        const rows = json.rows.filter((row: { product: { arch: string } }) =>
          row.product.arch === arch
        );
        assert.ok(rows.length >= 12, `${arch}: ${rows.length} products`);
        for (const { product, timings } of rows) {
          kinds.add(product.kind);
          assert.equal(timings.length, LIBRARIES.length);
          for (const t of timings) {
            assert.ok(t.gflops > 0, `${product.kind} ${product.layer}: ${t.gflops}`);
            assert.ok(t.relDiff <= 1e-5, `${t.library} ${product.kind}: ${t.relDiff}`);
          }
        }
      }
      assert.deepEqual(
        [...kinds].sort(),
        ["forward-256", "forward-64", "input-grad", "weight-grad"],
      );
    } finally {
      await Deno.remove(out);
    }
  },
});

Deno.test("bench:blas names a library that does not open", async () => {
  const r = await runScript(new URL("../cli/bench_blas.ts", import.meta.url).pathname, [
    "--blas-lib",
    "/nonexistent/libblas-for-test.so",
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\/nonexistent\/libblas-for-test\.so/);
});
