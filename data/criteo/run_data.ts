/**
 * The `data` record of a run trained on a Criteo cache, for the result schema
 * (`record/schema.ts`). A leaf module (zod and the cache options only), so the schema can import
 * it without importing the pipeline.
 *
 * @module
 */
import { z } from "zod";
import { CacheOptionsSchema } from "./cache.ts";

/** `RunConfig.data` of a run on a Criteo cache (the counterpart of `{ kind: "synthetic" }`). */
export const CriteoRunDataSchema = z.object({
  kind: z.literal("criteo"),
  /** What `--data` named: raw files or a cache folder. */
  source: z.string(),
  /** The cache folder trained from (absolute). */
  cache: z.string(),
  /** How the cache was built. */
  options: CacheOptionsSchema,
  /**
   * A separate test set (`--test-data`), read through the training cache's dictionaries: every
   * sample of the training cache then trains, and every sample of this one tests. Absent: DLRM's
   * splits of the training cache (its held-out last part tests).
   */
  test: z.object({
    /** What `--test-data` named. */
    source: z.string(),
    /** Its mapped cache (absolute). */
    cache: z.string(),
    /** The dictionaries it was mapped with (`indexing.ts`'s id). */
    dictionaries: z.string(),
  }).optional(),
});

/** `RunConfig.data` of a run on a Criteo cache. */
export type CriteoRunData = z.infer<typeof CriteoRunDataSchema>;
