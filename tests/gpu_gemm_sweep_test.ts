/**
 * The GEMM sweep's GPU pieces on small sizes: every candidate's WGSL, the max-|difference| check
 * kernel, the FMA peak
 * measurement, and a sweep of one split-K product (candidates that keep the rule's summation
 * order must match it exactly, the others within tolerance; the GEMM_TUNED line it prints pastes
 * into the tuned table and plans the product). Needs a WebGPU adapter; without one the tests are
 * reported as ignored.
 */
import assert from "node:assert/strict";
import {
  measureFmaPeak,
  sweepGemm,
  type SweepResult,
  timePasses,
  tunedLine,
  tunedPick,
} from "../cli/gemm_sweep.ts";
import { gemmLoadOrder, gemmPlanKernel, planGemm } from "../engine/gpu/gemm_plan.ts";
import type { TunedGemm } from "../engine/gpu/gemm_tuned.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { GEMM_BIAS, GEMM_K_ROWS } from "../engine/gpu/kernels/gemm.ts";
import { GEMM_CANDIDATES } from "../engine/gpu/gemm_candidates.ts";
import { MAX_ABS_DIFF } from "../engine/gpu/kernels/max_abs_diff.ts";
import { Rng } from "../engine/rng.ts";
import { findTestAdapter } from "./gpu_setup.ts";

const ignore = (await findTestAdapter()).adapter === null;

Deno.test({
  name: "every sweep candidate's WGSL validates (each layout, scalar and vec4 loads, k-major)",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    try {
      for (const name of GEMM_CANDIDATES) {
        for (
          const [ak, bk, vec4] of [[true, true, false], [true, false, true], [false, false, true]]
        ) {
          const plan = { tile: name, splits: 1 };
          const source = gemmPlanKernel(plan, ak, bk, { a: vec4, b: vec4 });
          // Parsing and validation only: no pipeline, so no driver compile.
          const module = h.device.createShaderModule({ code: source.code });
          const errors = (await module.getCompilationInfo()).messages.filter((m) =>
            m.type === "error"
          );
          assert.deepEqual(errors.map((e) => `${e.lineNum}: ${e.message}`), [], source.name);
        }
      }
    } finally {
      h.destroy();
    }
  },
});

Deno.test({
  name: "max_abs_diff folds the largest |x - y| and |y| per slot, NaN as the largest",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    try {
      h.setIterations([{ s0: 0, rows: 0 }]);
      const n = 5000;
      const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
      const y = x.slice();
      y[4321] += 0.25;
      y[17] = -3;
      const nan = x.slice();
      nan[2500] = NaN;
      const out = h.storage(6);
      const bx = h.storage(x), by = h.storage(y), bn = h.storage(nan);
      const kernels = [
        h.bind(MAX_ABS_DIFF, [h.uniform([n, 0]), bx, by, out]),
        h.bind(MAX_ABS_DIFF, [h.uniform([n, 1]), bx, bx, out]),
        h.bind(MAX_ABS_DIFF, [h.uniform([n, 2]), bn, bx, out]),
      ];
      await timePasses(h, [{
        reps: 1,
        record: (p) => kernels.forEach((k) => h.dispatch(p, k, 7)),
      }]);
      const got = await h.read(out, 6);
      assert.equal(got[0], Math.abs(Math.fround(x[17] - y[17])));
      assert.equal(got[1], 3);
      assert.equal(got[2], 0);
      assert.equal(got[3], Math.max(...x.map(Math.abs)));
      assert.ok(Number.isNaN(got[4]), `a NaN difference folds to NaN bits, found ${got[4]}`);
    } finally {
      h.destroy();
    }
  },
});

