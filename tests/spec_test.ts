import assert from "node:assert/strict";
import {
  interactionWidth,
  kaggleSpec,
  parameterCounts,
  scaleTableRows,
  terabyteSpec,
  validateSpec,
} from "../engine/spec.ts";

Deno.test("kaggleSpec() is the paper's Kaggle DLRM: 33,762,577 rows, 2.1608 GB of FP32 tables", () => {
  const spec = validateSpec(kaggleSpec());
  assert.equal(spec.tableRows.reduce((a, b) => a + b, 0), 33_762_577);
  assert.equal(interactionWidth(spec), 367);
  const counts = parameterCounts(spec);
  assert.equal(counts.embedding, 540_201_232);
  assert.equal(counts.mlp, 475_985);
  assert.equal((counts.embedding * 4 / 1e9).toFixed(4), "2.1608");
});

Deno.test("terabyteSpec() is the paper's Terabyte DLRM: 49,126,297 rows, 12.5763 GB of tables", () => {
  const spec = validateSpec(terabyteSpec());
  assert.equal(spec.tableRows.reduce((a, b) => a + b, 0), 49_126_297);
  assert.equal(interactionWidth(spec), 415);
  const counts = parameterCounts(spec);
  assert.equal(counts.mlp, 762_177);
  assert.equal((counts.embedding * 4 / 1e9).toFixed(4), "12.5763");
});

Deno.test("validateSpec() names every inconsistent width", () => {
  const bad = { ...kaggleSpec(0.001), topMlp: [300, 512, 256, 2], bottomMlp: [13, 64, 8] };
  assert.throws(
    () => validateSpec(bad),
    (e: Error) =>
      e instanceof TypeError &&
      /bottom MLP output \(8\) to equal embeddingDim \(16\)/.test(e.message) &&
      /top MLP input to be d \+ F\(F-1\)\/2 = 367 but found 300/.test(e.message) &&
      /end in 1 output but found 2/.test(e.message),
  );
});

Deno.test("scaleTableRows() keeps at least one row and rejects a scale outside (0, 1]", () => {
  assert.deepEqual(scaleTableRows([3, 1000], 0.01), [1, 10]);
  assert.throws(() => scaleTableRows([3], 0), /Expected a table scale in \(0, 1\] but found 0/);
  assert.throws(() => scaleTableRows([3], 2), RangeError);
});

Deno.test("Rng.fillUniform() draws the stream of next() and stays in range", async () => {
  const { Rng } = await import("../engine/rng.ts");
  const a = new Rng(3, 1, 2), b = new Rng(3, 1, 2);
  const out = new Float32Array(1000);
  a.fillUniform(out, -0.5, 0.5);
  for (let i = 0; i < out.length; i++) {
    assert.ok(Math.abs(out[i] - Math.fround(-0.5 + b.next())) <= 1e-7, `value ${i}`);
    assert.ok(out[i] >= -0.5 && out[i] <= 0.5);
  }
  assert.equal(a.nextU32(), b.nextU32());
});
