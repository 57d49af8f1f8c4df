/**
 * Atomic file writes: a temporary file renamed into place, so an interrupted writer never leaves
 * a half-written file. Used by the Criteo cache (manifest, progress) and by result files
 * (`record/files.ts`, which re-exports it).
 *
 * @module
 */

/** Writes `text` to `path` atomically: a reader sees the old file or the whole new one. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}
