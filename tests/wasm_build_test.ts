import assert from "node:assert/strict";

Deno.test("engine/cpu/kernels.wasm is the build of its AssemblyScript sources", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const task: string = config.tasks["build:wasm"];
  const root = new URL("..", import.meta.url).pathname;
  const tmp = await Deno.makeTempFile({ suffix: ".wasm" });
  const args = task.replace(/^deno /, "").replace("-o engine/cpu/kernels.wasm", `-o ${tmp}`)
    .split(/\s+/);
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: root, stderr: "piped" })
    .output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const built = await Deno.readFile(tmp);
  const committed = await Deno.readFile(new URL("../engine/cpu/kernels.wasm", import.meta.url));
  await Deno.remove(tmp);
  assert.deepEqual(built, committed, "run `deno task build:wasm` and commit kernels.wasm");
});
