/**
 * A data-filling Worker of {@linkcode FillPool} (`fill_pool.ts`): it builds its own copy of the
 * data source once (a synthetic generator, or a Criteo cache reader), then fills the sample
 * slices of each fill it takes straight into the caller's chunk, which lives in shared memory. Every source
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

/** What a worker fills from. */
type Source = { fill(chunk: BatchChunk, stream: "train" | "test", first: number): void };
/** The source this worker fills from (set by the first message). */
let source: Source | undefined;
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

/** Fills the slices of a fill that no other worker has taken, one at a time, until none is left. */
function fillSlices(msg: FillRequest): void {
  if (!source) throw new Error("Expected an open source before a fill but found none");
  // Training samples of a Criteo cache come from the pool's shared windows, when given.
  criteo?.useWindows(msg.windows ?? null);
  const { bounds, next } = msg;
  for (let k = Atomics.add(next, 0, 1); k + 1 < bounds.length; k = Atomics.add(next, 0, 1)) {
    if (bounds[k + 1] > bounds[k]) fillSlice(source, msg, bounds[k], bounds[k + 1] - bounds[k]);
  }
}

/**
 * Fills samples `[from, from + count)` of the shared chunk with samples `first + from, …` of the
 * stream, from `into`. The source rewrites the offsets of the view it is given as `0, 1, …`, so
 * it gets a private offsets array; the slice's part of the chunk's own offsets is written here,
 * `from + s`.
 */
function fillSlice(into: Source, msg: FillRequest, from: number, count: number): void {
  const { chunk, stream, first } = msg;
  const d = chunk.denseFeatures;
  const ownOffsets = new Int32Array(count + 1);
  into.fill(
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
    else fillSlices(e.data);
    reply = { type: "done" };
  } catch (err) {
    reply = { type: "error", message: err instanceof Error ? err.message : String(err) };
  }
  self.postMessage(reply);
};
