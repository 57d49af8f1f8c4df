/**
 * Getting a WebGPU device with the limits a model needs.
 *
 * @module
 */

/** Raised when no WebGPU adapter exists (no `navigator.gpu`, or `requestAdapter()` gives none). */
export class NoGpuAdapterError extends Error {
  constructor(detail: string) {
    super(`No WebGPU adapter: ${detail}`);
    this.name = "NoGpuAdapterError";
  }
}

/** The adapter, or null with the reason when there is none. */
export async function findAdapter(): Promise<{ adapter: GPUAdapter | null; reason: string }> {
  const gpu = (navigator as { gpu?: GPU }).gpu;
  if (!gpu) return { adapter: null, reason: "navigator.gpu is undefined" };
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    return adapter
      ? { adapter, reason: "" }
      : { adapter: null, reason: "navigator.gpu.requestAdapter() returned null" };
  } catch (e) {
    return { adapter: null, reason: `requestAdapter() failed: ${(e as Error).message}` };
  }
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|\bwarp\b|basic render/i;

/**
 * The name of a software adapter (a CPU rasteriser: llvmpipe/lavapipe, SwiftShader, WARP), or
 * undefined for a hardware GPU. Such an adapter runs every kernel on the CPU, some hundred times
 * slower than a GPU: fine for correctness, meaningless as a GPU timing.
 *
 * @example
 * ```ts
 * import { softwareAdapterName } from "./device.ts";
 * const lavapipe = { description: "llvmpipe (LLVM 15.0.6, 256 bits)", isFallbackAdapter: true };
 * console.assert(softwareAdapterName(lavapipe) === "llvmpipe (LLVM 15.0.6, 256 bits)");
 * console.assert(softwareAdapterName({ description: "NVIDIA H100" }) === undefined);
 * ```
 */
export function softwareAdapterName(
  info: { description?: string; device?: string; vendor?: string; isFallbackAdapter?: boolean },
): string | undefined {
  const name = [info.description, info.device].find((x) => x && SOFTWARE.test(x));
  if (name) return name;
  if (info.isFallbackAdapter) return info.description || info.device || "a fallback adapter";
  return undefined;
}

/** The one-line warning a tool prints before training on a software adapter. */
export function softwareAdapterWarning(name: string): string {
  return `warning: the WebGPU adapter is software (${name}): it runs on the CPU, far slower ` +
    `than a GPU, so its timings say nothing about GPU speed (results record ` +
    `environment.engine.details.softwareAdapter = true)`;
}

/** A device and what it was created with. */
export interface GpuDevice {
  adapter: GPUAdapter;
  device: GPUDevice;
  /** A description of the adapter, for results. */
  description: string;
  /** Whether `timestamp-query` is enabled. */
  timestamps: boolean;
  /** The adapter's name when it is a software one ({@linkcode softwareAdapterName}). */
  software?: string;
}

/**
 * Requests a device with the adapter's largest buffers and bindings and every storage-buffer
 * binding slot it has, and `timestamp-query` where it exists.
 */
export async function requestGpuDevice(): Promise<GpuDevice> {
  const { adapter, reason } = await findAdapter();
  if (!adapter) throw new NoGpuAdapterError(reason);
  const l = adapter.limits;
  const timestamps = adapter.features.has("timestamp-query");
  // The adapter's most for buffer sizes and bindings (asking costs nothing; the defaults of
  // 256 MiB / 128 MiB are far below a Kaggle table); the caller splits tables to what it got.
  const requiredLimits: Record<string, number> = {
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    // Larger GEMM tiles (gemm_candidates.ts) need more than the default 16 KiB.
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: Math.min(l.maxComputeInvocationsPerWorkgroup, 256),
    maxComputeWorkgroupSizeX: Math.min(l.maxComputeWorkgroupSizeX, 256),
    maxComputeWorkgroupSizeY: Math.min(l.maxComputeWorkgroupSizeY, 256),
  };
  const device = await adapter.requestDevice({
    requiredFeatures: timestamps ? ["timestamp-query"] : [],
    requiredLimits,
  });
  const info = adapter.info;
  const description = [info.description, info.vendor && `vendor ${info.vendor}`]
    .filter(Boolean).join(", ") || "unknown WebGPU adapter";
  const software = softwareAdapterName(info);
  return { adapter, device, description, timestamps, ...(software ? { software } : {}) };
}
