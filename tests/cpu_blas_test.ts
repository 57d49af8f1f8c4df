import assert from "node:assert/strict";
import { createCpuEngine } from "../engine/cpu/mod.ts";
import { BLAS_BLOCK, BLAS_ROW_TILE } from "../engine/cpu/blas.ts";
import {
  blasAvailable,
  blasLibrariesToTest,
  DEFAULT_BLAS_LIBRARIES,
  openBlas,
  openBlasCoreType,
} from "../engine/cpu/blas_library.ts";
import { cpuFlags } from "../engine/environment.ts";
import { initParams, type Params } from "../engine/params.ts";
import type { ModelSpec } from "../engine/spec.ts";
import { DataParallelTrainer } from "../comm/data_parallel.ts";
import { SimulatedDataParallel } from "../comm/simulated.ts";
import { referenceStep } from "./reference_dlrm.ts";
import { assertClose, assertParamsClose, randomChunk, testSpec } from "./test_models.ts";

const BLAS = blasAvailable();
const SKIP = BLAS ? "" : " (skipped: no BLAS library could be opened)";
/** Every library the BLAS path is tested with here: a oneDNN and an OpenBLAS, those that open. */
const LIBRARIES = blasLibrariesToTest();
const OPENBLAS = blasAvailable("libopenblas.so.0");
const ONEDNN = DEFAULT_BLAS_LIBRARIES.find((f) => f.startsWith("libdnnl") && blasAvailable(f));

/**
 * Layers wider than one BLAS block, none a multiple of it (nor of 4), so that threads share
 * whole blocks and a short last block of every product.
 */
const WIDE: ModelSpec = testSpec([17, 5, 40], 7, [13, 2 * BLAS_BLOCK + 9, BLAS_BLOCK + 3, 7], [
  3 * BLAS_BLOCK + 5,
  11,
  1,
]);

/** A batch whose forward products are shared by row tiles, the last one short. */
const LARGE = 2 * BLAS_ROW_TILE + 37;

for (const [batch, multiHot] of [[13, false], [13, true], [LARGE, true]] as const) {
  for (const library of LIBRARIES) {
    Deno.test({
      name:
        `BLAS path (${library}) matches a float64 reference on wide odd layers (batch ${batch}, ${
          multiHot ? "multi" : "one"
        }-hot)`,
      fn: async () => {
        const params = initParams(WIDE, 3);
        const chunk = randomChunk(WIDE, batch, batch, 13, multiHot);
        const want = referenceStep(WIDE, params, chunk);
        const engine = await createCpuEngine({
          spec: WIDE,
          params,
          maxBatch: batch,
          threads: 2,
          kernels: "blas",
          blasLibrary: library,
        });
        try {
          assert.equal(engine.info.details.cpuKernels, "blas");
          const got = await engine.traceStep(chunk, { learningRate: 0.1 });
          assertClose("probabilities", got.probabilities, want.probabilities);
          assertClose("loss", [got.loss], [want.loss]);
          assertParamsClose("gradients", got.gradients, want.gradients);
        } finally {
          await engine.dispose();
        }
      },
    });
  }
}

for (const batch of [24, LARGE]) {
  for (const library of LIBRARIES) {
    Deno.test({
      name:
        `BLAS path (${library}) results are bit-identical for 1, 2 and 3 threads (batch ${batch})`,
      fn: async () => {
        const chunk = randomChunk(WIDE, batch, batch * 4, 5, true);
        const finals: Params[] = [];
        const losses: Float32Array[] = [];
        for (const threads of [1, 2, 3]) {
          const engine = await createCpuEngine({
            spec: WIDE,
            seed: 9,
            maxBatch: batch,
            threads,
            kernels: "blas",
            blasLibrary: library,
          });
          try {
            const r = await engine.trainChunk(chunk, { learningRate: 0.05 });
            losses.push(r.loss);
            finals.push(await engine.readParams());
          } finally {
            await engine.dispose();
          }
        }
        for (let i = 1; i < finals.length; i++) {
          assert.deepEqual(losses[i], losses[0]);
          assert.deepEqual(finals[i], finals[0]);
        }
      },
    });
  }
}

Deno.test("kernels: blas names the library it could not open; auto falls back to wasm", async () => {
  const missing = "/nonexistent/libblas-for-test.so";
  await assert.rejects(
    createCpuEngine({
      spec: WIDE,
      seed: 1,
      maxBatch: 4,
      threads: 1,
      kernels: "blas",
      blasLibrary: missing,
    }),
    (e: Error) => e.message.includes(missing) && e.message.includes("oneDNN or a CBLAS"),
  );
  const engine = await createCpuEngine({
    spec: WIDE,
    seed: 1,
    maxBatch: 4,
    threads: 1,
    kernels: "auto",
    blasLibrary: missing,
  });
  try {
    assert.equal(engine.info.details.cpuKernels, "wasm");
    assert.match(String(engine.info.details.kernels), /^wasm/);
  } finally {
    await engine.dispose();
  }
});

