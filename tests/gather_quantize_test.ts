import assert from "node:assert/strict";
import { fakeQuantizeTerm } from "../engine/cpu/gather.ts";
import { fakeQuantize, levels, scaleOf } from "../engine/quant.ts";
import { Rng } from "../engine/rng.ts";
import { compileKernels, instantiateKernels } from "../engine/cpu/wasm.ts";

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

Deno.test("the quantization kernels match quant.ts bit for bit (NaN, ±0, ties, clamps)", async () => {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 4, shared: true });
  const k = await instantiateKernels(await compileKernels(), memory);
  const f32 = new Float32Array(memory.buffer);
  const rng = new Rng(12);
  const special = [0, -0, NaN, Infinity, -Infinity, 1e30, -1e-30, 1e-45];
  const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
  const W = 1024, Q = 65536, S = 131072, X = 139264;
  for (let trial = 0; trial < 400; trial++) {
    const bits = [2, 4, 8, 16][trial % 4], n = levels(bits);
    const cols = 4 * (1 + (trial % 37)), ld = cols + 4 * (trial % 3), rows = 1 + (trial % 7);
    const spread = trial % 2 ? 1e-3 : 5;
    for (let i = 0; i < rows * ld; i++) {
      const u = rng.next();
      f32[W / 4 + i] = u < 0.02
        ? special[Math.floor(rng.next() * special.length)]
        : (rng.next() - 0.5) * spread;
    }
    // Row maxima of |w|, NaN where a row holds one.
    k.rowMaxAbs(W, ld, cols, 0, rows, S);
    for (let r = 0; r < rows; r++) {
      let m = 0;
      for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(f32[W / 4 + r * ld + c]));
      assert.ok(same(f32[S / 4 + r], m), `row ${r}: ${f32[S / 4 + r]} vs ${m}`);
      const s = scaleOf(f32[S / 4 + r], bits);
      f32[S / 4 + r] = Number.isNaN(s) ? Math.fround(0.01) : s;
    }
    // Exact halves between levels, to test the rounding of ties.
    const s = f32[S / 4];
    for (let c = 0; c < Math.min(cols, 8); c++) {
      f32[W / 4 + c] = Math.fround((Math.floor(rng.next() * 2 * n) - n + 0.5) * s);
    }
    k.fakeQuantizeRows(W, Q, ld, cols, 0, rows, S, 0, n);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const x = f32[W / 4 + r * ld + c], got = f32[Q / 4 + r * ld + c];
        const want = Math.fround(fakeQuantize(x, f32[S / 4 + r], n));
        assert.ok(same(got, want), `fakeQuantizeRows ${x}: ${got} vs ${want}`);
      }
    }
    // In place, as the first term of a sum from +0, over any number of columns.
    const terms = 1 + (trial % 19);
    f32.copyWithin(X / 4, W / 4, W / 4 + rows * ld);
    k.fakeQuantizeTerms(X, ld, terms, rows, s, n);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < ld; c++) {
        const x = f32[W / 4 + r * ld + c], got = f32[X / 4 + r * ld + c];
        const want = c < terms ? Math.fround(0 + fakeQuantizeTerm(x, s, n)) : x;
        assert.ok(same(got, want), `fakeQuantizeTerms ${x}: ${got} vs ${want}`);
      }
    }
  }
});
