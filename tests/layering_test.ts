/**
 * The folders' layering: each folder imports only from itself and the folders before it in
 * {@linkcode LAYERS} (engine ← data ← record ← comm ← suites ← reports ← cli), never from a later
 * one, from tests/ or from the root. Checks every static import and export, dynamic `import()`
 * and `new URL(..., import.meta.url)` (workers) with a relative specifier.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The folders, lowest first. */
const LAYERS = ["engine", "data", "record", "comm", "suites", "reports", "cli"] as const;

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));

const SPECIFIERS = [
  /\b(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/g,
  /\bimport\s*["']([^"']+)["']/g,
  /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  /\bnew URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g,
];

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) yield* sources(path);
    else if (e.isFile && /\.(ts|js)$/.test(e.name)) yield path;
  }
}

/** The layer of a path relative to the root: its top folder's index, or -1 outside them. */
function layerOf(rel: string): number {
  return (LAYERS as readonly string[]).indexOf(rel.split("/")[0]);
}

Deno.test("no folder imports from a folder above it (engine ← data ← record ← comm ← suites ← reports ← cli)", async () => {
  const upward: string[] = [];
  let edges = 0;
  for (const layer of LAYERS) {
    for await (const file of sources(join(ROOT, layer))) {
      const from = relative(ROOT, file);
      const text = await Deno.readTextFile(file);
      for (const re of SPECIFIERS) {
        for (const m of text.matchAll(re)) {
          const spec = m[1];
          if (!spec.startsWith(".")) continue; // package specifiers (npm:, node:) and mapped bare names
          const to = relative(ROOT, normalize(join(dirname(file), spec)));
          edges++;
          const target = layerOf(to);
          if (target < 0 || target > layerOf(from)) {
            const where = target < 0 ? "outside the layers" : `layer ${LAYERS[target]}`;
            upward.push(`${from} imports "${spec}" (${to}, ${where}) above layer ${layer}`);
          }
        }
      }
    }
  }
  assert.ok(edges > 200, `Expected to find the imports but found only ${edges}`);
  assert.deepEqual(upward, [], `Upward imports:\n${upward.join("\n")}`);
});
