/**
 * Test setup for the WebGPU tests: finds the adapter the way the engine does, after giving the
 * process what the Vulkan loader needs to stay quiet. Without `XDG_RUNTIME_DIR`, Mesa's drivers
 * print `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` twice per adapter
 * request (some 120 lines in a passing `deno task test`), so an unset one is set to a private
 * folder (mode 0700, as the variable requires) before the first request.
 *
 * @module
 */
import { findAdapter } from "../engine/gpu/mod.ts";

/**
 * Sets `XDG_RUNTIME_DIR` to a private folder when it is unset or not a folder; returns it.
 * Child processes started afterwards inherit it.
 */
export function ensureXdgRuntimeDir(): string {
  const current = Deno.env.get("XDG_RUNTIME_DIR");
  if (current) {
    try {
      if (Deno.statSync(current).isDirectory) return current;
    } catch { /* missing: make one */ }
  }
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/dqrm-xdg-${Deno.uid() ?? "user"}`;
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.chmodSync(dir, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", dir);
    return dir;
  } catch {
    const own = Deno.makeTempDirSync({ prefix: "dqrm-xdg-" });
    Deno.chmodSync(own, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", own);
    return own;
  }
}

/** {@linkcode findAdapter}, after {@linkcode ensureXdgRuntimeDir}. */
export function findTestAdapter(): ReturnType<typeof findAdapter> {
  ensureXdgRuntimeDir();
  return findAdapter();
}
