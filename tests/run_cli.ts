/**
 * Runs a Deno script as the tests' CLIs are run (`deno run -A SCRIPT ARGS…`), capturing its exit
 * code and output.
 *
 * @module
 */

/** What a script run printed and how it exited. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A script ...args` (in `cwd` when given). */
export async function runScript(script: string, args: string[], cwd?: string): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdout: "piped",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}