Deno.test("OpenBLAS is asked for AVX-512 kernels where the CPU has them, unless the user chose", () => {
  const sapphireRapids = new Set([
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "amx_tile",
  ]);
  assert.equal(openBlasCoreType(sapphireRapids, undefined), "SKYLAKEX");
  assert.equal(openBlasCoreType(sapphireRapids, "Haswell"), null);
  assert.equal(openBlasCoreType(new Set(["avx2", "fma"]), undefined), null);
  assert.equal(openBlasCoreType(new Set(["avx512f"]), undefined), null);
  assert.equal(openBlasCoreType(null, undefined), null);
});

Deno.test({
  name: `OpenBLAS loads AVX-512 kernels on an AVX-512 CPU and leaves no core setting behind${
    OPENBLAS ? "" : " (skipped: libopenblas.so.0 cannot be opened)"
  }`,
  ignore: !OPENBLAS || !openBlasCoreType(cpuFlags(), Deno.env.get("OPENBLAS_CORETYPE")),
  fn: () => {
    const blas = openBlas("libopenblas.so.0");
    try {
      assert.match(blas.description, /SkylakeX|Cooperlake|SapphireRapids/i);
      assert.equal(Deno.env.get("OPENBLAS_CORETYPE"), undefined);
    } finally {
      blas.close();
    }
  },
});

Deno.test({
  name: `kernels: auto picks BLAS when the library opens and records it${SKIP}`,
  ignore: !BLAS,
  fn: async () => {
    const engine = await createCpuEngine({
      spec: WIDE,
      seed: 1,
      maxBatch: 4,
      threads: 1,
      kernels: "auto",
    });
    try {
      assert.equal(engine.info.details.cpuKernels, "blas");
      assert.match(String(engine.info.details.kernels), /^blas: /);
    } finally {
      await engine.dispose();
    }
  },
});

for (const library of LIBRARIES) {
  Deno.test(`opening ${library} leaves the thread-count settings as they were (child processes inherit them)`, () => {
    const names = ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"];
    const before = names.map((n) => Deno.env.get(n));
    try {
      for (const value of [undefined, "3"]) {
        for (const n of names) {
          if (value === undefined) Deno.env.delete(n);
          else Deno.env.set(n, value);
        }
        const blas = openBlas(library);
        blas.close();
        for (const n of names) assert.equal(Deno.env.get(n), value, n);
      }
    } finally {
      names.forEach((n, i) => {
        if (before[i] === undefined) Deno.env.delete(n);
        else Deno.env.set(n, before[i]);
      });
    }
  });
}

Deno.test({
  name: `oneDNN is the default library where it opens, and multiplies on the calling thread only${
    ONEDNN ? "" : " (skipped: no libdnnl.so.3 or libdnnl.so.2 opens)"
  }`,
  ignore: !ONEDNN || Deno.env.get("DQRM_BLAS_LIB") !== undefined,
  fn: async () => {
    // In a process of its own that inherits OMP_NUM_THREADS=2: a team of threads would spend
    // more CPU time than wall time on its products; one thread cannot.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./blas_one_thread_child.ts", import.meta.url).pathname],
      env: { OMP_NUM_THREADS: "2" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.match(r.description, /^oneDNN \d+\.\d+\.\d+ \(dnnl_sgemm/);
    assert.equal(r.value, 0.25 * 1536);
    assert.ok(r.cpu <= 1.25 * r.wall + 0.03, `CPU ${r.cpu} s in ${r.wall} s of wall time`);
  },
});

Deno.test({
  name:
    `BLAS path: real data-parallel workers record it and equal simulated ones bit for bit${SKIP}`,
  ignore: !BLAS,
  fn: async () => {
    const chunk = randomChunk(WIDE, 24, 24 * 4, 8, true);
    const engine = await createCpuEngine({
      spec: WIDE,
      maxBatch: 24,
      seed: 4,
      threads: 1,
      kernels: "blas",
    });
    const dp = await DataParallelTrainer.create({
      spec: WIDE,
      workers: 2,
      maxBatch: 24,
      seed: 4,
      kernels: "blas",
    });
    try {
      assert.equal(dp.kernels.cpuKernels, "blas");
      const a = await new SimulatedDataParallel(engine, 2).trainChunk(chunk, {
        learningRate: 0.05,
      });
      const b = await dp.trainChunk(chunk, { learningRate: 0.05 });
      assert.deepEqual(Array.from(a.loss), Array.from(b.loss));
      assert.deepEqual(await dp.readParams(), await engine.readParams());
    } finally {
      dp.dispose();
      await engine.dispose();
    }
  },
});
