/**
 * `GlobalRowDeltas` (`comm/row_deltas.ts`), the GPU replica's global row update, against
 * `globalRowDeltas` of `comm/compression.ts` bit for bit: 1 to 4 workers, FP32 / INT8 / INT16
 * values (negative zeros, NaNs, extremes among them), empty tables, rows only some workers
 * sent, and arrays kept from a larger update before.
 *
 * @module
 */
import assert from "node:assert/strict";
import { globalRowDeltas } from "../comm/compression.ts";
import { GlobalRowDeltas } from "../comm/row_deltas.ts";
import { Rng } from "../engine/rng.ts";
import { tinySpec } from "./test_models.ts";

/** A worker's message `[counts, rows, values]` with `per` rows at most per table. */
function message(
  rng: Rng,
  tableRows: number[],
  d: number,
  bits: 8 | 16 | null,
  per: number,
): Int8Array {
  const rows = tableRows.map((n, t) => {
    if (t === 1) return []; // a table no worker touched
    const set = new Set<number>();
    const want = Math.floor(rng.next() * Math.min(per, n + 1));
    // Low rows often, so that workers share rows; the last row sometimes.
    for (let i = 0; i < want; i++) set.add(Math.floor(rng.next() ** 2 * n));
    if (rng.next() < 0.3) set.add(n - 1);
    return [...set].sort((a, b) => a - b);
  });
  const u = rows.reduce((a, r) => a + r.length, 0);
  const bytes = bits ? bits / 8 : 4;
  const m = new Int8Array(Math.ceil((4 * (tableRows.length + u) + u * d * bytes) / 4) * 4);
  const words = new Int32Array(m.buffer, 0, tableRows.length + u);
  let at = tableRows.length;
  rows.forEach((r, t) => {
    words[t] = r.length;
    for (const x of r) words[at++] = x;
  });
  const vAt = 4 * (tableRows.length + u);
  if (bits === null) {
    const special = [-0, 0, NaN, 3.4e38, -3.4e38, 1e-45, -1e-45];
    const values = new Float32Array(m.buffer, vAt, u * d);
    for (let i = 0; i < values.length; i++) {
      values[i] = rng.next() < 0.1
        ? special[Math.floor(rng.next() * special.length)]
        : (rng.next() - 0.5) * 10 ** Math.floor(rng.next() * 6 - 4);
    }
  } else {
    const n = 2 ** (bits - 1) - 1;
    const values = bits === 8
      ? new Int8Array(m.buffer, vAt, u * d)
      : new Int16Array(m.buffer, vAt, u * d);
    for (let i = 0; i < values.length; i++) values[i] = Math.round((rng.next() * 2 - 1) * n);
  }
  return m;
}

function sameBits(a: Float64Array, b: Float64Array): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

for (const bits of [null, 8, 16] as const) {
  Deno.test(`GlobalRowDeltas equals globalRowDeltas bit for bit: ${bits ? `int${bits}` : "fp32"}`, () => {
    const spec = { ...tinySpec(), tableRows: [40, 7, 1, 300, 5] };
    const config = {
      sparseEmbeddings: true,
      embeddingBits: bits,
      mlpBits: null,
      errorCompensation: false,
    };
    const rng = new Rng(61, bits ?? 0);
    const fast = new GlobalRowDeltas(spec, config);
    // Large updates first, then smaller ones into the arrays kept.
    for (const [round, per] of [60, 60, 9, 1, 30].entries()) {
      for (const K of [1, 2, 3, 4]) {
        const messages = Array.from(
          { length: K },
          () => message(rng, spec.tableRows, spec.embeddingDim, bits, per),
        );
        const scales = Float32Array.from(spec.tableRows, () => rng.next() * 1e-3);
        const lr = [0.01, 0.1 + 1e-9, 3][round % 3];
        const want = globalRowDeltas({ spec, config }, K, lr, scales, messages);
        const got = fast.compute(K, lr, scales, messages);
        const what = `round ${round}, ${K} workers`;
        assert.equal(got.rows, want.rows, `${what}: rows`);
        assert.deepEqual(got.entries, want.entries, `${what}: entries`);
        assert.ok(sameBits(got.deltas, want.deltas), `${what}: deltas bit for bit`);
      }
    }
  });
}
