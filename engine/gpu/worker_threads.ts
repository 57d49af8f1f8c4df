/**
 * Waiting for the threads of terminated Workers that used WebGPU. `Worker.terminate()` returns at
 * once; Deno then drops the Worker's isolate, and with it its WebGPU device and instance, on the
 * Worker's own thread. A process that exits meanwhile (`Deno.exit` right after writing its
 * results) runs the Vulkan driver's exit handlers while that thread still calls into the driver:
 * NVIDIA's driver crashes then (segfault at exit; gfx-rs/wgpu issue 8365). So whoever terminates
 * such Workers waits here until their threads are gone.
 *
 * Deno names a Worker's thread `worker-<id>` (threads started from it, the driver's, inherit the
 * name); Linux lists a process's threads under `/proc/self/task`. Elsewhere, or without read
 * permission there, the threads cannot be seen: a short pause stands in.
 *
 * @module
 */

const WORKER_THREAD = /^worker-\d+$/;
/** The pause where threads cannot be listed, ms. */
const UNSEEN_PAUSE_MS = 100;

/** Thread ids and names of a process's Worker threads. */
export type WorkerThreads = ReadonlyMap<string, string>;

/** The name of thread `tid` of this process, or null when it has ended. */
function threadName(tid: string): string | null {
  try {
    return Deno.readTextFileSync(`/proc/self/task/${tid}/comm`).trim();
  } catch {
    return null;
  }
}

/**
 * This process's Worker threads (`worker-<id>`) by thread id, or null where threads cannot be
 * listed.
 */
export function workerThreads(): Map<string, string> | null {
  const threads = new Map<string, string>();
  try {
    for (const task of Deno.readDirSync("/proc/self/task")) {
      const name = threadName(task.name);
      if (name !== null && WORKER_THREAD.test(name)) threads.set(task.name, name);
    }
  } catch {
    return null;
  }
  return threads;
}

/**
 * The Worker threads started since `before` (a {@linkcode workerThreads} taken just before
 * creating Workers; taken right after, these are the Workers' own threads, not the ones a
 * driver starts from them later), or null where threads cannot be listed.
 */
export function workerThreadsSince(before: WorkerThreads | null): WorkerThreads | null {
  const now = workerThreads();
  if (before === null || now === null) return null;
  return new Map([...now].filter(([tid]) => !before.has(tid)));
}

/**
 * Waits until none of `threads` runs (polling every 2 ms), or `timeoutMs` passed; with `threads`
 * null (unseen), pauses briefly. True when they have ended (or are unseen).
 */
export async function workerThreadsExited(
  threads: WorkerThreads | null,
  timeoutMs = 5000,
): Promise<boolean> {
  if (threads === null) {
    await new Promise((resolve) => setTimeout(resolve, UNSEEN_PAUSE_MS));
    return true;
  }
  const end = performance.now() + timeoutMs;
  // A thread id the system has given to a new thread since is no longer the Worker's.
  const running = () => [...threads].some(([tid, name]) => threadName(tid) === name);
  while (running()) {
    if (performance.now() >= end) return false;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return true;
}
