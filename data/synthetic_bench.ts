/**
 * Throughput of the synthetic data generator: `deno bench data/synthetic_bench.ts`. Each
 * iteration fills 65536 samples; divide to get samples per second.
 *
 * @module
 */
import { allocateOneHotChunk } from "../engine/batch.ts";
import { kaggleSpec, terabyteSpec } from "../engine/spec.ts";
import { SyntheticCriteo } from "./synthetic.ts";

const SAMPLES = 65_536;

for (const [name, spec] of [["Kaggle", kaggleSpec()], ["Terabyte", terabyteSpec()]] as const) {
  const data = new SyntheticCriteo(spec, { seed: 1 });
  const chunk = allocateOneHotChunk(spec, 2048, SAMPLES);
  const probabilities = new Float32Array(SAMPLES);
  let next = 0;
  Deno.bench(`fill ${SAMPLES} ${name} samples`, { group: name, baseline: true }, () => {
    data.fill(chunk, "train", next);
    next += SAMPLES;
  });
  Deno.bench(`fill ${SAMPLES} ${name} samples with teacher probabilities`, { group: name }, () => {
    data.fill(chunk, "train", next, probabilities);
    next += SAMPLES;
  });
}

Deno.bench("construct the Kaggle generator (calibration)", () => {
  new SyntheticCriteo(kaggleSpec(), { seed: 1 });
});
