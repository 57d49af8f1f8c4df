/**
 * The exact float32 arithmetic of the WGSL piece `engine/gpu/kernels/exact_f32.ts` against
 * JavaScript's (float64, then `Math.fround`) on random bit patterns: normal, subnormal, huge and
 * tiny operands, quotients that overflow or underflow, and the gradient quantizer's residual.
 *
 * @module
 */
import assert from "node:assert/strict";
import { quantizeLevel } from "../engine/quant.ts";
import { KernelHarness } from "../engine/gpu/kernel_harness.ts";
import { EXACT_F32_WGSL } from "../engine/gpu/kernels/exact_f32.ts";
import type { KernelSource } from "../engine/gpu/pipelines.ts";
import { Rng } from "../engine/rng.ts";
import { findTestAdapter } from "./gpu_setup.ts";

const found = await findTestAdapter();

/** out = (divRn(a, b), addRn(a, b), residualRn(a, r, s), levelOf(a, s, n)) per element. */
const EXACT_PROBE: KernelSource = {
  name: "exact_f32_probe",
  bindings: ["read", "read", "read", "read", "rw"],
  code: /* wgsl */ `
${EXACT_F32_WGSL}
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> r: array<i32>;
@group(0) @binding(3) var<storage, read> s: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let i = id.x;
  if (i >= arrayLength(&a)) { return; }
  out[4u * i] = divRn(a[i], b[i]);
  out[4u * i + 1u] = addRn(a[i], b[i]);
  out[4u * i + 2u] = residualRn(a[i], r[i], s[i]);
  out[4u * i + 3u] = f32(levelOf(a[i], s[i], 127));
}
`,
};

const u32 = new Uint32Array(1), f32 = new Float32Array(u32.buffer);
const fromBits = (bits: number) => ((u32[0] = bits), f32[0]);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]);

/** A random finite float32: any exponent, subnormals and zeros included. */
function randomFloat(rng: Rng): number {
  for (;;) {
    const bits = (rng.int(0x10000) << 16 | rng.int(0x10000)) >>> 0;
    if ((bits & 0x7f800000) !== 0x7f800000) return fromBits(bits);
  }
}

Deno.test({
  name: "exact_f32 divides, adds and takes residuals as float64 then fround does",
  ignore: found.adapter === null,
  fn: async () => {
    const rng = new Rng(11, 3);
    const count = 20000;
    const a = new Float32Array(count), b = new Float32Array(count);
    const r = new Int32Array(count), s = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const kind = i % 4;
      a[i] = randomFloat(rng);
      // Same-binade pairs make cancellations; the rest span every exponent.
      b[i] = kind === 0 ? Math.fround(a[i] * (1 + (rng.next() - 0.5) * 1e-6)) : randomFloat(rng);
      if (b[i] === 0) b[i] = 1;
      // A residual's scale: |a| up to 2^28 s, the level near a / s as the quantizer finds it.
      const scale = Math.fround(Math.abs(a[i]) / ((0.5 + rng.next()) * 2 ** (kind * 7)));
      s[i] = Number.isFinite(scale) && scale > 0 ? scale : 1;
      const level = Math.round(a[i] / s[i]);
      r[i] = Math.max(-32768, Math.min(32767, level + (kind === 3 ? rng.int(3) - 1 : 0)));
    }
    const h = await KernelHarness.create();
    try {
      h.setIterations([{ s0: 0, rows: 0 }]);
      const out = h.storage(4 * count);
      const k = h.bind(EXACT_PROBE, [h.storage(a), h.storage(b), h.storage(r), h.storage(s), out]);
      const encoder = h.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      h.useIteration(pass, 0);
      h.dispatch(pass, k, Math.ceil(count / 64));
      pass.end();
      h.device.queue.submit([encoder.finish()]);
      const got = await h.read(out, 4 * count);
      const misses: string[] = [];
      const check = (what: string, i: number, g: number, want: number) => {
        if (bitsOf(g) !== bitsOf(Math.fround(want)) && misses.length < 5) {
          misses.push(
            `${what}(${a[i]}, ${what === "residual" ? `${r[i]}, ${s[i]}` : b[i]}): ` +
              `got ${g}, want ${Math.fround(want)}`,
          );
        }
      };
      for (let i = 0; i < count; i++) {
        check("div", i, got[4 * i], a[i] / b[i]);
        check("add", i, got[4 * i + 1], a[i] + b[i]);
        check("residual", i, got[4 * i + 2], a[i] - r[i] * s[i]);
        check("level", i, got[4 * i + 3], quantizeLevel(a[i], s[i], 127) || 0);
      }
      assert.deepEqual(misses, []);
    } finally {
      h.destroy();
    }
  },
});

