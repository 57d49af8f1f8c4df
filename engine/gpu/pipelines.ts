/**
 * Compiles each kernel once: shader module, explicit bind group layouts and compute pipeline.
 *
 * Every kernel has two bind groups: group 0 holds its own buffers (`bindings`), group 1 the
 * per-iteration uniform block, bound with a dynamic offset so that one chunk's iterations all
 * live in one uniform buffer written once.
 *
 * @module
 */

/** How a kernel binds one buffer of group 0. */
export type BindingKind = "uniform" | "read" | "rw";

/** A kernel: WGSL source, its entry point `main`, and its group 0 bindings in order. */
export interface KernelSource {
  name: string;
  code: string;
  bindings: readonly BindingKind[];
}

/** A compiled kernel. */
export interface Kernel {
  source: KernelSource;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/** Bytes of one iteration's uniform block (the dynamic offset alignment). */
export const ITER_STRIDE = 256;

/** Compiles kernels once per (name, source) and hands out bind groups. */
export class PipelineCache {
  readonly #device: GPUDevice;
  readonly #cache = new Map<string, Kernel>();
  readonly iterLayout: GPUBindGroupLayout;

  constructor(device: GPUDevice) {
    this.#device = device;
    this.iterLayout = device.createBindGroupLayout({
      label: "iteration",
      entries: [{
        binding: 0,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: 32 },
      }],
    });
  }

  /** The compiled kernel of `source`. */
  get(source: KernelSource): Kernel {
    const key = `${source.name}\n${source.code}`;
    let k = this.#cache.get(key);
    if (k) return k;
    const device = this.#device;
    const module = device.createShaderModule({ label: source.name, code: source.code });
    const layout = device.createBindGroupLayout({
      label: source.name,
      entries: source.bindings.map((kind, binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: {
          type: kind === "uniform" ? "uniform" : kind === "read" ? "read-only-storage" : "storage",
        },
      })),
    });
    const pipeline = device.createComputePipeline({
      label: source.name,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout, this.iterLayout] }),
      compute: { module, entryPoint: "main" },
    });
    k = { source, pipeline, layout };
    this.#cache.set(key, k);
    return k;
  }

  /** Number of compiled kernels. */
  get size(): number {
    return this.#cache.size;
  }
}

/** A buffer binding: a whole buffer, or a byte range of one. */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

/** A kernel with its group 0 bound: what a dispatch needs. */
export interface BoundKernel {
  kernel: Kernel;
  group: GPUBindGroup;
}

/** Binds `buffers` (in the kernel's binding order) to `kernel`. */
export function bindKernel(device: GPUDevice, kernel: Kernel, buffers: Binding[]): BoundKernel {
  if (buffers.length !== kernel.source.bindings.length) {
    throw new RangeError(
      `Expected ${kernel.source.bindings.length} bindings for ${kernel.source.name} but found ${buffers.length}`,
    );
  }
  const group = device.createBindGroup({
    label: kernel.source.name,
    layout: kernel.layout,
    entries: buffers.map((b, binding) => ({
      binding,
      resource: b instanceof GPUBuffer ? { buffer: b } : b,
    })),
  });
  return { kernel, group };
}
