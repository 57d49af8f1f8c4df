/**
 * The line budget: no source file (TypeScript, JavaScript, Python, shell, and extensionless
 * scripts with a shebang) is longer than {@link MAX_LINES} lines. Fixtures, baselines, generated
 * and ignored folders are not source.
 *
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const MAX_LINES = 800;
const SOURCE = /\.(ts|mts|js|mjs|py|sh)$/;
/** Folders (relative to the repository root) that hold no hand-written source. */
const SKIP = new Set([
  ".git",
  ".carry",
  "node_modules",
  "results",
  "scratch",
  "tests/fixtures",
  "ci/baselines",
]);

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(`${ROOT}/${dir}`)) {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory) {
      if (!SKIP.has(path)) yield* sourceFiles(path);
    } else if (entry.isFile && (SOURCE.test(entry.name) || await isScript(path))) {
      yield path;
    }
  }
}

/** An extensionless file that starts with a shebang (e.g. `.ci/run`). */
async function isScript(path: string): Promise<boolean> {
  if (/\.[^/]*$/.test(path.replace(/^.*\//, "").replace(/^\./, ""))) return false;
  const file = await Deno.open(`${ROOT}/${path}`);
  try {
    const head = new Uint8Array(2);
    const n = await file.read(head);
    return n === 2 && head[0] === 0x23 && head[1] === 0x21; // "#!"
  } finally {
    file.close();
  }
}

function countLines(text: string): number {
  if (text === "") return 0;
  return text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

Deno.test(`every source file has at most ${MAX_LINES} lines`, async () => {
  const over: string[] = [];
  let files = 0;
  for await (const path of sourceFiles("")) {
    files++;
    const lines = countLines(await Deno.readTextFile(`${ROOT}/${path}`));
    if (lines > MAX_LINES) over.push(`${path}: ${lines} lines`);
  }
  assert.ok(files > 50, `found only ${files} source files under ${ROOT}`);
  over.sort();
  assert.deepEqual(
    over,
    [],
    `source files over ${MAX_LINES} lines (split them):\n  ${over.join("\n  ")}`,
  );
});
