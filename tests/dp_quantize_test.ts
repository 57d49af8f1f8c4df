import assert from "node:assert/strict";
import { quantizeRange } from "../comm/compression.ts";
import { levels, quantizeLevel } from "../engine/quant.ts";
import { Rng } from "../engine/rng.ts";

Deno.test("quantizeRange equals quantizeLevel: halves, clamps, extremes and NaN", () => {
  const rng = new Rng(5, 1);
  for (const [bits, s] of [[8, 0.01], [16, 3e-5], [8, 1e-10]] as const) {
    const n = levels(bits);
    const special = [0, -0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, n + 0.5, n - 0.5, -n - 0.5, -n - 1.5];
    const x = Float32Array.from([
      ...special.map((v) => v * s),
      1e30,
      -1e30,
      Infinity,
      -Infinity,
      NaN,
      ...Array.from({ length: 2000 }, () => (rng.next() - 0.5) * 2.2 * n * s),
    ]);
    const out = bits === 8 ? new Int8Array(x.length + 2) : new Int16Array(x.length + 2);
    out.fill(7);
    quantizeRange(x, out, 1, x.length, s, n);
    assert.equal(out[0], 7);
    for (let i = 1; i < x.length; i++) {
      assert.equal(out[i], quantizeLevel(x[i], s, n) | 0, `x = ${x[i]}, s = ${s}`);
    }
    assert.equal(out[x.length], 7);
  }
});
