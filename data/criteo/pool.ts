/**
 * The preprocessing workers (`worker.ts`) as seen from the main thread: each owns the
 * dictionaries of some tables, answers its messages in order, and counts its outstanding parse
 * and map messages so that the next block goes to the least loaded one.
 *
 * @module
 */
import type { WorkerReply, WorkerRequest } from "./worker.ts";

/** One preprocessing worker. */
export interface PoolWorker {
  worker: Worker;
  /** Replies owed, in order. */
  pending: { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }[];
  /** Parse and map messages not answered yet. */
  load: number;
  /** Tables whose values this worker numbers. */
  tables: number[];
}

/**
 * Splits tables among `workers` so each has about the same dictionary work: a lookup in a large
 * dictionary misses the caches, so a table costs more the more rows it will have (`rows`, the
 * expected sizes), up to a cap.
 */
export function assignTables(workers: number, rows: readonly number[]): number[][] {
  const cost = rows.map((n) => 1 + Math.min(n, 4e6) / 4e5);
  const order = [...rows.keys()].sort((a, b) => cost[b] - cost[a] || a - b);
  const sums = new Array<number>(workers).fill(0);
  const owned = sums.map(() => [] as number[]);
  for (const t of order) {
    const w = sums.indexOf(Math.min(...sums));
    owned[w].push(t);
    sums[w] += cost[t];
  }
  return owned.map((o) => o.sort((a, b) => a - b));
}

/** Preprocessing workers. */
export class WorkerPool {
  /** The workers. */
  readonly workers: PoolWorker[] = [];

  /**
   * Starts `count` workers owning the tables {@linkcode assignTables} gives them; `onFail` is
   * called if one dies.
   */
  constructor(count: number, expectedRows: readonly number[], onFail: (e: Error) => void) {
    const owners = assignTables(count, expectedRows);
    for (let w = 0; w < count; w++) {
      const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
      const handle: PoolWorker = { worker, pending: [], load: 0, tables: owners[w] };
      worker.onmessage = (e: MessageEvent<WorkerReply>) => {
        const next = handle.pending.shift();
        if (e.data.type === "error") {
          next?.reject(new Error(`Preprocessing worker: ${e.data.message}`));
        } else next?.resolve(e.data);
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        const error = new Error(`Preprocessing worker failed: ${e.message}`);
        for (const p of handle.pending.splice(0)) p.reject(error);
        onFail(error);
      };
      this.workers.push(handle);
    }
  }

  /** The workers that own tables. */
  get mappers(): PoolWorker[] {
    return this.workers.filter((w) => w.tables.length > 0);
  }

  /** The worker with the fewest parse and map messages outstanding. */
  leastLoaded(): PoolWorker {
    return this.workers.reduce((a, b) => (b.load < a.load ? b : a));
  }

  /** Sends `msg` to worker `w`; resolves with its reply (rejects with its error). */
  call(w: PoolWorker, msg: WorkerRequest): Promise<WorkerReply> {
    const counted = msg.type === "parse" || msg.type === "map";
    if (counted) w.load++;
    return new Promise<WorkerReply>((resolve, reject) => {
      w.pending.push({ resolve, reject });
      w.worker.postMessage(msg);
    }).finally(() => {
      if (counted) w.load--;
    });
  }

  /** Sends `make(w)` to every worker and waits for every reply. */
  all(make: (w: PoolWorker) => WorkerRequest): Promise<WorkerReply[]> {
    return Promise.all(this.workers.map((w) => this.call(w, make(w))));
  }

  /** Stops every worker. */
  terminate(): void {
    for (const w of this.workers) w.worker.terminate();
  }
}
