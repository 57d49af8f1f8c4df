import assert from "node:assert/strict";
import { accuracy, logLoss, rocAuc } from "../engine/metrics.ts";

const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/metrics.json", import.meta.url)),
) as {
  cases: {
    labels: number[];
    probabilities: number[];
    accuracy: number;
    rocAuc: number;
    logLoss: number;
  }[];
};

Deno.test("metrics match scikit-learn on every case of metrics.json", () => {
  for (const [i, c] of fixture.cases.entries()) {
    const close = (name: string, got: number, want: number) =>
      assert.ok(
        Math.abs(got - want) <= 1e-9 + 1e-9 * Math.abs(want),
        `case ${i} ${name}: ${got} vs ${want}`,
      );
    close("accuracy", accuracy(c.labels, c.probabilities), c.accuracy);
    close("rocAuc", rocAuc(c.labels, c.probabilities), c.rocAuc);
    close("logLoss", logLoss(c.labels, c.probabilities), c.logLoss);
  }
});

Deno.test("accuracy() rounds a probability of exactly 0.5 to 0", () => {
  assert.equal(accuracy([0, 1], [0.5, 0.5]), 0.5);
});

Deno.test("rocAuc() counts ties one half and is NaN with one class", () => {
  assert.equal(rocAuc([0, 1], [0.3, 0.3]), 0.5);
  assert.equal(rocAuc([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2]), 1);
  assert.ok(Number.isNaN(rocAuc([1, 1], [0.2, 0.3])));
});

Deno.test("metrics reject mismatched lengths with a clear error", () => {
  assert.throws(
    () => accuracy([0, 1], [0.1]),
    /Expected as many probabilities as labels \(2\) but found 1/,
  );
});
