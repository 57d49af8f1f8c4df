/**
 * The environment a result was measured in: Deno, OS, CPU, memory and the engine's device.
 *
 * @module
 */
import { cpuModel } from "./cpu/cpu_engine.ts";
import type { EngineInfo } from "./engine.ts";

/** The environment record of a result. */
export interface Environment {
  deno: string;
  v8: string;
  typescript: string;
  os: string;
  arch: string;
  cpu: string;
  cores: number;
  memoryBytes: number;
  engine: EngineInfo;
}

/** Describes this process's environment and the engine it ran. */
export function describeEnvironment(engine: EngineInfo): Environment {
  let memoryBytes = 0;
  try {
    memoryBytes = Deno.systemMemoryInfo().total;
  } catch {
    // needs --allow-sys; the record keeps 0
  }
  return {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: Deno.build.os,
    arch: Deno.build.arch,
    cpu: cpuModel(),
    cores: navigator.hardwareConcurrency ?? 1,
    memoryBytes,
    engine,
  };
}
