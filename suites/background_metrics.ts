/**
 * A test set's click metrics (accuracy, ROC AUC, log loss) computed off the main thread: a GPU
 * run's evaluation reads the probabilities back and training goes on while a Worker scores them.
 * At the paper's Kaggle scale (3.27M test samples, an evaluation every 10,240 iterations) the
 * metrics took 250-400 ms of each evaluation's ~800 ms on the H200's host.
 *
 * @module
 */
import { type ClickMetrics, clickMetrics } from "../engine/metrics.ts";
import type { MetricsWorkerRequest } from "./metrics_worker.ts";

/** Scores probabilities against fixed labels, on a Worker or (`inline`) on the calling thread. */
export class BackgroundMetrics {
  #labels: Float32Array;
  #worker: Worker | null;
  #waiting = new Map<number, { resolve(m: ClickMetrics): void; reject(e: Error): void }>();
  #next = 0;

  /**
   * `inline`: score on the calling thread (a CPU engine's threads take every core, and a Worker
   * competing with their spin barriers would cost more than it hides).
   */
  constructor(labels: Float32Array, inline: boolean) {
    this.#labels = labels;
    this.#worker = inline ? null : new Worker(new URL("./metrics_worker.ts", import.meta.url), {
      type: "module",
    });
    if (!this.#worker) return;
    this.#worker.postMessage({ labels: labels.slice() } satisfies MetricsWorkerRequest);
    this.#worker.onmessage = (
      event: MessageEvent<{ id: number; metrics?: ClickMetrics; error?: string }>,
    ) => {
      const { id, metrics, error } = event.data;
      const waiting = this.#waiting.get(id)!;
      this.#waiting.delete(id);
      if (metrics) waiting.resolve(metrics);
      else {waiting.reject(
          new Error(`Expected the test metrics but computing them failed: ${error}`),
        );}
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#failAll(
        new Error(`Expected the metrics Worker to run but it failed: ${event.message}`),
      );
    };
  }

  /** The metrics of `probabilities` (taken: the Worker receives their buffer). In call order. */
  score(probabilities: Float32Array): Promise<ClickMetrics> {
    if (!this.#worker) {
      try {
        return Promise.resolve(clickMetrics(this.#labels, probabilities));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    // Only a whole ArrayBuffer of its own can be handed over.
    const buffer = probabilities.buffer instanceof ArrayBuffer && probabilities.byteOffset === 0 &&
        probabilities.buffer.byteLength === probabilities.byteLength
      ? probabilities.buffer
      : probabilities.slice().buffer as ArrayBuffer;
    const id = this.#next++;
    const result = new Promise<ClickMetrics>((resolve, reject) =>
      this.#waiting.set(id, { resolve, reject })
    );
    this.#worker.postMessage(
      { id, probabilities: new Float32Array(buffer) } satisfies MetricsWorkerRequest,
      [buffer],
    );
    return result;
  }

  #failAll(error: Error): void {
    for (const waiting of this.#waiting.values()) waiting.reject(error);
    this.#waiting.clear();
  }

  /** Stops the Worker; scores still waiting fail. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = null;
    this.#failAll(new Error("Expected the test metrics but the run closed before they came"));
  }
}
