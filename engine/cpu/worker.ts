/**
 * A helper thread of the CPU engine: runs its share of every step in lockstep with the main
 * thread (see `program.ts`). Messages: `setup`, `initTables`, `run`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { initTable } from "../params.ts";
import type { QuantConfig } from "../quant.ts";
import type { ModelSpec } from "../spec.ts";
import { BARRIER_WORDS, BarrierAbortedError, SpinBarrier } from "./barrier.ts";
import type { PactState } from "./cpu_engine.ts";
import { planLayout } from "./layout.ts";
import { type TablePlan, tableViews } from "./table_store.ts";
import { CpuProgram } from "./program.ts";
import type { RunOutputs, RunRequest } from "./run_request.ts";
import { instantiateKernels } from "./wasm.ts";
import { blasMatrixKernels } from "./blas.ts";
import { openBlas } from "./blas_library.ts";
import type { PackedEmbeddings } from "../model_file.ts";
import { PackedGather } from "./packed_tables.ts";
import { TILE_QUEUE_WORDS } from "./tile_queue.ts";

/** Messages the main thread sends. */
export type WorkerRequest =
  | {
    type: "setup";
    module: WebAssembly.Module;
    memory: WebAssembly.Memory;
    control: SharedArrayBuffer;
    spec: ModelSpec;
    maxBatch: number;
    thread: number;
    threads: number;
    quant: QuantConfig | null;
    scales: Float32Array;
    tableMemories: WebAssembly.Memory[];
    tablePlan: TablePlan;
    pact: PactState | null;
    /** The BLAS library to open for the matrix products, or null for the WebAssembly kernels. */
    blasLibrary: string | null;
    /** Packed tables read in place of FP32 ones (inference only), or null. */
    packed: PackedEmbeddings | null;
  }
  | { type: "initTables"; seed: number; tables: number[] }
  // The request itself: the helper runs it as it came, with nothing copied.
  | ({ type: "run" } & RunRequest);

let program: CpuProgram | undefined;
/** Helpers fill no outputs (only thread 0 does): one empty object for every run. */
const NO_OUTPUTS: RunOutputs = {};
let barrier: SpinBarrier | undefined;
let tables: Float32Array[] = [];
let spec: ModelSpec | undefined;

self.onmessage = async (event: MessageEvent<WorkerRequest>) => {
  const msg = event.data;
  try {
    if (msg.type === "setup") {
      const kernels = await instantiateKernels(msg.module, msg.memory);
      const tableKernels = await Promise.all(
        msg.tableMemories.map((m) => instantiateKernels(msg.module, m)),
      );
      barrier = new SpinBarrier(new Int32Array(msg.control, 0, BARRIER_WORDS), msg.threads);
      const views = tableViews(msg.tablePlan, msg.tableMemories);
      tables = views.tables;
      spec = msg.spec;
      program = new CpuProgram({
        kernels,
        memory: msg.memory,
        layout: planLayout(msg.spec, msg.maxBatch, msg.pact !== null),
        spec: msg.spec,
        tables,
        barrier,
        tiles: new Int32Array(msg.control, BARRIER_WORDS * 4, TILE_QUEUE_WORDS),
        thread: msg.thread,
        threads: msg.threads,
        quant: msg.quant,
        scales: msg.scales,
        quantTables: views.copies,
        tableKernels,
        tablePlan: msg.tablePlan,
        pact: msg.pact,
        matrix: msg.blasLibrary === null
          ? undefined
          : blasMatrixKernels(openBlas(msg.blasLibrary), msg.memory, kernels),
        packed: msg.packed &&
          new PackedGather(msg.packed, msg.spec.tableRows, msg.spec.embeddingDim),
      });
      self.postMessage({ type: "ready" });
    } else if (msg.type === "initTables") {
      for (const t of msg.tables) initTable(tables[t], spec!.tableRows[t], msg.seed, t);
      self.postMessage({ type: "ready" });
    } else if (msg.type === "run") {
      program!.run(msg, NO_OUTPUTS);
    }
  } catch (error) {
    // A failing helper must not leave the main thread spinning at a barrier.
    barrier?.abort();
    self.postMessage({
      type: "error",
      aborted: error instanceof BarrierAbortedError,
      message: String((error as Error)?.stack ?? error),
    });
  }
};
