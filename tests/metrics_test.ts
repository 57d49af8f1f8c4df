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

/** The AUC by its definition: every positive-negative pair, ties one half. */
function pairAuc(labels: number[], scores: number[]): number {
  let u = 0, pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      u += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return u / pairs;
}

Deno.test("rocAuc() equals the pairwise definition on float32 and float64 scores with ties", () => {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let t = 0; t < 200; t++) {
    const n = 2 + Math.floor(next() * 60);
    const labels = Array.from({ length: n }, (_, i) => (i < 2 ? i : next() < 0.3 ? 1 : 0));
    const levels = 1 + Math.floor(next() * 8);
    // Even cases: float32 probabilities (with -0, equal to 0); odd: negative float64 scores.
    const scores = Array.from({ length: n }, () => {
      const v = Math.floor(next() * levels) / levels;
      return t % 2 === 0 ? Math.fround(v) : v - 0.5 + 1e-12;
    });
    if (t % 4 === 0) scores[0] = -0;
    const want = pairAuc(labels, scores);
    assert.ok(Math.abs(rocAuc(labels, scores) - want) <= 1e-12, `case ${t}`);
    assert.ok(
      Math.abs(
        rocAuc(labels, Float32Array.from(scores)) - pairAuc(labels, [
          ...Float32Array.from(scores),
        ]),
      ) <= 1e-12,
      `case ${t} as Float32Array`,
    );
  }
  assert.ok(Number.isNaN(rocAuc([0, 1], [Number.NaN, 0.5])));
});

Deno.test("metrics reject mismatched lengths with a clear error", () => {
  assert.throws(
    () => accuracy([0, 1], [0.1]),
    /Expected as many probabilities as labels \(2\) but found 1/,
  );
});
