/**
 * Pins the synthetic data bit for bit: SHA-256 digests of whole chunks (dense features, labels,
 * every table's indices and the teacher's probabilities) and the calibrated bias, recorded from
 * the generator before its fill was optimised, with and without the teacher's probabilities. Any change to what a sample is (a draw's order,
 * its arithmetic, a constant) fails here; the CPU and GPU regression baselines depend on it.
 */
import assert from "node:assert/strict";
import { allocateOneHotChunk } from "../engine/batch.ts";
import { kaggleSpec, terabyteSpec } from "../engine/spec.ts";
import { SyntheticCriteo, type SyntheticOptions, type SyntheticStream } from "../data/mod.ts";

/** The first 12 bytes of the SHA-256 of the arrays' bytes, in order, as hex. */
async function digest(parts: (Float32Array | Int32Array)[]): Promise<string> {
  const bytes = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(hash.subarray(0, 12), (b) => b.toString(16).padStart(2, "0")).join("");
}

interface PinnedCase {
  name: string;
  shape: { denseFeatures: number; tableRows: number[] };
  options: SyntheticOptions;
  bias: number;
  /** Stream, first sample, samples, and the digest of that chunk. */
  ranges: [SyntheticStream, number, number, string][];
}

/** Tables of 1, 2 and 3 rows, the alias head's edges (2048 rows) and the largest table. */
const ODD_SHAPE = {
  denseFeatures: 17,
  tableRows: [1, 2, 3, 2047, 2048, 2049, 100000, 2 ** 31 - 1],
};

const CASES: PinnedCase[] = [
  {
    name: "Kaggle, full tables",
    shape: kaggleSpec(),
    options: { seed: 1 },
    bias: -1.1485441385198065,
    ranges: [
      ["train", 0, 4096, "59d74284669c041cadafb880"],
      ["train", 1_000_003, 3000, "e38ea76237f78b29342faa13"],
      ["test", 0, 2500, "5e1223d68f130924a3b3e0ef"],
      ["train", 2 ** 38 + 77, 1000, "0affb125ea7c04da109d3b23"],
    ],
  },
  {
    name: "Kaggle, full tables, largest seed, other click rate and signal",
    shape: kaggleSpec(),
    options: { seed: 4294967295, clickRate: 0.1, signal: 2 },
    bias: -4.785537866162885,
    ranges: [["train", 12345, 3000, "4061712c3d280f6b59639f2f"]],
  },
  {
    name: "Terabyte, full tables",
    shape: terabyteSpec(),
    options: { seed: 7 },
    bias: -1.7363699976609013,
    ranges: [
      ["train", 0, 4096, "9a267411707063364323f309"],
      ["test", 999_999, 3001, "22ed3d64981ac086a3746e26"],
    ],
  },
  {
    name: "Kaggle, tables scaled by 0.001",
    shape: kaggleSpec(0.001),
    options: { seed: 3 },
    bias: -2.8663659456076704,
    ranges: [
      ["train", 0, 65536, "7a83c07bc08d0ef6e3af78c7"],
      ["test", 300, 5000, "58c0415a619ddf9860367c65"],
    ],
  },
  {
    name: "Terabyte, tables scaled by 0.0001",
    shape: terabyteSpec(0.0001),
    options: { seed: 11 },
    bias: -2.0139713046094307,
    ranges: [["train", 5, 20000, "4f4f99fc03aac928f6e73e21"]],
  },
  {
    name: "17 dense features, odd table sizes, no signal",
    shape: ODD_SHAPE,
    options: { seed: 2, signal: 0 },
    bias: -1.09861228866811,
    ranges: [
      ["train", 0, 3000, "47de8129383530c7127b7ab1"],
      ["test", 700, 2000, "cefaf3ed5e3028d7ade799e5"],
    ],
  },
];

for (const c of CASES) {
  Deno.test(`synthetic data is pinned: ${c.name}`, async () => {
    const data = new SyntheticCriteo(c.shape, c.options);
    assert.equal(data.bias, c.bias, "calibrated bias");
    for (const [stream, first, samples, want] of c.ranges) {
      const chunk = allocateOneHotChunk(c.shape, 128, samples);
      const probabilities = new Float32Array(samples);
      data.fill(chunk, stream, first, probabilities);
      const got = await digest([chunk.dense, chunk.labels, ...chunk.indices, probabilities]);
      assert.equal(got, want, `${stream} samples [${first}, ${first + samples})`);
      // The fill without probabilities (the training path) draws the same samples.
      const plain = allocateOneHotChunk(c.shape, 128, samples);
      data.fill(plain, stream, first);
      assert.equal(
        await digest([plain.dense, plain.labels, ...plain.indices, probabilities]),
        want,
        `${stream} samples [${first}, ${first + samples}) without teacher probabilities`,
      );
    }
  });
}
