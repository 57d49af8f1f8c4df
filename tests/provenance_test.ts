import assert from "node:assert/strict";
import { kaggleSpec } from "../engine/spec.ts";
import { checkoutState, machineOf, migrateRunJson } from "../record/provenance.ts";
import { parseRunResult, RESULT_SCHEMA_VERSION } from "../record/schema.ts";
import { readResult, writeResult } from "../record/files.ts";
import { parseReportRun } from "../reports/load.ts";
import { plannedEngineInfo } from "../suites/engines.ts";
import { kaggleSuite } from "../suites/mod.ts";
import { buildRunResult } from "../suites/result.ts";

function result() {
  const config = kaggleSuite({ experiments: ["table3"] }).runs.find((r) => r.name === "fp32")!;
  return buildRunResult({
    suite: "kaggle",
    config: { ...config, tableScale: 0.0005 },
    spec: kaggleSpec(0.0005),
    status: "failed",
    error: "never trained",
    startedAt: new Date(0).toISOString(),
    engine: plannedEngineInfo(config),
    iterations: 0,
    engineBytes: 0,
  });
}

async function git(...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, stderr: "inherit" }).output();
  assert.ok(out.success, `git ${args.join(" ")}`);
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("a new result records this checkout's commit, dirty flag and machine", async () => {
  const r = result();
  assert.equal(r.schemaVersion, 2);
  assert.equal(RESULT_SCHEMA_VERSION, 2);
  const root = new URL("..", import.meta.url).pathname;
  assert.equal(r.provenance.commit, await git("-C", root, "rev-parse", "HEAD"));
  const dirty = (await git("-C", root, "status", "--porcelain")).length > 0;
  assert.equal(r.provenance.dirty, dirty);
  assert.deepEqual(r.provenance.machine, machineOf(r.environment));
  assert.match(
    r.provenance.machine.label,
    new RegExp(`${Math.round(r.environment.memoryBytes / 2 ** 30)} GiB`),
  );
  assert.deepEqual(checkoutState(), { commit: r.provenance.commit, dirty });
});

Deno.test("a version 1 result (no provenance) still loads: commit unknown, machine from its environment", async () => {
  const v2 = result();
  const { provenance: _, ...rest } = v2;
  const v1 = { ...rest, schemaVersion: 1 };
  const migrated = parseRunResult(JSON.parse(JSON.stringify(v1)), "v1.json");
  assert.equal(migrated.schemaVersion, 2);
  assert.deepEqual(migrated.provenance, {
    commit: null,
    dirty: null,
    machine: v2.provenance.machine,
  });
  assert.deepEqual(parseReportRun(v1).provenance, migrated.provenance);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/fp32.json`, JSON.stringify(v1));
    assert.deepEqual((await readResult(`${dir}/fp32.json`))!.provenance.commit, null);
    await writeResult(dir, v2);
    assert.deepEqual((await readResult(`${dir}/fp32.json`))!.provenance, v2.provenance);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // A version 2 result must carry provenance; migration is only for version 1.
  assert.throws(() => parseRunResult({ ...v1, schemaVersion: 2 }), /provenance/);
  assert.equal(migrateRunJson("x"), "x");
});

Deno.test("machine fingerprints: the GPU adapter makes a GPU run's machine; Deno's version does not", () => {
  const env = {
    os: "linux",
    arch: "x86_64",
    cpu: "Xeon (16 cores)",
    cores: 16,
    memoryBytes: 128 * 2 ** 30,
  };
  const cpu = machineOf({ ...env, engine: { name: "cpu", device: "Xeon (16 cores)" } });
  const gpu = machineOf({ ...env, engine: { name: "gpu", device: "NVIDIA H200" } });
  const other = machineOf({ ...env, engine: { name: "gpu", device: "llvmpipe" } });
  assert.notEqual(cpu.fingerprint, gpu.fingerprint);
  assert.notEqual(gpu.fingerprint, other.fingerprint);
  assert.equal(
    machineOf({ ...env, deno: "3.0.0" } as typeof env).fingerprint,
    machineOf(env).fingerprint,
  );
  assert.match(gpu.label, /NVIDIA H200/);
  assert.match(gpu.fingerprint, /^[0-9a-f]{12}$/);
});

Deno.test("DQRM_COMMIT and DQRM_DIRTY stand in for git in a copy without .git", async () => {
  const code = `import { checkoutState } from "${new URL(
    "../record/provenance.ts",
    import.meta.url,
  )}";
console.log(JSON.stringify(checkoutState()));`;
  const run = async (env: Record<string, string>) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env,
      stderr: "piped",
    }).output();
    return {
      ok: out.success,
      text: new TextDecoder().decode(out.success ? out.stdout : out.stderr),
    };
  };
  const given = await run({ DQRM_COMMIT: "abc1234", DQRM_DIRTY: "1" });
  assert.deepEqual(JSON.parse(given.text), { commit: "abc1234", dirty: true });
  const bad = await run({ DQRM_COMMIT: "HEAD" });
  assert.equal(bad.ok, false);
  assert.match(bad.text, /Expected DQRM_COMMIT to be a hex commit hash but found 'HEAD'/);
});