/** out = subF64Rn(w, d) per element, d as float64 bits (lo, hi). */
const SUB_F64_PROBE: KernelSource = {
  name: "sub_f64_probe",
  bindings: ["read", "read", "rw"],
  code: /* wgsl */ `
${EXACT_F32_WGSL}
@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> d: array<vec2u>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  let i = id.x;
  if (i >= arrayLength(&w)) { return; }
  out[i] = subF64Rn(w[i], d[i].x, d[i].y);
}
`,
};

Deno.test({
  name: "exact_f32 subtracts a float64 from a float32 as JavaScript's Float32Array -= does",
  ignore: found.adapter === null,
  fn: async () => {
    const rng = new Rng(13, 4);
    const count = 20000;
    const w = new Float32Array(count), d = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      w[i] = randomFloat(rng);
      const r = rng.next();
      switch (i % 6) {
        case 0: // near w: cancellation
          d[i] = w[i] * (1 + (r - 0.5) * 2 ** -(20 + rng.int(40)));
          break;
        case 1: // an SGD step: lr * gradient, far below w
          d[i] = w[i] * (r - 0.5) * 2 ** -rng.int(60);
          break;
        case 2: // far above w
          d[i] = w[i] * (r + 0.5) * 2 ** rng.int(60);
          break;
        case 3: // a float32 value
          d[i] = randomFloat(rng);
          break;
        case 4: // zeros and signs
          d[i] = [0, -0, 5e-324, -5e-324, 1e-310][rng.int(5)];
          if (rng.next() < 0.5) w[i] = rng.next() < 0.5 ? 0 : -0;
          break;
        default: {
          // Just past halfway to w's neighbour: the float64 rounding lands on the midpoint,
          // which the float32 rounding then breaks to even (a single rounding would not).
          const ulp = Math.abs(fromBits(bitsOf(w[i]) & 0x7f800000)) * 2 ** -23;
          d[i] = (rng.next() < 0.5 ? -1 : 1) * (ulp / 2) * (1 + 2 ** -52 * (rng.int(3) - 1));
        }
      }
    }
    const h = await KernelHarness.create();
    try {
      h.setIterations([{ s0: 0, rows: 0 }]);
      const out = h.storage(count);
      const bits = new Uint32Array(d.buffer);
      const k = h.bind(SUB_F64_PROBE, [h.storage(w), h.storage(bits), out]);
      const encoder = h.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      h.useIteration(pass, 0);
      h.dispatch(pass, k, Math.ceil(count / 64));
      pass.end();
      h.device.queue.submit([encoder.finish()]);
      const got = await h.read(out, count);
      const misses: string[] = [];
      const want = new Float32Array(w);
      for (let i = 0; i < count; i++) {
        want[i] -= d[i];
        if (bitsOf(got[i]) !== bitsOf(want[i]) && misses.length < 5) {
          misses.push(`${w[i]} - ${d[i]}: got ${got[i]}, want ${want[i]}`);
        }
      }
      assert.deepEqual(misses, []);
    } finally {
      h.destroy();
    }
  },
});
