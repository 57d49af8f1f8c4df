/**
 * A plain streaming copy, `dst[i] = src[i]` in vec4s: the bandwidth yardstick that benchmarks
 * hold other memory-bound kernels (scale finding) against. Not part of training.
 *
 * @module
 */

/** Invocations per workgroup of {@linkcode STREAM_COPY_WGSL}. */
export const STREAM_COPY_WORKGROUP = 256;

/** vec4s each invocation copies (grid-stride), so a dispatch stays within 65,535 workgroups. */
export const STREAM_COPY_PER_INVOCATION = 4;

/** The copy kernel; binding 0 = src, 1 = dst (same length, in vec4s), auto layout. */
export const STREAM_COPY_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4f>;

@compute @workgroup_size(${STREAM_COPY_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) n: vec3u) {
  let stride = n.x * ${STREAM_COPY_WORKGROUP}u;
  let count = arrayLength(&src);
  for (var i = id.x; i < count; i += stride) { dst[i] = src[i]; }
}
`;
