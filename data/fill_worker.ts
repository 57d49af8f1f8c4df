/**
 * A data-filling Worker of {@linkcode FillPool} (`fill_pool.ts`): it builds its own copy of the
 * data source once (a synthetic generator, or a Criteo cache reader), then fills the sample
 * slices it is sent straight into the caller's chunk, which lives in shared memory. Every source
 * fills any range on its own with the same values, so a slice filled here equals the same slice
 * filled by one thread.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { BatchChunk } from "../engine/batch.ts";
import { CriteoData } from "./criteo/source.ts";
import type {
  FillRequest,
  FillSourceSpec,
  FillWorkerReply,
  WindowLoadRequest,
} from "./fill_pool.ts";
import { SyntheticCriteo } from "./synthetic.ts";

/** The source this worker fills from (set by the first message). */
let source: { fill(chunk: BatchChunk, stream: "train" | "test", first: number): void } | undefined;
/** The same source when it is a Criteo cache reader (it also loads shared windows). */
let criteo: CriteoData | undefined;

async function open(spec: FillSourceSpec): Promise<void> {
  if (spec.kind === "synthetic") source = new SyntheticCriteo(spec.shape, spec.options);
  else source = criteo = await CriteoData.open(spec.dir, spec.options);
}

/** Loads this worker's share of a shared Criteo window (see `FillPool`). */
function loadWindow(msg: WindowLoadRequest): void {
  if (!criteo) throw new Error("Expected a Criteo source before a window load but found none");
  criteo.loadWindowPart(msg.index, msg.from, msg.to, msg.window, msg.withOrder);
}

/**
 * Fills samples `[from, from + count)` of the shared chunk with samples `first + from, …` of the
 * stream. The source rewrites the offsets of the view it is given as `0, 1, …`, so it gets a
 * private offsets array; the slice's part of the chunk's own offsets is written here, `from + s`.
 */
function fillSlice(msg: FillRequest): void {
  if (!source) throw new Error("Expected an open source before a fill but found none");
  const { chunk, from, count, stream, first } = msg;
  // Training samples of a Criteo cache come from the pool's shared windows, when given.
  criteo?.useWindows(msg.windows ?? null);
  const d = chunk.denseFeatures;
  const ownOffsets = new Int32Array(count + 1);
  source.fill(
    {
      batchSize: count,
      samples: count,
      dense: chunk.dense.subarray(from * d, (from + count) * d),
      labels: chunk.labels.subarray(from, from + count),
      indices: chunk.indices.map((idx) => idx.subarray(from, from + count)),
      offsets: chunk.indices.map(() => ownOffsets),
    },
    stream,
    first + from,
  );
  const written = new Set<Int32Array>();
  for (const off of chunk.offsets) {
    if (written.has(off)) continue;
    written.add(off);
    for (let s = from; s <= from + count; s++) off[s] = s;
  }
}

self.onmessage = async (
  e: MessageEvent<FillRequest | WindowLoadRequest | { type: "open"; spec: FillSourceSpec }>,
) => {
  let reply: FillWorkerReply;
  try {
    if (e.data.type === "open") await open(e.data.spec);
    else if (e.data.type === "loadWindow") loadWindow(e.data);
    else fillSlice(e.data);
    reply = { type: "done" };
  } catch (err) {
    reply = { type: "error", message: err instanceof Error ? err.message : String(err) };
  }
  self.postMessage(reply);
};
