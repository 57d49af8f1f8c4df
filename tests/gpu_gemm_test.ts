/**
 * The register-blocked GEMM kernel (every tile shape, with and without split-K) against a float64
 * CPU reference, over awkward shapes (no dimension a multiple of a tile), strided and transposed
 * views of A and B, offsets, every flag, and C written inside a larger buffer (what lies outside
 * the output must stay untouched). Tolerance: |got - want| <= 1e-5 sum_k |A B| + 1e-6. Needs a
 * WebGPU adapter; without one the tests are reported as ignored.
 */
import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { createGpuEngine } from "../engine/gpu/mod.ts";
import { findTestAdapter } from "./gpu_setup.ts";
import {
  type GemmKernelName,
  gemmLoadOrder,
  gemmMostSplits,
  gemmTiles,
  planGemm,
} from "../engine/gpu/gemm_plan.ts";
import { gemmVec4 } from "../engine/gpu/gemm_bind.ts";
import {
  GEMM_CANDIDATES,
  gemmCandidateTiles,
  gemmSplitChoices,
  gemmTileByName,
  gemmTileName,
} from "../engine/gpu/gemm_candidates.ts";
import { gemmTunedKey } from "../engine/gpu/gemm_tuned.ts";
import { type GemmFields, KernelHarness } from "../engine/gpu/kernel_harness.ts";
import {
  GEMM_A_AT_S0,
  GEMM_B_AT_S0,
  GEMM_BIAS,
  GEMM_K_ROWS,
  GEMM_M_ROWS,
  GEMM_MASK,
  GEMM_RELU,
  GEMM_TILES,
  gemmKernel,
  gemmTileProblem,
} from "../engine/gpu/kernels/gemm.ts";
import { Rng } from "../engine/rng.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { randomChunk } from "./test_models.ts";

const ignore = (await findTestAdapter()).adapter === null;

/** One product to check. */
interface Case {
  m: number;
  n: number;
  k: number;
  /** A stored transposed ([k][m]) and B stored transposed ([n][k]). */
  aT: boolean;
  bT: boolean;
  flags: number;
  splits: number;
  /** Strides and bases multiples of 4, so that a vec4 plan loads both operands as vec4s. */
  aligned?: boolean;
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [37, 53, 29],
  [130, 70, 19],
  [67, 129, 300],
  [5, 3, 1100],
];
const FLAG_SETS = [
  0,
  GEMM_BIAS | GEMM_RELU,
  GEMM_MASK,
  GEMM_M_ROWS | GEMM_A_AT_S0 | GEMM_BIAS,
  GEMM_K_ROWS | GEMM_B_AT_S0,
  GEMM_M_ROWS | GEMM_K_ROWS | GEMM_A_AT_S0 | GEMM_B_AT_S0 | GEMM_RELU | GEMM_MASK,
];
/** The batch's first sample (for the *_AT_S0 flags). */
const S0 = 3;

/**
 * Runs every case with `tile` (vec4 loads with `vec4`) in one submit and checks each against the
 * reference; returns each case's C buffer as read.
 */
