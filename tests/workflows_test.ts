import assert from "node:assert/strict";
import { runScript } from "./run_cli.ts";

const CLI = new URL("../cli/validate_workflows.ts", import.meta.url).pathname;

// The validator is an npm package: fetched on first use (`.ci/run` has the network), so a
// machine without it and without network skips, saying why.
let missing: string | undefined;
try {
  await import("@action-validator/core");
} catch (e) {
  missing = (e as Error).message.split("\n")[0];
  console.warn(`SKIP workflow validation: @action-validator/core is not available (${missing})`);
}

const validate = (...files: string[]) =>
  runScript(CLI, files, new URL("..", import.meta.url).pathname);

Deno.test({
  name: "the CPU, GPU and publish workflows are valid GitHub Actions workflows (action-validator)",
  ignore: missing !== undefined,
  fn: async () => {
    const r = await validate();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const name of ["cpu.yml", "gpu.yml", "publish.yml"]) {
      assert.match(
        r.stdout,
        new RegExp(`valid: .*\\.github/workflows/${name.replace(".", "\\.")}`),
      );
    }
    assert.match(r.stdout, /3 of 3 valid/);
  },
});

Deno.test({
  name: "the workflow validator rejects a broken workflow, naming the error",
  ignore: missing !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const bad = `${dir}/bad.yml`;
      // A job without runs-on and a step that is neither `run` nor `uses`.
      await Deno.writeTextFile(bad, "on: push\njobs:\n  x:\n    steps:\n      - name: nothing\n");
      const r = await validate(bad);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /invalid: .*bad\.yml: /);
      assert.match(r.stdout, /0 of 1 valid/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
