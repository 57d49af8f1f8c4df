/**
 * The Worker behind {@linkcode BackgroundMetrics}: holds a test set's labels and answers each set
 * of probabilities with its click metrics, in the order they came.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { clickMetrics } from "../engine/metrics.ts";

/** What the Worker is sent: the labels once, then probabilities to score. */
export type MetricsWorkerRequest =
  | { labels: Float32Array }
  | { id: number; probabilities: Float32Array };

let labels: Float32Array | undefined;
self.onmessage = (event: MessageEvent<MetricsWorkerRequest>) => {
  const msg = event.data;
  if ("labels" in msg) {
    labels = msg.labels;
    return;
  }
  try {
    self.postMessage({ id: msg.id, metrics: clickMetrics(labels!, msg.probabilities) });
  } catch (e) {
    self.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e) });
  }
};
