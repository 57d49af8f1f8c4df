/**
 * The Worker of `cli/bench_gpu_readback.ts` that owns a WebGPU device of its own: on each
 * `read` message it copies 4 bytes into a staging buffer, maps it and replies with the value
 * and the time its `mapAsync` took; so the main thread measures a readback whose wait and sleep
 * happen on another thread.
 *
 * @module
 */

/** A message to the worker: one readback of the value `marker`. */
export interface ReadRequest {
  marker: number;
}

/** The worker's answer: the value read back and the worker's own times (ms). */
export interface ReadReply {
  marker: number;
  mapMs: number;
  error?: string;
}

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<ReadRequest>) => void) | null;
  postMessage(message: ReadReply | { ready: true; error?: string }): void;
};

const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
const device = adapter ? await adapter.requestDevice() : null;
const src = device?.createBuffer({
  size: 16,
  usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
});
const staging = device?.createBuffer({
  size: 16,
  usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
});

self.onmessage = async (e) => {
  if (!device || !src || !staging) {
    self.postMessage({ marker: -1, mapMs: 0, error: "the worker found no WebGPU adapter" });
    return;
  }
  device.queue.writeBuffer(src, 0, new Uint32Array([e.data.marker]));
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(src, 0, staging, 0, 4);
  device.queue.submit([encoder.finish()]);
  const t0 = performance.now();
  await staging.mapAsync(GPUMapMode.READ);
  const mapMs = performance.now() - t0;
  const marker = new Uint32Array(staging.getMappedRange(0, 4))[0];
  staging.unmap();
  self.postMessage({ marker, mapMs });
};
self.postMessage({ ready: true, ...(device ? {} : { error: "no WebGPU adapter" }) });
