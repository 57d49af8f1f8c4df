/**
 * `validateChunk` on a chunk as `bench:gpu` trains at batch 16384 (262144 one-hot samples of the
 * full Kaggle tables), against the plain per-element loop it replaced:
 * `deno bench -A tests/batch_validate_bench.ts` prints the ratio.
 *
 * @module
 */
import { allocateOneHotChunk, validateChunk } from "../engine/batch.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "../data/synthetic.ts";
import { referenceProblem } from "./validate_reference.ts";

const spec = kaggleSpec();
const chunk = allocateOneHotChunk(spec, 16384, 262144, true);
new SyntheticCriteo(spec, { seed: 1 }).fill(chunk, "train", 0);

Deno.bench("plain per-element loop", { group: "validate", baseline: true }, () => {
  if (referenceProblem(chunk, spec.tableRows)) throw new Error("Expected a valid chunk");
});
Deno.bench("validateChunk", { group: "validate" }, () => {
  validateChunk(chunk, spec);
});