Deno.test({
  name: "FMA peak and a split-K sweep: order-keeping candidates identical, GEMM_TUNED line plans",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const h = await KernelHarness.create();
    try {
      h.setIterations([{ s0: 0, rows: 1100 }]);
      const peak = await measureFmaPeak(h, { workgroups: 4, minUs: 100, maxLoops: 64 });
      assert.ok(peak.tflops > 0 && peak.loops >= 8, JSON.stringify(peak));
      // A weight gradient: C (96 x 80) = dYᵀ X over the batch's 1100 rows, split by the rule.
      const m = 40, n = 70, k = 1100;
      const rng = new Rng(5, 1);
      const rand = (len: number) => Float32Array.from({ length: len }, () => rng.next() - 0.5);
      const fields = {
        m,
        n,
        flags: GEMM_K_ROWS | GEMM_BIAS,
        aRow: 1,
        aCol: m,
        bRow: n,
        bCol: 1,
        cRow: n,
      };
      const rule = planGemm(m, n, k);
      assert.equal(rule.tile, "32x32");
      assert.ok(rule.splits > 1);
      const buffers = {
        a: h.storage(rand(m * k)),
        b: h.storage(rand(k * n)),
        bias: h.storage(rand(n)),
        mask: h.storage(16),
        reference: h.storage(m * n),
        candidate: h.storage(m * n),
        scratch: h.storage(64 * m * n),
      };
      const product = { label: "test dW", m, n, k, fields };
      const tiles = ["32x32_4x4_k16", "64x64_8x8_k32"];
      // The clock is settled once, after every candidate compiled, before any timing.
      let settled = 0;
      const settle = () => (settled++, Promise.resolve());
      const r = await sweepGemm(h, buffers, product, { reps: 1, tiles, settle });
      assert.equal(settled, 1);
      // Both tiles, scalar and vec4 loads, the rule's 8 splits (fewer would leave under 64
      // workgroups, more would leave a split under 128 of k).
      assert.equal(rule.splits, 8);
      assert.equal(r.candidates.length, 2 * 2);
      const same = r.candidates.filter((c) => c.sameOrder);
      // 32x32_4x4_k16 is the rule's tile: with its splits, the same sums in the same order; the
      // k32 tile's splits start elsewhere (160 k each, not 144): other sums, within tolerance.
      assert.deepEqual(same.map((c) => [c.tile, c.splits]), [
        ["32x32_4x4_k16", rule.splits],
        ["32x32_4x4_k16", rule.splits],
      ]);
      for (const c of same) assert.equal(c.maxAbsDiff, 0);
      for (const c of r.candidates) {
        assert.ok(c.maxAbsReference > 0 && c.us > 0, JSON.stringify(c));
        assert.ok(c.ok, `rejected: ${JSON.stringify(c)}`);
      }
      assert.ok(r.best);
      // The line pastes into the tuned table, and planGemm then takes it.
      const slow = { ...r, rule: { ...r.rule, us: 2 * r.best.us } };
      const line = tunedLine({ ...slow, current: { ...r.current, us: 2 * r.best.us } });
      assert.ok(line);
      const entry = line.split(" //")[0].trim().replace(/,$/, "").replace(/(\w+):/g, '"$1":');
      const tuned = JSON.parse(`{${entry}}`) as Record<string, TunedGemm>;
      const layout = gemmLoadOrder(fields);
      const want = {
        tile: r.best.tile,
        splits: r.best.splits,
        ...(r.best.vec4 ? { vec4: true } : {}),
      };
      assert.deepEqual(planGemm(m, n, k, { layout, tuned }), want);
      // No line when the best is not 3 % faster than the rule (and the current plan is the rule's).
      const current = { ...r.current, us: r.best.us };
      assert.equal(tunedLine({ ...r, rule: { ...r.rule, us: r.best.us }, current }), null);
      // A current tuned plan (rolled loop) that the best does not beat by 3 % stays, loop and all.
      const kept = tunedLine({
        ...slow,
        current: { tile: "64x64_8x4_k16", splits: 1, vec4: true, loop: true, us: r.best.us },
      });
      assert.ok(
        kept?.includes(`{ tile: "64x64_8x4_k16", splits: 1, vec4: true, loop: true }`),
        kept ?? "",
      );
    } finally {
      h.destroy();
    }
  },
});

Deno.test("a swept product none of whose candidates ran keeps the engine's plan in the tuned lines", () => {
  const r: SweepResult = {
    key: "16384x512x367/akbk",
    label: "kaggle b16384 forward top[0] 367->512",
    m: 16384,
    n: 512,
    k: 367,
    gflop: 6.16,
    rule: { tile: "128x128", splits: 1, us: 282 },
    current: { tile: "128x64_8x8_k8s", splits: 1, vec4: true, us: 206 },
    best: null,
    rejected: 0,
    candidates: [],
  };
  assert.deepEqual(tunedPick(r), { tile: "128x64_8x8_k8s", splits: 1, vec4: true, us: 206 });
  assert.match(tunedLine(r)!, /"16384x512x367\/akbk": \{ tile: "128x64_8x8_k8s", splits: 1/);
  assert.equal(tunedPick({ ...r, current: { ...r.current, us: 280 } }), null);
});
