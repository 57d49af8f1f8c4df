/**
 * Tests of one GPU per process (`engine/gpu/adapter_select.ts`): parsing the device-select
 * layer's list, the environment that picks a device (by ids, or by PCI address among identical
 * GPUs), the index setting (flag, Open MPI local rank), and on the local adapter (lavapipe) that
 * index 0 opens it and every other index fails with one line naming the index and the adapters.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  GpuIndexError,
  gpuIndexSetting,
  type ListedAdapter,
  parseDeviceSelectList,
  selectionEnv,
} from "../engine/gpu/adapter_select.ts";
import { ensureXdgRuntimeDir, findTestAdapter } from "./gpu_setup.ts";

const FOUR_H200 = `selectable devices:
  GPU 0: 10de:2335 "NVIDIA H200" discrete GPU
  GPU 1: 10de:2335 "NVIDIA H200" discrete GPU
  GPU 2: 10de:2335 "NVIDIA H200" discrete GPU
  GPU 3: 10de:2335 "NVIDIA H200" discrete GPU
  GPU 4: 10005:0 "llvmpipe (LLVM 15.0.6, 256 bits)" CPU
`;

Deno.test("parseDeviceSelectList reads every listed device and null without a list", () => {
  const list = parseDeviceSelectList("some loader noise\n" + FOUR_H200)!;
  assert.equal(list.length, 5);
  assert.deepEqual(list[1], {
    index: 1,
    vendorId: 0x10de,
    deviceId: 0x2335,
    name: "NVIDIA H200",
    type: "discrete GPU",
  });
  assert.equal(list[4].name, "llvmpipe (LLVM 15.0.6, 256 bits)");
  assert.equal(list[4].type, "CPU");
  assert.equal(parseDeviceSelectList("llvmpipe only, no layer\n"), null);
  assert.deepEqual(parseDeviceSelectList("selectable devices:\n"), []);
});

Deno.test("selectionEnv picks unique ids by vendor:device and twins by PCI address", () => {
  const list = parseDeviceSelectList(FOUR_H200)!;
  const pci = ["0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0"];
  const pciOf = (v: number, d: number) => v === 0x10de && d === 0x2335 ? pci : [];
  assert.deepEqual(selectionEnv(list, 4, pciOf), {
    MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: "1",
    MESA_VK_DEVICE_SELECT: "10005:0",
  });
  assert.deepEqual(selectionEnv(list, 2, pciOf), {
    MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: "1",
    DRI_PRIME: "pci-0000_3a_00_0",
  });
  assert.equal(selectionEnv(list, 0, pciOf).DRI_PRIME, "pci-0000_18_00_0");
  // Twins without their PCI addresses cannot be told apart.
  assert.throws(() => selectionEnv(list, 1, () => pci.slice(1)), /Expected 4 PCI devices/);
});

Deno.test("a GPU index outside the list is one line naming the index and the adapters", () => {
  const list = parseDeviceSelectList(FOUR_H200)!;
  for (const bad of [5, 17]) {
    assert.throws(() => selectionEnv(list, bad, () => []), (e: Error) => {
      assert.ok(e instanceof GpuIndexError);
      assert.ok(!e.message.includes("\n"), e.message);
      assert.match(e.message, new RegExp(`in \\[0, 5\\) but found ${bad}`));
      assert.match(e.message, /\[0\] NVIDIA H200 \(10de:2335, discrete GPU\)/);
      assert.match(e.message, /\[4\] llvmpipe/);
      return true;
    });
  }
  const none: ListedAdapter[] = [];
  assert.throws(() => selectionEnv(none, 0), /in \[0, 0\) but found 0: adapters found: none/);
});

Deno.test("gpuIndexSetting: the flag, else the Open MPI local rank, else none", () => {
  const env = (vars: Record<string, string>) => (n: string) => vars[n];
  assert.equal(gpuIndexSetting(3, env({ OMPI_COMM_WORLD_LOCAL_RANK: "1" })), 3);
  assert.equal(gpuIndexSetting(undefined, env({ OMPI_COMM_WORLD_LOCAL_RANK: "1" })), 1);
  assert.equal(gpuIndexSetting(undefined, env({})), undefined);
  assert.throws(() => gpuIndexSetting(-1, env({})), GpuIndexError);
  assert.throws(
    () => gpuIndexSetting(undefined, env({ OMPI_COMM_WORLD_LOCAL_RANK: "x" })),
    /OMPI_COMM_WORLD_LOCAL_RANK to be a non-negative integer but found "x"/,
  );
});

const found = await findTestAdapter();

/** Runs `findAdapter(index)` in a fresh process (a selection is per process) and prints it. */
async function openInChild(index: number, extraEnv: Record<string, string> = {}) {
  ensureXdgRuntimeDir();
  const code = `import { findAdapter } from "./engine/gpu/mod.ts";
try {
  const { adapter } = await findAdapter(${index});
  console.log("opened " + adapter?.info.description);
} catch (e) { console.log("error " + e.name + ": " + e.message); }`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: extraEnv,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test({
  name: "index 0 opens the local adapter; index 1 fails naming it (with and without the layer)",
  ignore: found.adapter === null,
  fn: async () => {
    const name = found.adapter!.info.description;
    assert.equal(await openInChild(0), `opened ${name}`);
    const one = await openInChild(1);
    // With the device-select layer (mesa-vulkan-drivers) the list; without it the default.
    assert.match(
      one,
      /^error GpuIndexError: Expected (a GPU index in \[0, \d+\)|GPU index 0) but found 1:/,
    );
    assert.ok(one.includes(`[0] ${name}`), one);
    // The layer disabled (as an implicit layer, and not enabled as the explicit one the GPU
    // carry's gpu-env.sh names): only the default adapter, named in the error.
    const disabled = { NODEVICE_SELECT: "1", VK_INSTANCE_LAYERS: "" };
    assert.equal(await openInChild(0, disabled), `opened ${name}`);
    const off = await openInChild(2, disabled);
    assert.match(off, /^error GpuIndexError: Expected GPU index 0 but found 2/);
    assert.ok(off.includes(`[0] ${name}`), off);
  },
});
