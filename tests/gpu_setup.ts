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

/**
 * Runs `fn` with `OffscreenCanvas.convertToBlob` giving BMPs whose first pixel byte (the first
 * byte read, in a one-row canvas and in Deno's bottom-up BMP of a swizzled one) is changed when
 * the canvas is `rows` texels high, as an encoder that converted colour would.
 */
export async function withChangedCanvasBytes<T>(
  rows: number,
  fn: () => Promise<T>,
): Promise<T> {
  const convertToBlob = OffscreenCanvas.prototype.convertToBlob;
  OffscreenCanvas.prototype.convertToBlob = async function (this: OffscreenCanvas, ...args) {
    const blob = await convertToBlob.apply(this, args);
    if (this.height !== rows) return blob;
    const bytes = new Uint8Array(await blob.arrayBuffer());
    bytes[new DataView(bytes.buffer).getUint32(10, true)] ^= 0x01;
    return new Blob([bytes], { type: blob.type });
  };
  try {
    return await fn();
  } finally {
    OffscreenCanvas.prototype.convertToBlob = convertToBlob;
  }
}