async function check(
  h: KernelHarness,
  tile: GemmKernelName,
  cases: Case[],
  vec4 = false,
): Promise<Float32Array[]> {
  const rng = new Rng(17, 3);
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
  const encoder = h.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  const checks: (() => Promise<Float32Array>)[] = [];
  // One iteration block per case (rows = m or k, whichever the flags take from the batch).
  h.setIterations(cases.map((c) => ({ s0: S0, rows: c.flags & GEMM_M_ROWS ? c.m : c.k })));
  cases.forEach((c, i) => {
    const { m, n, k, flags } = c;
    // Padded strides: awkward, or the next multiple of 4 past the extent when aligned.
    const pad = (x: number) => c.aligned ? Math.ceil((x + 1) / 4) * 4 : x + 3;
    // A(m, k) = a[aBase + m aRow + k aCol]; rows before s0 exist for the *_AT_S0 flags.
    const extraA = flags & GEMM_A_AT_S0 ? S0 : 0, extraB = flags & GEMM_B_AT_S0 ? S0 : 0;
    const aRow = c.aT ? 1 : pad(k), aCol = c.aT ? pad(m) : 1;
    const bRow = c.bT ? 1 : pad(n), bCol = c.bT ? pad(k) : 1;
    const [aBase, bBase] = c.aligned ? [8, 4] : [5, 2];
    // C aligned too where its width allows, so that a vec4 plan stores vec4s.
    const [cBase, cRow] = c.aligned && n % 4 === 0 ? [8, n + 4] : [7, n + 2];
    const maskBase = 1, maskRow = n + 1;
    const aShift = extraA * aRow, bShift = extraB * bRow;
    const aData = rand(aBase + aShift + (m + 1) * Math.max(aRow, 1) + (k + 1) * aCol + 8);
    const bData = rand(bBase + bShift + (k + 1) * bRow + (n + 1) * bCol + 8);
    const biasData = rand(n);
    const maskData = rand(maskBase + m * maskRow + 4);
    const cFloats = cBase + m * cRow + 4;
    const cInit = new Float32Array(cFloats).fill(123);
    const fields: GemmFields = {
      m: flags & GEMM_M_ROWS ? 0 : m,
      n,
      k: flags & GEMM_K_ROWS ? 0 : k,
      flags,
      aRow,
      aCol,
      bRow,
      bCol,
      cRow,
      maskRow,
      aBase,
      bBase,
      cBase,
      maskBase,
    };
    const cBuf = h.storage(cInit);
    const splitStride = m * n;
    const plan = { tile, splits: c.splits, ...(vec4 ? { vec4 } : {}) };
    if (vec4) {
      const layout = gemmLoadOrder({ aRow, aCol, bRow, bCol });
      const loads = gemmVec4(plan, fields, layout.aKFast, layout.bKFast);
      // An operand transposed (contiguous in m or n) and starting at sample s0 is misaligned.
      const want = { a: !(c.aT && flags & GEMM_A_AT_S0), b: !(c.bT && flags & GEMM_B_AT_S0) };
      assert.deepEqual(loads, want, `vec4 loads of ${JSON.stringify(c)}`);
    }
    const bound = h.bindGemm(
      plan,
      fields,
      [h.storage(aData), h.storage(bData), cBuf, h.storage(biasData), h.storage(maskData)],
      c.splits > 1 ? h.storage(c.splits * splitStride) : undefined,
      splitStride,
    );
    h.useIteration(pass, i);
    bound.record(pass, m, n);
    checks.push(async () => {
      const got = await h.read(cBuf, cFloats);
      const read = got.slice();
      const what = `${tile}${vec4 ? " vec4" : ""} ${JSON.stringify(c)}`;
      for (let r = 0; r < m; r++) {
        for (let col = 0; col < n; col++) {
          let sum = 0, abs = 0;
          for (let q = 0; q < k; q++) {
            const av = aData[aBase + aShift + r * aRow + q * aCol];
            const bv = bData[bBase + bShift + q * bRow + col * bCol];
            sum += av * bv;
            abs += Math.abs(av * bv);
          }
          if (flags & GEMM_BIAS) sum += biasData[col];
          if (flags & GEMM_RELU) sum = Math.max(sum, 0);
          if (flags & GEMM_MASK && !(maskData[maskBase + r * maskRow + col] > 0)) sum = 0;
          const at = cBase + r * cRow + col;
          const err = Math.abs(got[at] - sum);
          assert.ok(
            err <= 1e-5 * abs + 1e-6,
            `${what}: C[${r}, ${col}] is ${got[at]}, expected ${sum}`,
          );
          got[at] = 123; // checked: the rest must be untouched
        }
      }
      const stray = got.findIndex((v) => v !== 123);
      assert.equal(stray, -1, `${what}: wrote outside C at float ${stray}`);
      return read;
    });
  });
  pass.end();
  h.device.queue.submit([encoder.finish()]);
  const out: Float32Array[] = [];
  for (const c of checks) out.push(await c());
  return out;
}

