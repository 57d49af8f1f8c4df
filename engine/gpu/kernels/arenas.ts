/**
 * WGSL helpers over the table arenas bound to a kernel: `K` arena bindings from binding `first`,
 * a switch to read (and write) arena `a` of the bound group, and the segment lookup of a row.
 * Not a kernel: the table kernels include it.
 *
 * @module
 */

/**
 * Declarations and accessors of `k` arenas bound at `first`, `first + 1`, ..., as arrays of
 * `element`: `f32`, or `vec4f` where every row starts on a 4-float boundary (`i` then counts
 * vectors).
 */
export function arenaWgsl(
  k: number,
  first: number,
  writable: boolean,
  element: "f32" | "vec4f" = "f32",
): string {
  const access = writable ? "read_write" : "read";
  const decls = Array.from(
    { length: k },
    (_, i) =>
      `@group(0) @binding(${first + i}) var<storage, ${access}> arena${i}: array<${element}>;`,
  ).join("\n");
  const reads = Array.from({ length: k }, (_, i) => `    case ${i}u: { return arena${i}[i]; }`)
    .join("\n");
  const writes = Array.from({ length: k }, (_, i) => `    case ${i}u: { arena${i}[i] = v; }`)
    .join("\n");
  return /* wgsl */ `
${decls}
fn arenaRead(a: u32, i: u32) -> ${element} {
  switch a {
${reads}
    default: { return ${element}(); }
  }
}
${
    writable
      ? `fn arenaWrite(a: u32, i: u32, v: ${element}) {
  switch a {
${writes}
    default: {}
  }
}`
      : ""
  }
// Index in segs of the segment of row 'row' of a table whose segments are [first, first +
// count). Rows ascend, so the first segment ending after the row holds it.
fn segmentIndexOf(first: u32, count: u32, row: u32) -> u32 {
  var s = first;
  for (; s + 1u < first + count; s++) {
    if (row < segs[s].y) { break; }
  }
  return s;
}
// That segment: vec4(rowStart, rowEnd, arena, offset).
fn segmentOf(first: u32, count: u32, row: u32) -> vec4u {
  return segs[segmentIndexOf(first, count, row)];
}
`;
}
