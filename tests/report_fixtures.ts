/**
 * Synthetic run results for the report and regression tests: shaped like the runner's
 * results (method, `quantization`, `postTraining`, `experiments`), deterministic, and able to
 * carry each optional field (raw timing samples, weight histograms, communication bytes) or
 * lack it.
 *
 * @module
 */
import { Rng } from "../engine/rng.ts";
import { kaggleSpec } from "../engine/spec.ts";
import { histogramOf } from "../record/schema_extra.ts";
import { summarize as summary } from "../record/stats.ts";

/** Options of {@linkcode fakeRun}. */
export interface FakeRun {
  name: string;
  method?: string;
  embeddingBits?: number | null;
  mlpBits?: number | null;
  scalePeriod?: number;
  postTraining?: boolean;
  experiments?: string[];
  seed?: number;
  epochs?: number;
  iterations?: number;
  evalEvery?: number;
  /** Test accuracy and AUC at the end (the curve rises towards them). */
  accuracy?: number;
  auc?: number;
  /** Median ms per iteration of each phase. */
  ms?: Partial<Record<"scale" | "forward" | "backward" | "communication" | "update", number>>;
  status?: string;
  error?: string;
  /** Record raw per-iteration timings (`timingSamples`). */
  raw?: boolean;
  /** Record weight histograms. */
  histograms?: boolean;
  /** Record communication bytes for this many workers. */
  workers?: number;
  sparse?: boolean;
  gradBits?: number;
  /** Fraction of the paper's table rows (default 0.001). */
  tableScale?: number;
}

const PHASES = ["scale", "forward", "backward", "communication", "update"] as const;

