/**
 * Bitonic sort of the batch's embedding indices in blocks of {@linkcode EMBEDDING_SORT_BLOCK}
 * keys held in workgroup memory: the first and last steps of sorting each table's indices by row.
 * Keys are `(row, bag)`: sorted, each row's occurrences lie together in index order, so the
 * sorted update applies them in the CPU engine's order. Each table has a segment of `p` keys
 * (a power of two; `keys[t * p + i]`), its unused tail filled with `(~0, ~0)`, which sorts last.
 *
 * With `build` set, the kernel first makes the keys from the batch's indices and offsets (the bag
 * of index j: the sample whose bag holds j, each bag marking its own indices) and sorts every
 * block by the stages k = kFirst .. kLast; without it, it loads the keys and finishes stage
 * k = kFirst = kLast with the steps j < block / 2 (the larger steps being
 * {@linkcode EMBEDDING_SORT_STEP}'s).
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import { BAG_OF_WGSL } from "./bags.ts";
import { ITER_WGSL } from "./iter.ts";

/** Keys per workgroup (16 KiB of workgroup memory). */
export const EMBEDDING_SORT_BLOCK = 2048;

/** Compare-exchanges a lane does per step (256 lanes, two keys a pair). */
const PAIRS = EMBEDDING_SORT_BLOCK / 512;

/** WGSL: one step's compare-exchanges of a lane, loads first, written out per pair. */
const PAIR_STEPS = [
  ...Array.from({ length: PAIRS }, (_, r) =>
    [
      `let q${r} = ${r * 256}u + li;`,
      `let at${r} = ((q${r} & ~(j - 1u)) << 1u) | (q${r} & (j - 1u));`,
      `let x${r} = s[at${r}];`,
      `let y${r} = s[at${r} + j];`,
    ].join(" ")),
  ...Array.from(
    { length: PAIRS },
    (_, r) =>
      `if (greater(x${r}, y${r}) == ((((base + at${r}) & (g.p - 1u)) & k) == 0u)) {` +
      ` s[at${r}] = y${r}; s[at${r} + j] = x${r}; }`,
  ),
].join("\n      ");

/** Uniform words: tables, p, kFirst, kLast, build. Bindings: uniform, dir, indices, offsets, keys. */
export const EMBEDDING_SORT_LOCAL: KernelSource = {
  name: "embedding_sort_local",
  bindings: ["uniform", "read", "read", "read", "rw"],
  code: /* wgsl */ `
${ITER_WGSL}
${BAG_OF_WGSL}
struct G { tables: u32, p: u32, kFirst: u32, kLast: u32, build: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> g: G;
@group(0) @binding(1) var<storage, read> dir: array<vec4u>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> keys: array<vec2u>;

const BLOCK = ${EMBEDDING_SORT_BLOCK}u;
var<workgroup> s: array<vec2u, ${EMBEDDING_SORT_BLOCK}>;

fn greater(x: vec2u, y: vec2u) -> bool {
  return x.x > y.x || (x.x == y.x && x.y > y.y);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) w: vec3u) {
  let total = g.tables * g.p;
  let base = w.x * BLOCK;
  for (var r = 0u; r < BLOCK / 256u; r++) {
    let i = r * 256u + li;
    let e = base + i;
    var v = vec2u(0xffffffffu, 0xffffffffu);
    if (e < total) {
      if (g.build != 0u) {
        let t = e / g.p;
        let info = dir[t];
        let ob = info.y + it.s0;
        let j = offsets[ob] + e % g.p;
        if (j < offsets[ob + it.rows]) { v = vec2u(indices[info.x + j], 0u); }
      } else {
        v = keys[e];
      }
    }
    s[i] = v;
  }
  if (g.build != 0u) {
    workgroupBarrier();
    // Each key's bag: one search for the block's first bag per table, then a lane per bag marks
    // the bag's keys (a search per key cost a chain of dependent loads per key).
    let tEnd = min(g.tables, (base + BLOCK - 1u) / g.p + 1u);
    for (var t = base / g.p; t < tEnd; t++) {
      let ob = dir[t].y + it.s0;
      let a = offsets[ob];
      let lo = a + max(base, t * g.p) - t * g.p;
      let to = min(offsets[ob + it.rows], a + min(base + BLOCK, (t + 1u) * g.p) - t * g.p);
      if (lo < to) {
        let first = bagOf(ob, lo);
        for (var r = first + li; r < it.rows; r += 256u) {
          let start = offsets[ob + r];
          if (start >= to) { break; }
          let stop = min(offsets[ob + r + 1u], to);
          for (var j = max(start, lo); j < stop; j++) { s[t * g.p + j - a - base].y = r; }
        }
      }
    }
  }
  workgroupBarrier();
  for (var k = g.kFirst; k <= g.kLast; k = k << 1u) {
    for (var j = min(k >> 1u, BLOCK >> 1u); j > 0u; j = j >> 1u) {
      // A lane's pairs of a step are disjoint: all their loads first, so that they are in flight
      // together rather than each waiting behind the previous pair's stores (written out: a
      // private array indexed in a loop may live in slow local memory).
      ${PAIR_STEPS}
      workgroupBarrier();
    }
  }
  for (var r = 0u; r < BLOCK / 256u; r++) {
    let i = r * 256u + li;
    if (base + i < total) { keys[base + i] = s[i]; }
  }
}
`,
};
