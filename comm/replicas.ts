/**
 * Checking that data-parallel replicas are identical: a checksum of every parameter's bits.
 *
 * @module
 */
import type { CpuGradientAccess } from "../engine/cpu/mod.ts";
import type { Params } from "../engine/params.ts";

/** Raised when the replicas of a data-parallel run differ. */
export class ReplicaDivergenceError extends Error {
  /** `checksums` by rank; `where` says when it was found (e.g. "after chunk 3"). */
  constructor(checksums: readonly string[], where?: string) {
    super(
      `Data-parallel replicas diverged${where ? ` ${where}` : ""}: expected equal parameter ` +
        `checksums but found ${checksums.join(", ")} (by rank)`,
    );
    this.name = "ReplicaDivergenceError";
  }
}

function fnv(h: number, words: Uint32Array): number {
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x01000193);
  return h;
}

/**
 * A 64-bit checksum (two 32-bit FNV-1a lanes, hex) of every parameter's bits: the real MLP
 * weights and biases and every table. Equal replicas give equal checksums.
 */
export function replicaChecksum(access: CpuGradientAccess): string {
  let a = 0x811c9dc5 | 0, b = 0x01234567 | 0;
  const mem = new Uint32Array(access.memory.buffer);
  for (const l of access.layers) {
    for (let o = 0; o < l.outputs; o++) {
      const row = mem.subarray(l.w + o * l.inP, l.w + o * l.inP + l.inputs);
      a = fnv(a, row);
      b = fnv(b ^ o, row);
    }
    a = fnv(a, mem.subarray(l.b, l.b + l.outputs));
  }
  for (const t of access.tables) {
    const words = new Uint32Array(t.buffer, t.byteOffset, t.length);
    a = fnv(a, words);
    b = fnv(b + 1, words);
  }
  const hex = (x: number) => (x >>> 0).toString(16).padStart(8, "0");
  return hex(a) + hex(b);
}

/** {@linkcode replicaChecksum} of parameters read from an engine (a GPU replica's). */
export function paramsChecksum(params: Params): string {
  const layers = [...params.bottom, ...params.top];
  const floats = layers.reduce((n, l) => n + l.weight.length + l.bias.length, 0);
  const memory = new Float32Array(floats);
  let at = 0;
  const access: CpuGradientAccess = {
    memory,
    layers: layers.map((l) => {
      const outputs = l.bias.length, inputs = l.weight.length / outputs;
      const w = at;
      memory.set(l.weight, at);
      at += l.weight.length;
      memory.set(l.bias, at);
      at += outputs;
      return { inputs, outputs, inP: inputs, w, b: w + l.weight.length, gw: 0, gb: 0 };
    }),
    dt: 0,
    ldt: 0,
    dimP: 0,
    tables: params.embeddings,
  };
  return replicaChecksum(access);
}
