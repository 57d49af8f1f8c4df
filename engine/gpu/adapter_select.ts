/**
 * One GPU per process: choosing which of several adapters Deno's WebGPU opens.
 *
 * Deno's `navigator.gpu.requestAdapter()` (wgpu-core 29 underneath) takes no adapter index: it
 * enumerates every adapter of the backends in `DENO_WEBGPU_BACKEND`, sorts them by device type for
 * the power preference (a stable sort) and returns the first. Among identical GPUs it therefore
 * always opens the first one the Vulkan loader lists, and neither Deno nor wgpu-core reads an
 * environment variable that changes that (NVIDIA's Vulkan driver ignores `CUDA_VISIBLE_DEVICES`).
 *
 * What does work is hiding the other devices below WebGPU, in the Vulkan layer chain: Mesa's
 * implicit layer `VK_LAYER_MESA_device_select` (package `mesa-vulkan-drivers`; it sits above any
 * driver, NVIDIA's included) reads
 * - `MESA_VK_DEVICE_SELECT=list`: prints the devices (`GPU i: vendor:device "name" type`) and
 *   exits: how {@linkcode listAdapters} enumerates them, in a child process;
 * - `MESA_VK_DEVICE_SELECT=vendor:device`, or `DRI_PRIME=pci-dddd_bb_dd_f` (with
 *   `VK_EXT_pci_bus_info`, which identical GPUs need): the default device;
 * - `MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE=1`: list only the default device.
 * The loader reads them when the instance is created, which Deno does at the process's first
 * `requestAdapter()`, so {@linkcode selectGpu} sets them in this process before that call.
 *
 * GPU index `i` is the `i`-th device of that list (the loader's order: device type, then PCI
 * address). Without the layer only index 0, the default adapter, can be opened.
 *
 * @module
 */

/** Environment variable of Open MPI giving a rank's index among the ranks of its host. */
export const LOCAL_RANK_ENV = "OMPI_COMM_WORLD_LOCAL_RANK";

/** One device of the device-select layer's list. */
export interface ListedAdapter {
  /** Position in the list: the GPU index. */
  index: number;
  /** PCI vendor id (`0x10de` NVIDIA; lavapipe reports `0x10005`). */
  vendorId: number;
  /** PCI device id. */
  deviceId: number;
  /** The device name, as `adapter.info.description` reports it. */
  name: string;
  /** The device type as the layer prints it (`discrete GPU`, `CPU`, ...). */
  type: string;
}

/** A GPU index that does not name an adapter this process can open. */
export class GpuIndexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GpuIndexError";
  }
}

const LIST_LINE = /^\s*GPU (\d+): ([0-9a-f]+):([0-9a-f]+) "(.*)" (.*?)\s*$/;

/**
 * The devices in the device-select layer's `list` output, or null when `text` holds no list (the
 * layer is not installed or is disabled).
 *
 * @example
 * ```ts
 * import { parseDeviceSelectList } from "./adapter_select.ts";
 * const text = 'selectable devices:\n  GPU 0: 10005:0 "llvmpipe (LLVM 15.0.6, 256 bits)" CPU\n';
 * const [lavapipe] = parseDeviceSelectList(text)!;
 * console.assert(lavapipe.vendorId === 0x10005 && lavapipe.type === "CPU");
 * ```
 */
export function parseDeviceSelectList(text: string): ListedAdapter[] | null {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.trim() === "selectable devices:");
  if (start < 0) return null;
  const out: ListedAdapter[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = LIST_LINE.exec(line);
    if (!m) continue;
    out.push({
      index: Number(m[1]),
      vendorId: parseInt(m[2], 16),
      deviceId: parseInt(m[3], 16),
      name: m[4],
      type: m[5],
    });
  }
  return out;
}

/**
 * The adapters the Vulkan device-select layer lists, or null without the layer: asks a child Deno
 * for an adapter with `MESA_VK_DEVICE_SELECT=list`, which makes the layer print and exit.
 */