/**
 * Aligned cases (vec4 loads possible) over four awkward shapes, each in the operand layouts
 * `layouts` ([aT, bT]), the flag sets taken in turn, K split 3 ways past 100.
 */
function alignedCases(layouts: [boolean, boolean][]): Case[] {
  const cases: Case[] = [];
  let f = 0;
  for (const [m, n, k] of [[37, 53, 29], [67, 129, 300], [45, 64, 40], [70, 128, 300]]) {
    for (const [aT, bT] of layouts) {
      const flags = FLAG_SETS[f++ % FLAG_SETS.length];
      const kk = flags & GEMM_M_ROWS && flags & GEMM_K_ROWS ? m : k;
      cases.push({ m, n, k: kk, aT, bT, flags, splits: k > 100 ? 3 : 1, aligned: true });
    }
  }
  return cases;
}

/**
 * Asserts that each `[variant, plain]` tile pair gives the same outputs bit for bit over `cases`
 * (vec4 loads where aligned).
 */
async function assertTilesEqual(
  h: KernelHarness,
  cases: Case[],
  pairs: [string, string][],
): Promise<void> {
  for (const [variant, plain] of pairs) {
    const want = await check(h, plain as GemmKernelName, cases, true);
    const got = await check(h, variant as GemmKernelName, cases, true);
    cases.forEach((c, i) =>
      assert.deepEqual(got[i], want[i], `${variant} ${JSON.stringify(c)}: != ${plain}`)
    );
  }
}

for (const tile of [...Object.keys(GEMM_TILES), "naive16"] as GemmKernelName[]) {
  Deno.test({
    name: `GEMM ${tile} matches a float64 reference (awkward shapes, views, flags, split-K)`,
    ignore,
    sanitizeResources: false,
    fn: async () => {
      const h = await KernelHarness.create();
      try {
        const cases: Case[] = [];
        let f = 0;
        for (const [m, n, k] of SHAPES) {
          for (const aT of [false, true]) {
            for (const bT of [false, true]) {
              const flags = FLAG_SETS[f++ % FLAG_SETS.length];
              // M and K both from the batch: they are equal.
              const kk = flags & GEMM_M_ROWS && flags & GEMM_K_ROWS ? m : k;
              // The naive kernel never splits K.
              for (const splits of tile === "naive16" ? [1] : [1, 3]) {
                cases.push({ m, n, k: kk, aT, bT, flags, splits });
              }
            }
          }
        }
        // More splits than K-steps: empty splits add zeros.
        if (tile !== "naive16") {
          cases.push({ m: 9, n: 70, k: 20, aT: true, bT: false, flags: GEMM_BIAS, splits: 7 });
        }
        await check(h, tile, cases);
      } finally {
        h.destroy();
      }
    },
  });
}

Deno.test({
  name: "GEMM strided and double-buffered tiles match the reference; vec4 loads equal scalar loads",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    try {
      // A strided tile of several vec4 loads per invocation and K-step, loading along m / n (a
      // transposed operand) as well as along k.
      for (const tile of ["64x128_8x4_k32s"]) {
        const cases = alignedCases([[false, false], [false, true], [true, false], [true, true]]);
        const scalar = await check(h, tile, cases);
        const vec4 = await check(h, tile, cases, true);
        cases.forEach((c, i) =>
          assert.deepEqual(vec4[i], scalar[i], `${tile} ${JSON.stringify(c)}: vec4 != scalar`)
        );
      }
      // Double-buffered: one barrier a K-step, the same results as the float64 reference.
      const cases = [[37, 53, 29], [67, 129, 300], [45, 64, 40]].flatMap(([m, n, k], i) =>
        [false, true].map((aT): Case => ({
          m,
          n,
          k,
          aT,
          bT: !aT,
          flags: FLAG_SETS[i + 1],
          splits: k > 100 ? 3 : 1,
          aligned: true,
        }))
      );
      await check(h, "64x64_8x8_k16sd", cases, true);
      // A binding whose size is not a multiple of 16 bytes is loaded (or stored) by scalars.
      const buffer = h.storage(64);
      const fields = { m: 4, n: 4, k: 5, aRow: 8, aCol: 1, bRow: 1, bCol: 8, cRow: 4 };
      const names = [[20, 32], [32, 20], [32, 32]].map(([size, cSize]) =>
        h.bindGemm({ tile: "64x128_8x4_k32s", splits: 1, vec4: true }, fields, [
          { buffer, offset: 0, size },
          buffer,
          { buffer: h.storage(64), offset: 0, size: cSize },
          buffer,
          buffer,
        ]).kernels[0].kernel.source.name
      );
      assert.deepEqual(names.map((name) => name.includes("_a4_b4")), [false, true, true]);
      assert.deepEqual(names.map((name) => name.endsWith("_c4")), [true, false, true]);
    } finally {
      h.destroy();
    }
  },
});

