/**
 * `deno task validate:workflows [FILE…]`: validates GitHub Actions workflow files (default every
 * `.github/workflows/*.yml`) against the workflow schema with action-validator (npm
 * `@action-validator/core`), printing each error with its path; exits 1 when any file is invalid.
 *
 * @module
 */
import { validateWorkflow } from "@action-validator/core";
import { defineCli, parseCli, runMain } from "./args.ts";

const CLI = defineCli({
  usage: "deno task validate:workflows [FILE…]",
  description: `Validates GitHub Actions workflow files (default: every .github/workflows/*.yml and
*.yaml) with action-validator's schema and glob checks; they cannot run here, so they
must at least be valid. Exits 1 naming every error.`,
  options: {},
});

/** The workflow files under the current folder (deno task runs in the repository root). */
async function defaultFiles(): Promise<string[]> {
  const dir = ".github/workflows/";
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /\.ya?ml$/.test(e.name)) files.push(`${dir}${e.name}`);
  }
  return files.sort();
}

async function main(): Promise<number> {
  const parsed = parseCli(CLI);
  if (!parsed) return 0;
  const files = parsed.positionals.length ? parsed.positionals : await defaultFiles();
  let invalid = 0;
  for (const file of files) {
    const state = validateWorkflow(await Deno.readTextFile(file));
    if (state.errors.length === 0) {
      console.log(`valid: ${file}`);
      continue;
    }
    invalid++;
    for (const e of state.errors) {
      const where = "path" in e ? e.path : e.location ? `line ${e.location.line}` : "";
      console.log(`invalid: ${file}: ${where} ${e.title}${e.detail ? `: ${e.detail}` : ""}`);
    }
  }
  console.log(`validate:workflows: ${files.length - invalid} of ${files.length} valid`);
  return invalid ? 1 : 0;
}

if (import.meta.main) await runMain("validate:workflows", main);
