import assert from "node:assert/strict";
import { fakeQuantizeTerm } from "../engine/cpu/gather.ts";
import { fakeQuantize, levels } from "../engine/quant.ts";
import { Rng } from "../engine/rng.ts";

Deno.test("the gather's fake-quantized term adds to a sum exactly as quant.ts's fakeQuantize", () => {
  const rng = new Rng(11);
  const values: number[] = [0, -0, NaN, Infinity, -Infinity, 1e30, -1e30, 2 ** 24 + 1, -(2 ** 30)];
  for (const bits of [2, 4, 8, 16]) {
    const n = levels(bits);
    for (const s of [Math.fround(0.01), Math.fround(1e-8), Math.fround(0.37), 3, 0.25, 2 ** -7]) {
      // Exact halves between levels (ties go to the even level), their float32 neighbours, the
      // clamps, and random values around the range.
      for (let k = -n - 3; k <= n + 3; k++) {
        const half = Math.fround((k + 0.5) * s);
        values.length = 9;
        values.push(half, Math.fround(half * (1 + 2 ** -23)), Math.fround(half * (1 - 2 ** -23)));
        values.push(Math.fround(k * s), -half, Math.fround(-0.4 * s), Math.fround(-0.5 * s));
        for (let i = 0; i < 8; i++) values.push(Math.fround((rng.next() - 0.5) * 3 * (n + 1) * s));
        for (const x of values) {
          const want = 0 + fakeQuantize(x, s, n), got = 0 + fakeQuantizeTerm(x, s, n);
          assert.ok(Object.is(want, got), `bits ${bits}, s ${s}, x ${x}: ${want} vs ${got}`);
          const acc = Math.fround(0.25 * s);
          assert.ok(
            Object.is(
              Math.fround(acc + fakeQuantize(x, s, n)),
              Math.fround(acc + fakeQuantizeTerm(x, s, n)),
            ),
          );
        }
      }
    }
  }
});
