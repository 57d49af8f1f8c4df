/**
 * Where a result came from: the commit it was measured at (and whether the tree had uncommitted
 * changes) and a fingerprint of the machine, so a history of results can be ordered by commit
 * and never compare figures across machines. Results of schema version 1 predate it; they are
 * migrated on reading ({@linkcode migrateRunJson}): commit and dirty unknown (null), machine
 * derived from their recorded environment, as a new result's is.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";

/** A full or abbreviated commit hash. */
const COMMIT_HASH = /^[0-9a-f]{7,40}$/;

/** The machine a result was measured on. */
export const MachineSchema = z.object({
  /** 12 hex digits of a SHA-256 over the hardware fields (see {@linkcode machineOf}). */
  fingerprint: z.string().regex(/^[0-9a-f]{12}$/, "12 lower-case hex digits"),
  /** Human-readable: CPU model, cores, memory, and the GPU adapter of GPU runs. */
  label: z.string(),
});

/** The machine a result was measured on. */
export type Machine = z.infer<typeof MachineSchema>;

/** Commit, dirty flag and machine of a result. */
export const ProvenanceSchema = z.object({
  /** Full commit hash of the checkout that ran, or null where unknown (no git, older result). */
  commit: z.string().regex(COMMIT_HASH, "a hex commit hash").nullable(),
  /** The checkout had uncommitted changes to tracked or new files; null where unknown. */
  dirty: z.boolean().nullable(),
  machine: MachineSchema,
});

/** Commit, dirty flag and machine of a result. */
export type Provenance = z.infer<typeof ProvenanceSchema>;

/** The environment fields a machine is identified by (a subset of a result's `environment`). */
export interface MachineFields {
  os?: string;
  arch?: string;
  cpu?: string;
  cores?: number;
  memoryBytes?: number;
  engine?: { name?: string; device?: string };
}

/**
 * The machine of an environment: OS, architecture, CPU model, cores, memory (whole GiB, so a VM
 * whose total varies by a few pages stays one machine) and, for GPU runs, the adapter. Software
 * versions are left out: a Deno upgrade is a change to chart on the same machine, not a new one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { machineOf } from "./provenance.ts";
 * const env = { os: "linux", arch: "x86_64", cpu: "EPYC (2 cores)", cores: 2, memoryBytes: 8e9 };
 * assert.equal(machineOf(env).fingerprint, machineOf({ ...env, memoryBytes: 8.0001e9 }).fingerprint);
 * assert.notEqual(machineOf(env).fingerprint, machineOf({ ...env, cores: 4 }).fingerprint);
 * ```
 */
export function machineOf(env: MachineFields): Machine {
  const gib = Math.round((env.memoryBytes ?? 0) / 2 ** 30);
  const adapter = env.engine?.name === "gpu" ? env.engine.device ?? "unknown adapter" : null;
  const fields = [env.os ?? "", env.arch ?? "", env.cpu ?? "", env.cores ?? 0, gib, adapter];
  const fingerprint = createHash("sha256").update(JSON.stringify(fields)).digest("hex").slice(
    0,
    12,
  );
  const cpu = env.cpu ?? `${env.arch ?? "unknown"} ${env.os ?? ""}`.trim();
  const label = `${cpu}, ${gib} GiB${adapter ? ` · ${adapter}` : ""}`;
  return { fingerprint, label };
}

/** Environment variables that override what git says (for checkouts without `.git`). */
export const PROVENANCE_ENV = { commit: "DQRM_COMMIT", dirty: "DQRM_DIRTY" } as const;

let cachedCheckout: Pick<Provenance, "commit" | "dirty"> | undefined;

/**
 * The commit of the checkout this module is in and whether it is dirty, asked of git once per
 * process. `DQRM_COMMIT` (a hash) and `DQRM_DIRTY` (`0` or `1`) override it, for a copy of the
 * tree without its `.git` (the GPU machine's); null where neither git nor they say.
 */
export function checkoutState(): Pick<Provenance, "commit" | "dirty"> {
  if (cachedCheckout) return cachedCheckout;
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined; // no --allow-env
    }
  };
  const commitVar = env(PROVENANCE_ENV.commit), dirtyVar = env(PROVENANCE_ENV.dirty);
  if (commitVar !== undefined && !COMMIT_HASH.test(commitVar)) {
    throw new TypeError(
      `Expected ${PROVENANCE_ENV.commit} to be a hex commit hash but found '${commitVar}'`,
    );
  }
  if (dirtyVar !== undefined && dirtyVar !== "0" && dirtyVar !== "1") {
    throw new TypeError(`Expected ${PROVENANCE_ENV.dirty} to be 0 or 1 but found '${dirtyVar}'`);
  }
  // git finds the checkout from this module's own folder.
  const root = new URL("./", import.meta.url).pathname;
  const commit = commitVar ?? git(root, ["rev-parse", "HEAD"])?.trim() ?? null;
  let dirty: boolean | null = dirtyVar === undefined ? null : dirtyVar === "1";
  if (dirty === null && commit !== null && commitVar === undefined) {
    const status = git(root, ["status", "--porcelain"]);
    dirty = status === undefined ? null : status.trim().length > 0;
  }
  cachedCheckout = { commit: commit && COMMIT_HASH.test(commit) ? commit : null, dirty };
  return cachedCheckout;
}

/** Runs git in `dir`; undefined when git is missing, not allowed, or fails (not a checkout). */
function git(dir: string, args: string[]): string | undefined {
  try {
    const out = new Deno.Command("git", { args: ["-C", dir, ...args], stderr: "null" })
      .outputSync();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}

/** The provenance of a result measured now, in `env`. */
export function provenanceNow(env: MachineFields): Provenance {
  return { ...checkoutState(), machine: machineOf(env) };
}

/**
 * Upgrades a result's JSON to the current schema: a version 1 result gains `provenance` (commit
 * and dirty unknown, machine from its environment) and becomes version 2. Anything else is
 * returned as it is, for the schema to judge.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { migrateRunJson } from "./provenance.ts";
 * const v1 = { schemaVersion: 1, environment: { cpu: "x", cores: 2 } };
 * const v2 = migrateRunJson(v1) as { schemaVersion: number; provenance: { commit: null } };
 * assert.equal(v2.schemaVersion, 2);
 * assert.equal(v2.provenance.commit, null);
 * ```
 */
export function migrateRunJson(json: unknown): unknown {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return json;
  const r = json as { schemaVersion?: unknown; environment?: unknown; provenance?: unknown };
  if (r.schemaVersion !== 1) return json;
  const env = typeof r.environment === "object" && r.environment !== null
    ? r.environment as MachineFields
    : {};
  return {
    ...r,
    schemaVersion: 2,
    provenance: r.provenance ?? { commit: null, dirty: null, machine: machineOf(env) },
  };
}
