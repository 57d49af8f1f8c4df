/**
 * The GEMM kernel of `gemm.ts` with k-contiguous operands kept k-contiguous in workgroup memory:
 * a tile row of A (and, when B is k-contiguous too, a tile column of B) is stored as the vec4s
 * the global loads bring (4 consecutive k), and the multiply reads 4 k of a row at once. The
 * kernel of `gemm.ts` transposes such operands on the way in (each vec4 loaded becomes four
 * scalar stores, one per k-row), which costs the K-step an instruction per float stored; here a
 * vec4 loaded is one vec4 stored. The multiply-adds are the same scalar products in the same
 * order (k ascending, splits as in `gemm.ts`): the outputs are identical.
 *
 * For the products whose A is contiguous along k (the forward pass X Wᵀ and the input gradient
 * dY W) loaded as vec4s; B either contiguous along k (loaded and stored as vec4s over k) or along
 * n (vec4s over n, as `gemm.ts` stores them). An invocation computes rows `i * ty + l.y` and the
 * column groups `(j * tx + l.x) * 4` of its workgroup's block, so that neighbouring invocations
 * read neighbouring rows of workgroup memory (each row padded by one vec4 against bank
 * conflicts) and write neighbouring columns of C.
 *
 * @module
 */
import type { KernelSource } from "../pipelines.ts";
import {
  gemmBindingsWgsl,
  gemmMainWgsl,
  gemmStepLoopWgsl,
  type GemmTile,
  gemmTileName,
  type GemmVec4,
  gemmWorkgroup,
  PUT_SCALAR_WGSL,
  PUT_VEC4_WGSL,
} from "./gemm.ts";
import { ITER_WGSL } from "./iter.ts";

/**
 * Whether the k-major kernel serves `tile` with these layouts and loads: A contiguous in k and
 * loaded as vec4s, B loaded as vec4s, the threads loading each tile evenly in vec4s.
 */
export function gemmKMajorFits(tile: GemmTile, aKFast: boolean, vec4: GemmVec4): boolean {
  const [tx, ty] = gemmWorkgroup(tile);
  const threads = tx * ty;
  return aKFast && vec4.a && vec4.b && tile.bk % 4 === 0 && tile.tn % 4 === 0 &&
    (tile.bm * tile.bk / 4) % threads === 0 && (tile.bn * tile.bk / 4) % threads === 0;
}

/**
 * Whether `tile` runs the k-major kernel with these layouts and loads (`vec4` absent: scalar
 * loads): a k-major tile it fits; anything else runs the kernel of `gemm.ts`.
 */
export function gemmRunsKMajor(tile: GemmTile, aKFast: boolean, vec4?: GemmVec4): boolean {
  return tile.kMajor === true && vec4 !== undefined && gemmKMajorFits(tile, aKFast, vec4);
}

/**
 * The k-major kernel for `tile` (see the module; `gemmKMajorFits` must hold), B contiguous in k
 * (`bKFast`) or n, C stored as vec4s where `vec4.c`. Bindings as `gemmKernel`'s.
 */
