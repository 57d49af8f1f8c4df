/**
 * A naive float64 DLRM (forward, backward, gradients) written straight from the definition in
 * `fixtures/FORMAT.md`: the test oracle for shapes the golden fixtures do not cover.
 */
import type { BatchChunk } from "../engine/batch.ts";
import type { LinearParams, Params } from "../engine/params.ts";
import type { ModelSpec } from "../engine/spec.ts";

/** Probabilities, loss and gradients of the first batch of `chunk`. */
export function referenceStep(
  spec: ModelSpec,
  params: Params,
  chunk: BatchChunk,
): { probabilities: number[]; loss: number; gradients: Params } {
  const B = chunk.batchSize;
  const d = spec.embeddingDim;
  const K = spec.tableRows.length;
  const grads: Params = {
    embeddings: params.embeddings.map((e) => new Float32Array(e.length)),
    bottom: params.bottom.map(zeroLike),
    top: params.top.map(zeroLike),
  };
  const gradE = params.embeddings.map((e) => new Float64Array(e.length));
  const gb = params.bottom.map(zero64), gt = params.top.map(zero64);
  const probabilities: number[] = [];
  let loss = 0;
  for (let s = 0; s < B; s++) {
    const x0 = Array.from(
      chunk.dense.subarray(s * spec.denseFeatures, (s + 1) * spec.denseFeatures),
    );
    const bottomActs = mlpForward(params.bottom, x0, () => true);
    const x = bottomActs.at(-1)!;
    const vectors = [x];
    for (let t = 0; t < K; t++) {
      const e = new Array(d).fill(0);
      for (let j = chunk.offsets[t][s]; j < chunk.offsets[t][s + 1]; j++) {
        for (let q = 0; q < d; q++) e[q] += params.embeddings[t][chunk.indices[t][j] * d + q];
      }
      vectors.push(e);
    }
    const r = [...x];
    for (let i = 1; i <= K; i++) {
      for (let j = 0; j < i; j++) r.push(dot(vectors[i], vectors[j]));
    }
    const topActs = mlpForward(params.top, r, (l) => l < params.top.length - 1);
    const z = topActs.at(-1)![0];
    const p = 1 / (1 + Math.exp(-z));
    probabilities.push(p);
    const y = chunk.labels[s];
    loss -= (y * Math.log(p) + (1 - y) * Math.log(1 - p)) / B;
    const dr = mlpBackward(
      params.top,
      gt,
      topActs,
      [(p - y) / B],
      (l) => l < params.top.length - 1,
    );
    const dv = vectors.map(() => new Array(d).fill(0));
    for (let q = 0; q < d; q++) dv[0][q] += dr[q];
    let k = d;
    for (let i = 1; i <= K; i++) {
      for (let j = 0; j < i; j++, k++) {
        for (let q = 0; q < d; q++) {
          dv[i][q] += dr[k] * vectors[j][q];
          dv[j][q] += dr[k] * vectors[i][q];
        }
      }
    }
    for (let t = 0; t < K; t++) {
      for (let j = chunk.offsets[t][s]; j < chunk.offsets[t][s + 1]; j++) {
        for (let q = 0; q < d; q++) gradE[t][chunk.indices[t][j] * d + q] += dv[t + 1][q];
      }
    }
    const dx = dv[0].map((g, q) => (x[q] > 0 ? g : 0));
    mlpBackward(params.bottom, gb, bottomActs, dx, () => true);
  }
  gradE.forEach((g, t) => grads.embeddings[t].set(g));
  const copy = (dst: LinearParams[], src: { weight: Float64Array; bias: Float64Array }[]) =>
    src.forEach((g, l) => {
      dst[l].weight.set(g.weight);
      dst[l].bias.set(g.bias);
    });
  copy(grads.bottom, gb);
  copy(grads.top, gt);
  return { probabilities, loss, gradients: grads };
}

function zeroLike(l: LinearParams): LinearParams {
  return { weight: new Float32Array(l.weight.length), bias: new Float32Array(l.bias.length) };
}
function zero64(l: LinearParams) {
  return { weight: new Float64Array(l.weight.length), bias: new Float64Array(l.bias.length) };
}
function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Activations of every layer, input first. */
function mlpForward(layers: LinearParams[], input: number[], relu: (l: number) => boolean) {
  const acts = [input];
  layers.forEach((layer, l) => {
    const x = acts[l];
    const m = layer.bias.length, n = x.length;
    const y = Array.from({ length: m }, (_, o) => {
      let s = layer.bias[o];
      for (let i = 0; i < n; i++) s += layer.weight[o * n + i] * x[i];
      return relu(l) ? Math.max(0, s) : s;
    });
    acts.push(y);
  });
  return acts;
}

/** Accumulates gradients; `dy` is the gradient of the last layer's output (post-activation). */
function mlpBackward(
  layers: LinearParams[],
  grads: { weight: Float64Array; bias: Float64Array }[],
  acts: number[][],
  dy: number[],
  relu: (l: number) => boolean,
): number[] {
  let g = dy;
  for (let l = layers.length - 1; l >= 0; l--) {
    const y = acts[l + 1], x = acts[l];
    const n = x.length;
    const gz = g.map((v, o) => (relu(l) && y[o] <= 0 ? 0 : v));
    const gx = new Array(n).fill(0);
    gz.forEach((v, o) => {
      grads[l].bias[o] += v;
      for (let i = 0; i < n; i++) {
        grads[l].weight[o * n + i] += v * x[i];
        gx[i] += v * layers[l].weight[o * n + i];
      }
    });
    g = gx;
  }
  return g;
}