/** A run result (as JSON) with the given features. */
export function fakeRun(o: FakeRun): Record<string, unknown> {
  const seed = o.seed ?? 1;
  const rng = new Rng(seed, o.name.length, 77);
  const iterations = o.iterations ?? 200;
  const evalEvery = o.evalEvery ?? 50;
  const epochs = o.epochs ?? 1;
  const perEpoch = iterations / epochs;
  const warmup = 20;
  const method = o.method ?? "fp32";
  const float = method === "fp32" || method === "ptq";
  const quantization = float ? null : {
    embeddingBits: o.embeddingBits === undefined ? 4 : o.embeddingBits,
    mlpBits: o.mlpBits === undefined ? 4 : o.mlpBits,
    mlpGranularity: "channel",
    quantizeBias: false,
    scalePeriod: o.scalePeriod ?? 200,
    gatheredRowsOnly: method !== "hawq",
  };
  const ms = { scale: 0, forward: 3, backward: 6, communication: 0, update: 0.3, ...o.ms };
  const samples: Record<string, number[]> = {};
  for (const p of PHASES) {
    samples[p] = Array.from({ length: iterations }, (_, i) => {
      if (ms[p] === 0) return 0;
      const warm = i < warmup ? 3 : 1;
      const spike = rng.next() < 0.02 ? 4 : 1;
      return ms[p] * warm * spike * (1 + 0.03 * rng.normal());
    });
  }
  const timed = (a: number[]) => a.slice(warmup);
  const totals = Array.from(
    { length: iterations },
    (_, i) => PHASES.reduce((s, p) => s + samples[p][i], 0),
  );
  const accuracy = o.accuracy ?? 0.75;
  const auc = o.auc ?? 0.74;
  const curve = [];
  for (let it = evalEvery; it <= iterations; it += evalEvery) {
    const f = it / iterations;
    curve.push({
      iteration: it,
      epoch: it / perEpoch,
      accuracy: accuracy - 0.01 * (1 - f) + 0.0001 * rng.normal(),
      auc: auc - 0.02 * (1 - f) + 0.0001 * rng.normal(),
      logLoss: 0.52 + 0.05 * (1 - f),
      trainLoss: 0.5 + 0.06 * (1 - f),
    });
  }
  if (o.postTraining) {
    const last = curve.at(-1)!;
    curve.push({
      ...last,
      epoch: epochs,
      accuracy: accuracy - 0.005,
      auc: auc - 0.01,
      trainLoss: null,
    });
  }
  const last = curve.at(-1);
  const status = o.status ?? "ok";
  const spec = kaggleSpec(0.001);
  const run: Record<string, unknown> = {
    schemaVersion: 1,
    suite: "kaggle",
    config: {
      name: o.name,
      method,
      experiments: o.experiments ?? ["table3"],
      quantization,
      qatFromEpoch: 0,
      postTraining: o.postTraining ? { embeddingBits: 4, mlpBits: 4, quantizeBias: true } : null,
      budget: { seconds: 300, memoryBytes: 0 },
      arch: "kaggle",
      tableScale: o.tableScale ?? 0.001,
      engine: "cpu",
      threads: 1,
      batchSize: 128,
      testBatchSize: 4096,
      learningRate: 0.1,
      epochs,
      trainSamples: perEpoch * 128,
      testSamples: 4000,
      evalEvery,
      chunkIterations: 250,
      warmupIterations: warmup,
      seed,
      data: { kind: "synthetic", clickRate: 0.25 },
      ...(o.workers
        ? {
          workers: o.workers,
          compression: {
            sparse: o.sparse ?? false,
            embeddingBits: o.gradBits ?? 32,
            mlpBits: o.gradBits ?? 32,
          },
        }
        : {}),
    },
    spec,
    status,
    ...(o.error ? { error: o.error } : {}),
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:00:10.000Z",
    environment: {
      deno: "2.9.6",
      v8: "15.0",
      typescript: "6.0.3",
      os: "linux",
      arch: "x86_64",
      cpu: "Test CPU (2 cores)",
      cores: 2,
      memoryBytes: 25e9,
      engine: { name: "cpu", device: "Test CPU", threads: 1, details: { kernels: "wasm-simd128" } },
    },
    iterations: status === "ok" ? iterations : 0,
    timing: {
      phases: Object.fromEntries(
        PHASES.map((p) => [p, summary(status === "ok" ? timed(samples[p]) : [])]),
      ),
      total: summary(status === "ok" ? timed(totals) : []),
      wallMsPerIteration: ms.forward + ms.backward + ms.update + ms.scale,
      samplesPerSecond: 128 / ((ms.forward + ms.backward + ms.update + ms.scale) / 1000),
    },
    memory: {
      peakRssBytes: 150e6 + (method === "hawq" ? 8e6 : 0),
      engineBytes: 85e6,
      parameterBytes: 4065860,
      modelFileBytes: float && !o.postTraining ? 4065860 : 527300,
    },
    curve: status === "ok" ? curve : [],
    ...(status === "ok" && last
      ? {
        final: { accuracy: last.accuracy, auc: last.auc, logLoss: last.logLoss },
        best: {
          accuracy: Math.max(...curve.map((c) => c.accuracy)),
          auc: Math.max(...curve.map((c) => c.auc)),
        },
      }
      : {}),
    ceiling: { accuracy: 0.8035, auc: 0.8229, logLoss: 0.4314 },
  };
  if (o.raw && status === "ok") {
    run.timingSamples = { warmup, phases: samples };
  }
  if (o.histograms && status === "ok") {
    const hists = [];
    for (const it of [0, iterations / 2, iterations]) {
      const spread = 0.05 + 0.05 * it / iterations;
      const w = Array.from({ length: 4000 }, () => spread * rng.normal());
      hists.push(
        histogramOf(w, 40, {
          tensor: "table 6",
          iteration: it,
          epoch: it / perEpoch,
          kind: "weights",
        }),
      );
      const bits = quantization?.embeddingBits;
      if (bits) {
        const n = 2 ** (bits - 1) - 1;
        const s = Math.max(...w.map(Math.abs)) / n;
        const q = w.map((x) => Math.max(-n - 1, Math.min(n, Math.round(x / s))) * s);
        hists.push(
          histogramOf(q, 40, {
            tensor: "table 6",
            iteration: it,
            epoch: it / perEpoch,
            kind: "quantized",
            bits,
          }),
        );
      }
    }
    run.weightHistograms = hists;
  }
  if (o.workers && status === "ok") {
    const mlp = 1_903_940;
    const emb = o.sparse ? 106_496 : 2_161_000_000 * 0.001;
    const f = (o.gradBits ?? 32) / 32;
    run.communication = {
      workers: o.workers,
      bytesPerIteration: {
        total: (mlp + emb) * f + 208,
        embedding: emb * f,
        mlp: mlp * f,
        scales: 208,
      },
      compression: o.sparse ? `sparse${o.gradBits === 8 ? " + int8" : ""}` : "none",
    };
  }
  return run;
}

