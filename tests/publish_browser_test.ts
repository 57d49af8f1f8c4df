import assert from "node:assert/strict";
import { CHROMIUM_PATH, chromiumAvailable } from "../reports/browser.ts";
import { machineOf } from "../record/provenance.ts";
import { fakeRun } from "./report_fixtures.ts";
import { runScript } from "./run_cli.ts";

/** Kept after the test (results/ is ignored by git) so the screenshots can be looked at. */
const DIR = new URL("../results/publish-browser-test", import.meta.url).pathname;
const CLI = new URL("../cli/publish.ts", import.meta.url).pathname;

const available = await chromiumAvailable();
if (!available) {
  console.warn(
    `SKIP publish browser test: Chromium not found at ${CHROMIUM_PATH} (install it with: apt-get install -y chromium)`,
  );
}

const publish = (...args: string[]) => runScript(CLI, args);

Deno.test({
  name:
    "publish --check: every page of the site loads in Chromium with no console error, every chart drawn, every link resolving",
  ignore: !available,
  fn: async () => {
    await Deno.remove(DIR, { recursive: true }).catch(() => {});
    const machine = machineOf({
      os: "linux",
      arch: "x86_64",
      cpu: "Test CPU (2 cores)",
      cores: 2,
      memoryBytes: 25e9,
    });
    const folders: string[] = [];
    for (const [i, forward] of [3, 18, 3].entries()) {
      const dir = `${DIR}/results-${i}`;
      await Deno.mkdir(dir, { recursive: true });
      for (const name of ["fp32", "dqrm-int4"]) {
        const run = {
          ...fakeRun({
            name,
            method: name === "fp32" ? "fp32" : "dqrm",
            raw: true,
            ms: { forward },
          }),
          schemaVersion: 2,
          startedAt: `2026-01-0${i + 1}T00:00:00.000Z`,
          provenance: { commit: String(i + 1).repeat(40), dirty: i === 2, machine },
        };
        await Deno.writeTextFile(`${dir}/${name}.json`, JSON.stringify(run));
      }
      folders.push(dir);
    }
    const shots = `${DIR}/shots`;
    const r = await publish("--site", `${DIR}/site`, ...folders, "--check", "--screenshots", shots);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /3 folder\(s\) added, 0 already published; 3 folders and 2 series/);
    assert.match(r.stderr, /checked 6 pages: 0 fault\(s\)/);
    assert.match(r.stderr, /history\/kaggle--fp32--[0-9a-f]{12}\.html: 1\d charts, ok/);
    for (const png of ["index.png", `kaggle--fp32--${machine.fingerprint}.png`]) {
      const bytes = await Deno.readFile(`${shots}/${png}`);
      assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47], `${png} is a PNG`);
      assert.ok(bytes.length > 20_000, `${png}: ${bytes.length} bytes`);
    }
    assert.match(r.stdout, /Site: .*\/index\.html/);
    // A page with a script error fails the check.
    await Deno.writeTextFile(
      `${DIR}/site/history/broken.html`,
      `<!doctype html><body><script>document.body.setAttribute("data-charts-drawn", "0"); nope();</script></body>`,
    );
    const bad = await publish("--site", `${DIR}/site`, "--check");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /history\/broken\.html: 0 charts, console error: .*nope/);
    const usage = await publish(folders[0]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--site DIR is required/);
  },
});