Deno.test({
  name: "GEMM k-major tiles equal the transposing kernel bit for bit (forward and dX layouts)",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    try {
      // A contiguous in k (aT false), B contiguous in k (bT true: the forward pass) or in n (dX);
      // awkward shapes, every flag set, split-K, and C not a multiple of 4 wide (scalar stores).
      const cases = alignedCases([[false, true], [false, false]]);
      await assertTilesEqual(h, cases, [
        ["64x64_8x8_k16m", "64x64_8x8_k16"],
        ["64x64_4x4_k32m", "64x64_4x4_k32"],
      ]);
      // The k-major kernel where A is contiguous in k and loaded as vec4s; the transposing one
      // (same tile, same sums) elsewhere.
      const buffer = h.storage(1024);
      const name = (fields: GemmFields, vec4: boolean) =>
        h.bindGemm({ tile: "64x64_8x8_k16m", splits: 1, vec4 }, fields, Array(5).fill(buffer))
          .kernels[0].kernel.source.name;
      const forward = { n: 4, k: 8, aRow: 8, aCol: 1, bRow: 1, bCol: 8, cRow: 4 };
      const dW = { m: 4, n: 4, aRow: 1, aCol: 4, bRow: 4, bCol: 1, cRow: 4 };
      assert.equal(name(forward, true), "gemm_64x64_8x8_k16m_akbk_a4_b4_c4");
      assert.equal(
        name({ ...forward, bRow: 4, bCol: 1 }, true),
        "gemm_64x64_8x8_k16m_akbn_a4_b4_c4",
      );
      assert.equal(name(forward, false), "gemm_64x64_8x8_k16_akbk");
      assert.equal(name(dW, true), "gemm_64x64_8x8_k16_ambn_a4_b4_c4");
    } finally {
      h.destroy();
    }
  },
});

Deno.test({
  name: "GEMM prefetching tiles equal the same tiles without prefetch bit for bit",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    try {
      // Every operand layout, awkward shapes, every flag set, split-K; one buffer and two.
      const cases = alignedCases([[false, false], [false, true], [true, false], [true, true]]);
      await assertTilesEqual(h, cases, [
        ["64x64_8x4_k16sp", "64x64_8x4_k16s"],
        ["64x64_8x8_k16sdp", "64x64_8x8_k16sd"],
      ]);
      assert.deepEqual(gemmTileByName("64x64_8x4_k16sp"), {
        bm: 64,
        bn: 64,
        tm: 8,
        tn: 4,
        bk: 16,
        strided: true,
        prefetch: true,
      });
      assert.throws(() => gemmTileByName("64x64_8x8_k16mp"), /no prefetch/);
    } finally {
      h.destroy();
    }
  },
});