/** The default set: the Table 2/3/5 runs, two repeats of FP32, and optional extras. */
export function fakeSuite(options: { extras?: boolean } = {}): Record<string, unknown>[] {
  const extras = options.extras ?? false;
  const runs = [
    fakeRun({ name: "fp32", experiments: ["table2", "table3"], raw: extras, histograms: extras }),
    fakeRun({ name: "fp32", seed: 2, experiments: ["table2", "table3"], accuracy: 0.751 }),
    fakeRun({ name: "ptq-int4", method: "ptq", postTraining: true, accuracy: 0.749 }),
    fakeRun({ name: "hawq-int4", method: "hawq", scalePeriod: 1, ms: { scale: 10 }, raw: extras }),
    fakeRun({
      name: "dqrm-emb4",
      method: "dqrm",
      mlpBits: null,
      experiments: ["table2", "table3"],
      accuracy: 0.752,
    }),
    fakeRun({
      name: "dqrm-emb8",
      method: "dqrm",
      embeddingBits: 8,
      mlpBits: null,
      experiments: ["table2"],
    }),
    fakeRun({
      name: "dqrm-int4",
      method: "dqrm",
      experiments: ["table3", "table5"],
      ms: { scale: 0.05 },
      raw: extras,
      histograms: extras,
    }),
    fakeRun({
      name: "dqrm-int4-p1",
      method: "dqrm",
      scalePeriod: 1,
      experiments: ["table5"],
      ms: { scale: 4 },
    }),
    fakeRun({
      name: "t9-dqrm-int4",
      method: "dqrm",
      epochs: 4,
      iterations: 400,
      experiments: ["table9"],
    }),
  ];
  if (extras) {
    runs.push(
      fakeRun({ name: "dp4-none", method: "dqrm", workers: 4, experiments: ["table4"] }),
      fakeRun({
        name: "dp4-sparse",
        method: "dqrm",
        workers: 4,
        sparse: true,
        experiments: ["table4"],
      }),
      fakeRun({
        name: "dp4-sparse-int8",
        method: "dqrm",
        workers: 4,
        sparse: true,
        gradBits: 8,
        experiments: ["table4"],
      }),
      fakeRun({
        name: "hawq-int4-full",
        method: "hawq",
        scalePeriod: 1,
        tableScale: 1,
        status: "could-not-finish",
        error: "needs 4.32 GB for its tables, over the memory budget",
      }),
    );
  }
  return runs;
}

/** Writes runs into `dir` (repeats of one name go to sub-folders `seedN/`). */
export async function writeFakeResults(
  dir: string,
  runs: readonly Record<string, unknown>[],
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const r of runs) {
    const c = r.config as { name: string; seed: number };
    const sub = c.seed === 1 ? dir : `${dir}/seed${c.seed}`;
    await Deno.mkdir(sub, { recursive: true });
    await Deno.writeTextFile(`${sub}/${c.name}.json`, JSON.stringify(r, null, 1));
  }
  await Deno.writeTextFile(`${dir}/suite.json`, JSON.stringify({ name: "kaggle", runs: [] }));
}