export function gemmKMajorKernel(
  tile: GemmTile,
  aKFast: boolean,
  bKFast: boolean,
  vec4: GemmVec4,
): KernelSource {
  if (!gemmKMajorFits(tile, aKFast, vec4)) {
    throw new RangeError(
      `Expected A contiguous in k, vec4 loads and an evenly loaded tile for the k-major GEMM, ` +
        `found ${JSON.stringify({ tile, aKFast, vec4 })}`,
    );
  }
  const { bm, bn, tm, tn, bk } = tile;
  const [tx, ty] = gemmWorkgroup(tile);
  const threads = tx * ty;
  const quads = bk / 4; // vec4s of k per row
  const regs: string[] = [], load: string[] = [], store: string[] = [];
  // Register `reg` from vec4 `e` of a k-contiguous operand's tile: row `origin + e / quads` (of
  // `extent`, `stride` floats apart from `base`), 4 k from `kl + (e % quads) * 4`; zeros outside.
  const kFastLoad = (
    reg: string,
    e: string,
    x: "a" | "b",
    origin: string,
    extent: string,
    base: string,
    stride: string,
  ) => [
    `{ let kk = (${e} % ${quads}u) * 4u; let oo = ${e} / ${quads}u; let go = ${origin} + oo; let gk = kl + kk;`,
    `  let v = ${x}[(${base} + min(go, ${extent} - 1u) * ${stride}) / 4u + min(gk, K - 1u) / 4u];`,
    `  ${reg} = select(vec4f(0.0), v, vec4<bool>(go < ${extent}) & (vec4u(gk) + vec4u(0u, 1u, 2u, 3u) < vec4u(kEnd))); }`,
  ];
  // A's row `oo` of the block lands at sa[oo / ty][oo % ty]: the rows of the invocations with
  // l.y = 0, 1, ... side by side.
  for (let r = 0; r < (bm * bk) / 4 / threads; r++) {
    const e = `(li + ${r * threads}u)`;
    regs.push(`var ra${r} = vec4f(0.0);`);
    load.push(...kFastLoad(`ra${r}`, e, "a", "m0", "M", "aBase", "g.aRow"));
    store.push(
      `{ let oo = ${e} / ${quads}u; sa[oo / ${ty}u][oo % ${ty}u][${e} % ${quads}u] = ra${r}; }`,
    );
  }
  for (let r = 0; r < (bn * bk) / 4 / threads; r++) {
    const e = `(li + ${r * threads}u)`;
    regs.push(`var rb${r} = vec4f(0.0);`);
    if (bKFast) {
      // B's column `oo` = (j * tx + x) * 4 + q lands at sb[q][j][x]: an invocation's four
      // columns of a group in four arrays, so that neighbours read neighbouring rows.
      load.push(...kFastLoad(`rb${r}`, e, "b", "n0", "N", "bBase", "g.bCol"));
      store.push(
        `{ let oo = ${e} / ${quads}u; let q4 = oo / 4u; sb[oo % 4u][q4 / ${tx}u][q4 % ${tx}u][${e} % ${quads}u] = rb${r}; }`,
      );
    } else {
      // 4 consecutive columns of one k: sb[k][j][x], columns (j * tx + x) * 4 ...
      load.push(
        `{ let oo = (${e} % ${bn / 4}u) * 4u; let kk = ${e} / ${
          bn / 4
        }u; let go = n0 + oo; let gk = kl + kk;`,
        `  let v = b[(bBase + min(gk, K - 1u) * g.bRow) / 4u + min(go, N - 1u) / 4u];`,
        `  rb${r} = select(vec4f(0.0), v, (vec4u(go) + vec4u(0u, 1u, 2u, 3u) < vec4u(N)) & vec4<bool>(gk < kEnd)); }`,
      );
      store.push(
        `{ let q4 = ${e} % ${bn / 4}u; sb[${e} / ${bn / 4}u][q4 / ${tx}u][q4 % ${tx}u] = rb${r}; }`,
      );
    }
  }
  // The multiply, written out: per vec4 of k, the invocation's rows of A (4 k each), then for
  // each of the 4 k its columns of B as vec4s over 4 columns, and acc[i][j] += a[i][k] * b[j].
  const multiply: string[] = [];
  for (let kq = 0; kq < quads; kq++) {
    const s: string[] = [];
    for (let i = 0; i < tm; i++) s.push(`let a${i} = sa[${i}u][l.y][${kq}u];`);
    if (bKFast) {
      for (let j = 0; j < tn / 4; j++) {
        for (let q = 0; q < 4; q++) s.push(`let b${j}_${q} = sb[${q}u][${j}u][l.x][${kq}u];`);
      }
    }
    for (let kk = 0; kk < 4; kk++) {
      for (let j = 0; j < tn / 4; j++) {
        s.push(
          bKFast
            ? `let v${j}_${kk} = vec4f(b${j}_0[${kk}], b${j}_1[${kk}], b${j}_2[${kk}], b${j}_3[${kk}]);`
            : `let v${j}_${kk} = sb[${kq * 4 + kk}u][${j}u][l.x];`,
        );
      }
      for (let i = 0; i < tm; i++) {
        for (let j = 0; j < tn / 4; j++) s.push(`c${i}_${j} += a${i}[${kk}] * v${j}_${kk};`);
      }
    }
    multiply.push(`{\n      ${s.join("\n      ")}\n    }`);
  }
  const accs: string[] = [], out: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn / 4; j++) {
      accs.push(`var c${i}_${j} = vec4f(0.0);`);
      out.push(`put(m0 + ${i * ty}u + l.y, n0 + (${j * tx}u + l.x) * 4u, c${i}_${j}, M, N, z);`);
    }
  }
  const row = `array<vec4f, ${quads + 1}>`;
  const sb = bKFast
    ? `array<array<array<${row}, ${tx}>, ${tn / 4}>, 4>`
    : `array<array<array<vec4f, ${tx}>, ${tn / 4}>, ${bk}>`;
  const code = /* wgsl */ `
${ITER_WGSL}
${gemmBindingsWgsl({ a: true, b: true, c: vec4.c })}
var<workgroup> sa: array<array<${row}, ${ty}>, ${tm}>;
var<workgroup> sb: ${sb};
${vec4.c ? PUT_VEC4_WGSL : PUT_SCALAR_WGSL}

${
    gemmMainWgsl(
      tile,
      [...accs, ...regs],
      load,
      gemmStepLoopWgsl(bk, store, load, multiply.join("\n    ")),
      out,
    )
  }
`;
  return {
    name: `gemm_${gemmTileName(tile)}_ak${bKFast ? "bk" : "bn"}_a4_b4${vec4.c ? "_c4" : ""}`,
    bindings: ["uniform", "read", "read", "rw", "read", "read"],
    code,
  };
}