Deno.test("GEMM tile names resolve; sweep candidates are valid tiles; tuned plans override the rule", () => {
  assert.deepEqual(gemmTileByName("128x64_8x4_k16"), { bm: 128, bn: 64, tm: 8, tn: 4, bk: 16 });
  assert.deepEqual(gemmTileByName("64x64"), GEMM_TILES["64x64"]);
  assert.deepEqual(gemmTileByName("64x64_8x8_k16s"), {
    bm: 64,
    bn: 64,
    tm: 8,
    tn: 8,
    bk: 16,
    strided: true,
  });
  assert.equal(gemmTileByName("64x64_8x8_k16sd").double, true);
  assert.equal(
    gemmKernel(gemmTileByName("64x64_8x8_k16sd"), false, true, { a: true, b: false }).name,
    "gemm_64x64_8x8_k16sd_ambk_a4",
  );
  assert.notEqual(
    gemmKernel(gemmTileByName("64x64_8x8_k16s"), true, true).code,
    gemmKernel(gemmTileByName("64x64_8x8_k16"), true, true).code,
  );
  assert.throws(() => gemmTileByName("128x64".replace("64", "6")), /Expected a GEMM tile name/);
  assert.throws(() => gemmTileByName("64x64_3x4_k16"), /cannot be compiled/);
  assert.ok(GEMM_CANDIDATES.length >= 24);
  for (const name of GEMM_CANDIDATES) {
    const tile = gemmTileByName(name);
    assert.equal(gemmTileName(tile), name);
    assert.equal(gemmTileProblem(tile, { a: true, b: true }), "", name);
    for (const [ak, bk] of [[true, true], [true, false], [false, false]]) {
      const vec = gemmKernel(tile, ak, bk, { a: true, b: true });
      assert.notEqual(vec.name, gemmKernel(tile, ak, bk).name);
    }
  }
  // 16 KiB of workgroup memory leaves out the k32 tiles of 128-wide blocks.
  assert.ok(!gemmCandidateTiles(16384).includes("128x64_8x8_k32"));
  assert.ok(gemmCandidateTiles(49152).includes("128x64_8x8_k32"));
  const layout = { aKFast: true, bKFast: true };
  const key = gemmTunedKey(16384, 512, 367, true, true);
  const tuned = { [key]: { tile: "64x128_8x8_k16", splits: 1, vec4: true } };
  assert.deepEqual(planGemm(16384, 512, 367, { layout, tuned }), {
    tile: "64x128_8x8_k16",
    splits: 1,
    vec4: true,
  });
  // Another layout of the same shape, or no layout, is planned by the rule.
  const rule = planGemm(16384, 512, 367);
  assert.deepEqual(
    planGemm(16384, 512, 367, { layout: { aKFast: false, bKFast: true }, tuned }),
    rule,
  );
  // A tuned tile needing more workgroup memory than the device has gives way to the rule:
  // 64x128 at bk 16 uses 16 * (68 + 132) * 4 = 12,800 bytes.
  assert.deepEqual(planGemm(16384, 512, 367, { layout, tuned, maxWorkgroupBytes: 12800 }), {
    tile: "64x128_8x8_k16",
    splits: 1,
    vec4: true,
  });
  assert.deepEqual(planGemm(16384, 512, 367, { layout, tuned, maxWorkgroupBytes: 12799 }), rule);
  // Scratch sizing takes the most splits of any layout's tuned plan.
  const dw = gemmTunedKey(512, 256, 16384, false, false);
  assert.equal(
    gemmMostSplits(512, 256, 16384, { [dw]: { tile: "32x32", splits: 63, vec4: false } }),
    63,
  );
  // A smaller batch's tuned plan counts too (a chunk may hold smaller batches); a larger's not.
  const small = gemmTunedKey(512, 256, 2048, false, false);
  const big = gemmTunedKey(512, 256, 32768, false, false);
  const tunedSmall = { [small]: { tile: "32x32", splits: 40, vec4: false } };
  const tunedBig = { [big]: { tile: "32x32", splits: 64, vec4: false } };
  assert.equal(gemmMostSplits(512, 256, 16384, tunedSmall), 40);
  assert.equal(gemmMostSplits(512, 256, 16384, tunedBig), planGemm(512, 256, 16384).splits);
  // A product the rule does not split keeps its summation order: the sweep tries no splits.
  assert.deepEqual(gemmSplitChoices(gemmTileByName("64x64"), 16384, 512, 367, 1), [1]);
  // Small batches, when asked: splits of at least 64 of k that reach 64 workgroups.
  assert.deepEqual(
    gemmSplitChoices(gemmTileByName("32x32"), 128, 256, 512, 1, { anySplit: true, minSplitK: 64 }),
    [1, 2, 4, 8],
  );
  // 32 tiles: 2 to 64 splits give 64 to 2048 workgroups; 1 split would leave a GPU idle.
  const choices = gemmSplitChoices(gemmTileByName("64x64"), 512, 256, 16384, 8);
  assert.deepEqual(choices, [2, 4, 8, 16, 32, 64]);
});

