/**
 * The bandwidth yardstick of the GPU benchmarks: a vec4 streaming copy (`kernels/stream_copy.ts`)
 * timed on a device of its own.
 *
 * @module
 */
import { requestGpuDevice } from "../engine/gpu/device.ts";
import {
  STREAM_COPY_PER_INVOCATION,
  STREAM_COPY_WGSL,
  STREAM_COPY_WORKGROUP,
} from "../engine/gpu/kernels/stream_copy.ts";
import { summarize } from "../record/stats.ts";

/** Median GPU time of a vec4 streaming copy of 512 MiB (or what the device binds) into another. */
export async function measureStreamCopy(): Promise<{ mib: number; ms: number; gbs: number }> {
  const gpu = await requestGpuDevice();
  const device = gpu.device;
  try {
    if (!gpu.timestamps) throw new Error("Expected the adapter to have timestamp-query");
    const bytes = Math.min(
      512 * 2 ** 20,
      Math.floor(device.limits.maxStorageBufferBindingSize / 16) * 16,
    );
    const usage = GPUBufferUsage.STORAGE;
    const src = device.createBuffer({ size: bytes, usage });
    const dst = device.createBuffer({ size: bytes, usage });
    const module = device.createShaderModule({ code: STREAM_COPY_WGSL });
    const pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: src } }, {
        binding: 1,
        resource: { buffer: dst },
      }],
    });
    const repeats = 20;
    const querySet = device.createQuerySet({ type: "timestamp", count: repeats * 2 });
    const resolve = device.createBuffer({
      size: repeats * 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const read = device.createBuffer({
      size: repeats * 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const groups = Math.min(
      65535,
      Math.ceil(bytes / 16 / STREAM_COPY_WORKGROUP / STREAM_COPY_PER_INVOCATION),
    );
    const encoder = device.createCommandEncoder();
    for (let i = 0; i < repeats; i++) {
      const pass = encoder.beginComputePass({
        timestampWrites: {
          querySet,
          beginningOfPassWriteIndex: 2 * i,
          endOfPassWriteIndex: 2 * i + 1,
        },
      });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(groups);
      pass.end();
    }
    encoder.resolveQuerySet(querySet, 0, repeats * 2, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, read, 0, repeats * 16);
    device.queue.submit([encoder.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const stamps = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    const ms: number[] = [];
    for (let i = 2; i < repeats; i++) ms.push(Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6);
    const median = summarize(ms).median;
    return { mib: bytes / 2 ** 20, ms: median, gbs: (2 * bytes) / 1e6 / median };
  } finally {
    device.destroy();
  }
}
