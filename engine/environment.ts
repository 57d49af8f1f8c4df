/**
 * The environment a result was measured in: Deno, OS, CPU, memory and the engine's device.
 *
 * @module
 */
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

/** The text of /proc/cpuinfo, read once per thread; null where it cannot be read. */
let cpuinfo: string | null | undefined;
function readCpuinfo(): string | null {
  if (cpuinfo === undefined) {
    try {
      cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
    } catch {
      cpuinfo = null; // not Linux, or not readable
    }
  }
  return cpuinfo;
}

/** The CPU model name, from /proc/cpuinfo where readable. */
export function cpuModel(): string {
  const m = readCpuinfo()?.match(/^model name\s*:\s*(.+)$/m);
  if (m) return `${m[1].trim()} (${navigator.hardwareConcurrency} cores)`;
  return `${Deno.build.arch} ${Deno.build.os} (${navigator.hardwareConcurrency} cores)`;
}

/** The vector extensions that decide matrix-product speed, as /proc/cpuinfo names them. */
const VECTOR_FLAGS = [
  "sse4_2",
  "avx",
  "fma",
  "avx2",
  "avx512f",
  "avx512_vnni",
  "avx512_bf16",
  "amx_tile",
  "amx_bf16",
  "amx_int8",
];

/** This CPU's feature flags from /proc/cpuinfo, or null where it cannot be read. */
export function cpuFlags(): Set<string> | null {
  const info = readCpuinfo();
  if (info === null) return null;
  return new Set(info.match(/^flags\s*:\s*(.+)$/m)?.[1].trim().split(/\s+/) ?? []);
}

/** This CPU's vector extensions among {@linkcode VECTOR_FLAGS}, or "unknown" off Linux. */
export function cpuVectorExtensions(): string {
  const flags = cpuFlags();
  if (!flags) return "unknown";
  const found = VECTOR_FLAGS.filter((f) => flags.has(f));
  return found.length > 0 ? found.join(" ") : "none of " + VECTOR_FLAGS.join(" ");
}

/**
 * The process's peak resident memory in bytes (`VmHWM` of /proc/self/status), or its current
 * RSS where that cannot be read (off Linux).
 */
export function peakRssBytes(): number {
  try {
    const kb = Deno.readTextFileSync("/proc/self/status").match(/^VmHWM:\s*(\d+)\s*kB/m)?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // not Linux
  }
  return Deno.memoryUsage().rss;
}