Deno.test("GEMM plans fill the GPU: big tiles for big outputs, split-K for small ones", () => {
  // Forward at batch 16384 of a 512-wide layer: the largest tile, no split.
  assert.deepEqual(planGemm(16384, 512, 367), { tile: "128x128", splits: 1 });
  // Weight gradient 512 x 256 over K = 16384: few tiles, so K is split to reach 256 workgroups.
  const dw = planGemm(512, 256, 16384);
  assert.ok(dw.splits > 1);
  assert.ok(gemmTiles(dw.tile, 512, 256) * dw.splits >= 256);
  // K = 128 is too short to split; small outputs get the 16 x 16 kernel (more workgroups).
  assert.deepEqual(planGemm(16, 13, 128), { tile: "naive16", splits: 1 });
  assert.deepEqual(planGemm(128, 256, 512), { tile: "naive16", splits: 1 });
  // A long K splits even a small output rather than leave it to a few workgroups.
  assert.ok(planGemm(16, 64, 2048).splits > 1);
  // Splits never decrease as K grows.
  let last = 0;
  for (let k = 1; k <= 65536; k *= 2) {
    const s = planGemm(256, 512, k).splits;
    assert.ok(s >= last, `splits fell at k = ${k}`);
    last = s;
  }
});

Deno.test({
  name: "GPU engine with Kaggle-wide MLPs at batch 2100 (64x64 tiles, split-K dW) matches the CPU",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const spec = { ...kaggleSpec(0.00001), embeddingDim: 16 };
    const batch = 2100;
    // The engine's plans for this batch include big tiles and split-K weight gradients.
    assert.ok(planGemm(256, 512, batch).splits > 1);
    assert.equal(planGemm(batch, 512, 367).tile !== "32x32", true);
    const cpu = await createCpuEngine({ spec, maxBatch: batch, seed: 2, threads: 2 });
    const gpu = await createGpuEngine({ spec, maxBatch: batch, seed: 2 });
    try {
      const chunk = randomChunk(spec, batch, batch, 4, false);
      const want = await cpu.traceStep(chunk, { learningRate: 0.1 });
      const got = await gpu.traceStep(chunk, { learningRate: 0.1 });
      const close = (name: string, g: Float32Array, w: Float32Array) => {
        let scale = 0;
        for (const v of w) scale = Math.max(scale, Math.abs(v));
        for (let i = 0; i < w.length; i++) {
          assert.ok(
            Math.abs(g[i] - w[i]) <= 1e-6 + 1e-4 * scale + 2e-3 * Math.abs(w[i]),
            `${name}[${i}] is ${g[i]}, expected ${w[i]}`,
          );
        }
      };
      close("probabilities", got.probabilities, want.probabilities);
      // 2100 rows: the loss is summed over 3 workgroups, then their partials in order.
      close("loss", Float32Array.of(got.loss), Float32Array.of(want.loss));
      for (const part of ["bottom", "top"] as const) {
        want.gradients[part].forEach((w, l) => {
          close(`${part}[${l}].weight grad`, got.gradients[part][l].weight, w.weight);
          close(`${part}[${l}].bias grad`, got.gradients[part][l].bias, w.bias);
        });
      }
    } finally {
      await cpu.dispose();
      await gpu.dispose();
    }
  },
});