export async function listAdapters(): Promise<ListedAdapter[] | null> {
  const env: Record<string, string> = { MESA_VK_DEVICE_SELECT: "list" };
  // The child must not inherit a selection that hides devices from the list.
  const clear = ["MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE", "DRI_PRIME"];
  const inherited = Deno.env.toObject();
  for (const k of clear) delete inherited[k];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", "--no-lock", "await navigator.gpu?.requestAdapter()"],
    env: { ...inherited, ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + "\n" + new TextDecoder().decode(out.stderr);
  return parseDeviceSelectList(text);
}

/** One line naming `adapters` for an error message. */
export function describeAdapters(adapters: readonly ListedAdapter[]): string {
  if (!adapters.length) return "none";
  return adapters.map((a) =>
    `[${a.index}] ${a.name} (${a.vendorId.toString(16)}:${a.deviceId.toString(16)}, ${a.type})`
  ).join(", ");
}

/**
 * PCI addresses (`dddd:bb:dd.f`) of the devices with `vendorId:deviceId` in sysfs, in address
 * order: the loader's order among identical GPUs. Empty where sysfs has none.
 */
export function pciAddressesOf(vendorId: number, deviceId: number, root = "/sys/bus/pci/devices") {
  const out: string[] = [];
  try {
    for (const e of Deno.readDirSync(root)) {
      const read = (f: string) => Deno.readTextFileSync(`${root}/${e.name}/${f}`).trim();
      try {
        if (
          parseInt(read("vendor"), 16) === vendorId && parseInt(read("device"), 16) === deviceId
        ) {
          out.push(e.name);
        }
      } catch { /* a device without vendor/device files is no GPU */ }
    }
  } catch { /* no sysfs: no PCI addresses */ }
  return out.sort();
}

/**
 * The environment that makes the device-select layer expose only `adapters[index]`: by
 * `vendor:device` when no other listed device has the same ids, else by PCI address (the `k`-th
 * identical device is the `k`-th in PCI order). Throws a {@linkcode GpuIndexError} when `index`
 * names no listed device or identical devices have no PCI addresses to tell them apart.
 */
export function selectionEnv(
  adapters: readonly ListedAdapter[],
  index: number,
  pciOf: (vendorId: number, deviceId: number) => string[] = pciAddressesOf,
): Record<string, string> {
  const a = adapters.find((x) => x.index === index);
  if (!a) {
    throw new GpuIndexError(
      `Expected a GPU index in [0, ${adapters.length}) but found ${index}: ` +
        `adapters found: ${describeAdapters(adapters)}`,
    );
  }
  const same = adapters.filter((x) => x.vendorId === a.vendorId && x.deviceId === a.deviceId);
  const force = { MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: "1" };
  if (same.length === 1) {
    const ids = `${a.vendorId.toString(16)}:${a.deviceId.toString(16)}`;
    return { ...force, MESA_VK_DEVICE_SELECT: ids };
  }
  const k = same.indexOf(a);
  const pci = pciOf(a.vendorId, a.deviceId);
  if (pci.length !== same.length) {
    throw new GpuIndexError(
      `Expected ${same.length} PCI devices ${a.vendorId.toString(16)}:` +
        `${a.deviceId.toString(16)} to tell GPU ${index} from its twins but found ` +
        `${pci.length} in sysfs: adapters found: ${describeAdapters(adapters)}`,
    );
  }
  // DRI_PRIME's tag: pci-dddd_bb_dd_f.
  const tag = "pci-" + pci[k].replace(/[:.]/g, "_");
  return { ...force, DRI_PRIME: tag };
}

/**
 * The GPU index this process should open: `flag` (from `--gpu-index`) when given, else the local
 * rank of an Open MPI process (one GPU per rank on a multi-GPU host), else undefined (the default
 * adapter, no selection). Throws when either is not a non-negative integer.
 */
export function gpuIndexSetting(
  flag: number | undefined,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): number | undefined {
  if (flag !== undefined) {
    if (!Number.isInteger(flag) || flag < 0) {
      throw new GpuIndexError(`Expected a non-negative integer GPU index but found ${flag}`);
    }
    return flag;
  }
  const local = env(LOCAL_RANK_ENV);
  if (local === undefined) return undefined;
  if (!/^\d+$/.test(local)) {
    throw new GpuIndexError(
      `Expected ${LOCAL_RANK_ENV} to be a non-negative integer but found ` +
        `"${local}"`,
    );
  }
  return Number(local);
}

/** What {@linkcode selectGpu} chose. */
export interface GpuSelection {
  index: number;
  /** The listed device, or null without the device-select layer (index 0: the default adapter). */
  adapter: ListedAdapter | null;
  /** The variables set in this process for the Vulkan loader. */
  env: Record<string, string>;
}

let chosen: GpuSelection | undefined;
let instanceStarted = false;

/** Records that this process has called `requestAdapter()`: the selection is fixed from then on. */
export function markAdapterRequested(): void {
  instanceStarted = true;
}

/**
 * Makes this process's WebGPU open GPU `index` (see the module notes), once, before its first
 * `requestAdapter()`. Without the device-select layer only index 0 (the default adapter) can be
 * opened; any other index throws a {@linkcode GpuIndexError} naming the adapters found.
 */
export async function selectGpu(index: number): Promise<GpuSelection> {
  if (chosen) {
    if (chosen.index === index) return chosen;
    throw new GpuIndexError(
      `Expected GPU index ${chosen.index} (already selected in this ` +
        `process) but found a request for ${index}`,
    );
  }
  if (instanceStarted) {
    throw new GpuIndexError(
      `Expected to select GPU ${index} before this process's first ` +
        `requestAdapter() but an adapter was already requested`,
    );
  }
  const adapters = await listAdapters();
  if (adapters === null) {
    if (index !== 0) {
      instanceStarted = true;
      const only = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
      throw new GpuIndexError(
        `Expected GPU index 0 but found ${index}: adapters found: [0] ` +
          `${only?.info.description || "none"} (without the Vulkan device-select layer ` +
          `VK_LAYER_MESA_device_select, package mesa-vulkan-drivers, WebGPU opens only the ` +
          `default adapter)`,
      );
    }
    chosen = { index, adapter: null, env: {} };
    return chosen;
  }
  const env = selectionEnv(adapters, index);
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  // A selection by PCI address must not be overridden by an inherited explicit one.
  if (!("MESA_VK_DEVICE_SELECT" in env)) Deno.env.delete("MESA_VK_DEVICE_SELECT");
  chosen = { index, adapter: adapters[index], env };
  return chosen;
}

/** The selection made in this process, if any. */
export function gpuSelection(): GpuSelection | undefined {
  return chosen;
}

/**
 * Throws when the adapter WebGPU opened is not the selected one (its description differs from the
 * listed name): the layer ignored the selection.
 */
export function checkSelectedAdapter(selection: GpuSelection, description: string): void {
  const want = selection.adapter;
  if (want && want.name !== description) {
    throw new GpuIndexError(
      `Expected GPU ${selection.index} ("${want.name}") but WebGPU opened "${description}"`,
    );
  }
}
