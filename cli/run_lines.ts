/**
 * The lines `deno task bench` prints about a run's timing: the summary of a finished run (which
 * says "no timed iterations" rather than `0.000 ms/it` when every iteration was warm-up) and the
 * warning, before training, that a run is too short to time anything.
 *
 * @module
 */
import type { RunConfig, RunResult } from "../record/schema.ts";
import { plannedIterations } from "../suites/progress.ts";

/**
 * One line warning that runs train no more iterations than their warm-up, so nothing will be
 * timed (their results record timing summaries of n = 0); undefined when every run times some.
 */
export function warmupWarning(
  runs: readonly RunConfig[],
  iterationsFlag?: number,
): string | undefined {
  const short = runs.filter((r) => plannedIterations(r) <= r.warmupIterations);
  if (short.length === 0) return undefined;
  const warmup = Math.max(...short.map((r) => r.warmupIterations));
  const names = short.length === runs.length
    ? "every run"
    : short.slice(0, 4).map((r) => r.name).join(", ") + (short.length > 4 ? ", …" : "");
  const what = iterationsFlag === undefined
    ? `${names} trains no more iterations than its warm-up of ${warmup}`
    : `--iterations ${iterationsFlag} is not above the warm-up of ${warmup} iterations (${names})`;
  return `warning: ${what}, which is excluded from timing, so no iteration will be timed and the ` +
    `results record no timing (n = 0); use --iterations ${warmup + 1} or more to time them`;
}

/**
 * The line printed when a run finishes: its position in the suite (`2/10`, when given), status
 * (with how far a partial run got), phase-sum timing (or "no timed iterations"), wall-clock
 * samples/s and metrics.
 */
export function runSummaryLine(result: RunResult, path: string, position?: string): string {
  const t = result.timing;
  const ms = (s: { median: number }) => s.median.toFixed(3);
  const timing = t.total.n === 0
    ? `no timed iterations (${result.iterations} trained, ${
      Math.min(result.config.warmupIterations, result.iterations)
    } of them warm-up)`
    : `${ms(t.total)} ms/it phase sum (fwd ${ms(t.phases.forward)}, bwd ${
      ms(t.phases.backward)
    }, comm ${ms(t.phases.communication)}, upd ${ms(t.phases.update)})`;
  const partial = result.partial
    ? ` (partial: ${result.partial.iterations} of ${result.partial.of} it)`
    : "";
  return `[${position ? `${position} ` : ""}${result.config.name}] ${result.status}${partial}${
    result.error ? `: ${result.error}` : ""
  } — ${timing}, ${t.samplesPerSecond.toFixed(0)} samples/s wall clock (${
    t.wallMsPerIteration.toFixed(3)
  } ms/it), test AUC ${result.final?.auc.toFixed(4) ?? "–"}${
    result.ceiling ? ` (teacher ${result.ceiling.auc.toFixed(4)})` : ""
  }, accuracy ${result.final?.accuracy.toFixed(4) ?? "–"}; wrote ${path}`;
}
