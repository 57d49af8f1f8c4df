import assert from "node:assert/strict";
import { BackgroundMetrics } from "../suites/background_metrics.ts";
import { clickMetrics } from "../engine/metrics.ts";

function testSet(n: number, seed: number): { labels: Float32Array; probabilities: Float32Array } {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const labels = Float32Array.from({ length: n }, () => (next() < 0.3 ? 1 : 0));
  // Coarse levels, so that ties occur.
  const probabilities = Float32Array.from(labels, (y) => Math.round((0.3 * y + next()) * 50) / 65);
  return { labels, probabilities };
}

for (const inline of [false, true]) {
  Deno.test(`BackgroundMetrics (${inline ? "inline" : "Worker"}) scores as clickMetrics does, in call order`, async () => {
    const { labels } = testSet(5000, 1);
    const metrics = new BackgroundMetrics(labels, inline);
    try {
      const sets = [2, 3, 4].map((seed) => testSet(5000, seed).probabilities);
      const want = sets.map((p) => clickMetrics(labels, p));
      const order: number[] = [];
      const got = await Promise.all(
        sets.map((p, i) => metrics.score(p.slice()).then((m) => (order.push(i), m))),
      );
      assert.deepEqual(got, want);
      assert.deepEqual(order, [0, 1, 2]);
      // A view into a larger buffer is scored as its own values.
      const big = new Float32Array(6000);
      big.set(sets[0], 500);
      assert.deepEqual(await metrics.score(big.subarray(500, 5500)), want[0]);
      await assert.rejects(
        metrics.score(new Float32Array(10)),
        /Expected as many probabilities as labels \(5000\) but found 10/,
      );
    } finally {
      metrics.close();
    }
  });
}

Deno.test("BackgroundMetrics: closing fails the scores still waiting", async () => {
  const { labels, probabilities } = testSet(200_000, 5);
  const metrics = new BackgroundMetrics(labels, false);
  const waiting = metrics.score(probabilities);
  metrics.close();
  await assert.rejects(waiting, /the run closed before they came/);
});
