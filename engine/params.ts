/**
 * DLRM parameters in the layout of the golden fixtures, and DLRM's initialisation.
 *
 * @module
 */
import { Rng, STREAM } from "./rng.ts";
import type { ModelSpec } from "./spec.ts";

/** One linear layer: `weight` is `out * in` values, row-major (PyTorch's layout). */
export interface LinearParams {
  /** Weights, `out * in` values, row-major. */
  weight: Float32Array;
  /** Biases, `out` values. */
  bias: Float32Array;
}

/** All parameters of a DLRM. */
export interface Params {
  /** Table `t` holds `rows * dim` values, row-major. */
  embeddings: Float32Array[];
  /** Bottom MLP layers, input side first. */
  bottom: LinearParams[];
  /** Top MLP layers, input side first. */
  top: LinearParams[];
}

/**
 * Throws unless `given` holds one layer per entry of `layers`, each of that layer's shape
 * (`outputs * inputs` weights, `outputs` biases).
 */
export function checkLinearShapes(
  layers: readonly { inputs: number; outputs: number }[],
  given: readonly LinearParams[],
): void {
  if (given.length !== layers.length) {
    throw new RangeError(`Expected ${layers.length} layers but found ${given.length}`);
  }
  layers.forEach((l, i) => {
    const p = given[i];
    if (p.weight.length !== l.inputs * l.outputs || p.bias.length !== l.outputs) {
      throw new RangeError(
        `Expected layer ${i} to be ${l.outputs}x${l.inputs} but found ${p.weight.length} weights and ${p.bias.length} biases`,
      );
    }
  });
}

/**
 * Fills `out` with DLRM's initialisation of table `table`: uniform in `[-sqrt(1/n), sqrt(1/n)]`,
 * `n` the table's rows, from the stream `[seed, init, table]`.
 */
export function initTable(out: Float32Array, rows: number, seed: number, table: number): void {
  const fill = tableInitStream(rows, seed, table);
  // In slices, so the fill loop is optimised early rather than by on-stack replacement.
  for (let at = 0; at < out.length; at += 1 << 16) {
    fill(out.subarray(at, Math.min(out.length, at + (1 << 16))));
  }
}

/**
 * {@linkcode initTable}'s values drawn in pieces: each call fills `out` with the stream's next
 * values (the stream does not depend on the slicing).
 */
export function tableInitStream(
  rows: number,
  seed: number,
  table: number,
): (out: Float32Array) => void {
  const bound = Math.sqrt(1 / rows);
  const rng = new Rng(seed, STREAM.init, table);
  return (out) => rng.fillUniform(out, -bound, bound);
}

/**
 * DLRM's initialisation of one linear layer `n -> m`: weights normal with std `sqrt(2/(n+m))`,
 * biases normal with std `sqrt(1/m)`.
 */
export function initLinear(inputs: number, outputs: number, rng: Rng): LinearParams {
  const weight = new Float32Array(inputs * outputs);
  const bias = new Float32Array(outputs);
  const ws = Math.sqrt(2 / (inputs + outputs));
  const bs = Math.sqrt(1 / outputs);
  for (let i = 0; i < weight.length; i++) weight[i] = rng.normal() * ws;
  for (let i = 0; i < bias.length; i++) bias[i] = rng.normal() * bs;
  return { weight, bias };
}

/** DLRM's initialisation of both MLPs from the stream `[seed, init, -1]`. */
export function initMlps(spec: ModelSpec, seed: number): Pick<Params, "bottom" | "top"> {
  const rng = new Rng(seed, STREAM.init, -1);
  const layers = (w: number[]) => w.slice(1).map((m, l) => initLinear(w[l], m, rng));
  return { bottom: layers(spec.bottomMlp), top: layers(spec.topMlp) };
}

/** Initialises every parameter of `spec` (allocating the tables; mind their size). */
export function initParams(spec: ModelSpec, seed: number): Params {
  const embeddings = spec.tableRows.map((rows, t) => {
    const table = new Float32Array(rows * spec.embeddingDim);
    initTable(table, rows, seed, t);
    return table;
  });
  return { embeddings, ...initMlps(spec, seed) };
}

/** Converts plain number arrays (fixture JSON) into {@linkcode Params}. */
export function paramsFromJson(json: {
  embeddings: number[][];
  bottom: { weight: number[]; bias: number[] }[];
  top: { weight: number[]; bias: number[] }[];
}): Params {
  const lin = (l: { weight: number[]; bias: number[] }) => ({
    weight: Float32Array.from(l.weight),
    bias: Float32Array.from(l.bias),
  });
  return {
    embeddings: json.embeddings.map((t) => Float32Array.from(t)),
    bottom: json.bottom.map(lin),
    top: json.top.map(lin),
  };
}
