/**
 * Dispatch grids larger than one dimension allows: WebGPU's default limit of workgroups per
 * dimension, and the grid that lays a count of workgroups out in rows of that many.
 *
 * @module
 */

/** Largest workgroup count of one dispatch dimension (WebGPU's default limit). */
export const MOST_PER_DIMENSION = 65535;

/**
 * The grid of `groups` workgroups: `x` up to {@linkcode MOST_PER_DIMENSION}, `y` rows of it, so a
 * kernel numbers its workgroup `wg.y * MOST_PER_DIMENSION + wg.x` (or `wg.y * n.x + wg.x`) and
 * leaves out those past `groups`. No workgroups: `[0, 0]`.
 *
 * @example
 * ```ts
 * import { gridOf } from "./grid.ts";
 * console.assert(gridOf(10).join() === "10,1");
 * console.assert(gridOf(70000).join() === "65535,2");
 * ```
 */
export function gridOf(groups: number): [number, number] {
  const x = Math.min(groups, MOST_PER_DIMENSION);
  return [x, x === 0 ? 0 : Math.ceil(groups / x)];
}
