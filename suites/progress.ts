/**
 * Progress of a whole suite: which run of how many is training, and an overall ETA. Each run's
 * remaining time is its projected training (capped by its time budget, which stops it) plus its
 * evaluations still ahead, at the mean time of those measured in the current run (at the paper's
 * scale they take as long as the training), or else the time finished runs spent outside
 * training (building, evaluating); runs not started yet are projected at the pace measured so far.
 *
 * @module
 */
import type { RunConfig, RunResult } from "../record/schema.ts";
import type { RunProgress } from "./training_loop.ts";

/** Training iterations a run plans (whole batches per epoch, every epoch). */
export function plannedIterations(config: RunConfig): number {
  return Math.floor(config.trainSamples / config.batchSize) * config.epochs;
}

/**
 * Test-set evaluations a run of `config` has left after `iteration` of `totalIterations`: one
 * every `evalEvery` iterations and one at each epoch's end (fractional: an estimate for ETAs).
 */
export function evaluationsLeft(
  config: RunConfig,
  iteration: number,
  totalIterations: number,
): number {
  const left = Math.max(0, totalIterations - iteration);
  const perEpoch = totalIterations / Math.max(1, config.epochs);
  return (config.evalEvery > 0 ? left / config.evalEvery : 0) + left / perEpoch;
}

/** Formats seconds as `42 s`, `3 min 05 s` or `1 h 02 min`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/**
 * Tracks a suite's runs for progress lines: call {@linkcode SuiteProgress.startRun} before each
 * run, {@linkcode SuiteProgress.endRun} after it (or {@linkcode SuiteProgress.skipRun} for one
 * kept from an earlier invocation), and {@linkcode SuiteProgress.line} with each run progress.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SuiteProgress } from "./progress.ts";
 * import { kaggleSuite } from "./mod.ts";
 * const runs = kaggleSuite().runs.slice(0, 2);
 * let now = 0;
 * const p = new SuiteProgress(runs, () => now);
 * p.startRun(0);
 * now = 10_000;
 * const line = p.line({ run: "fp32", stage: "train", epoch: 0.2, iteration: 1000, totalIterations: 5000, msPerIteration: 10 });
 * assert.match(line, /^\[run 1 of 2 fp32\] train · it 1000\/5000/);
 * assert.match(line, /ETA 40 s this run, 1 min 30 s all runs/);
 * ```
 */
export class SuiteProgress {
  readonly #runs: readonly RunConfig[];
  readonly #now: () => number;
  readonly #start: number;
  #current = -1;
  #runStart = 0;
  #done = 0;
  /** Seconds finished runs spent training, and in all. */
  #trainSeconds = 0;
  #elapsedSeconds = 0;
  #trainedIterations = 0;
  #finished = 0;
  /** The current run's training pace (ms/it) from its last progress. */
  #pace: number | undefined;
  /** The current run's evaluations: when the one under way started, and those done. */
  #evalStart: number | undefined;
  #evalSeconds = 0;
  #evals = 0;

  /** `runs`: the suite's runs in order; `now`: a clock in ms (default `performance.now`). */
  constructor(runs: readonly RunConfig[], now: () => number = () => performance.now()) {
    this.#runs = runs;
    this.#now = now;
    this.#start = now();
  }

  /** Run `index` (0-based) starts. */
  startRun(index: number): void {
    this.#current = index;
    this.#runStart = this.#now();
    this.#pace = undefined;
    this.#evalStart = undefined;
    this.#evalSeconds = 0;
    this.#evals = 0;
  }

  /** Run `index` was kept from an earlier invocation: it counts as done, taking no time. */
  skipRun(index: number): void {
    this.#current = index;
    this.#done++;
  }

  /** The current run ended with `result`. */
  endRun(result: RunResult): void {
    this.#done++;
    const elapsed = (this.#now() - this.#runStart) / 1000;
    const trained = result.iterations * result.timing.wallMsPerIteration / 1000;
    if (result.iterations > 0) {
      this.#finished++;
      this.#elapsedSeconds += elapsed;
      this.#trainSeconds += trained;
      this.#trainedIterations += result.iterations;
    }
  }

  /** `run k of N`, 1-based. */
  get position(): string {
    return `run ${this.#current + 1} of ${this.#runs.length}`;
  }

  /** Mean seconds a finished run spent outside training (0 before any finished). */
  #overheadSeconds(): number {
    return this.#finished ? (this.#elapsedSeconds - this.#trainSeconds) / this.#finished : 0;
  }

  /** Seconds left to the current run at `p` (training left, capped by its budget, + overhead). */
  #currentLeft(p: RunProgress): number | undefined {
    const config = this.#runs[this.#current];
    // Before this run's first chunk: the pace of the runs finished so far.
    const pace = this.#pace ?? this.#finishedPace();
    if (!config || pace === undefined) return undefined;
    const spent = (this.#now() - this.#runStart) / 1000;
    const training = Math.min(
      (pace * (p.totalIterations - p.iteration)) / 1000,
      Math.max(config.budget.seconds - spent, 0),
    );
    // Its evaluations still ahead at its own measured time; before its first, the part of the
    // finished runs' overhead (building and evaluating, spread over a run) still ahead.
    const evaluating = this.#evals > 0
      ? this.#meanEvalSeconds() * evaluationsLeft(config, p.iteration, p.totalIterations)
      : this.#overheadSeconds() * (1 - p.iteration / p.totalIterations);
    return training + evaluating;
  }

  /** Mean seconds of the current run's evaluations so far. */
  #meanEvalSeconds(): number {
    return this.#evals ? this.#evalSeconds / this.#evals : 0;
  }

  /** Wall-clock ms per iteration of the runs finished so far (undefined before any). */
  #finishedPace(): number | undefined {
    return this.#trainedIterations
      ? (1000 * this.#trainSeconds) / this.#trainedIterations
      : undefined;
  }

  /** Seconds the runs after the current one are projected to take. */
  #laterLeft(): number | undefined {
    const pace = this.#finishedPace() ?? this.#pace;
    if (pace === undefined) return undefined;
    let left = 0;
    for (const config of this.#runs.slice(this.#current + 1)) {
      const planned = plannedIterations(config);
      const training = Math.min((pace * planned) / 1000, config.budget.seconds);
      // Before any run finished: its evaluations at the current run's measured time.
      const overhead = this.#finished
        ? this.#overheadSeconds()
        : this.#meanEvalSeconds() * evaluationsLeft(config, 0, planned);
      left += training + overhead;
    }
    return left;
  }

  /** The progress line of `p`: run k of N, stage, iterations, loss, pace, test metrics, ETAs. */
  line(p: RunProgress): string {
    if (p.msPerIteration !== undefined) this.#pace = p.msPerIteration;
    // An evaluation is reported as it starts, then with its metrics.
    if (p.stage === "eval" && p.auc === undefined) this.#evalStart = this.#now();
    else if (p.stage === "eval" && this.#evalStart !== undefined) {
      this.#evalSeconds += (this.#now() - this.#evalStart) / 1000;
      this.#evals++;
      this.#evalStart = undefined;
    }
    const parts = [
      `[${this.position} ${p.run}] ${p.stage}`,
      `it ${p.iteration}/${p.totalIterations}`,
    ];
    if (p.stage === "init") parts.push("building model and data");
    if (p.trainLoss !== undefined) parts.push(`loss ${p.trainLoss.toFixed(4)}`);
    if (p.msPerIteration !== undefined) parts.push(`${p.msPerIteration.toFixed(2)} ms/it`);
    if (p.auc !== undefined) {
      parts.push(`test AUC ${p.auc.toFixed(4)} acc ${p.accuracy!.toFixed(4)}`);
    }
    const elapsed = (this.#now() - this.#start) / 1000;
    const current = this.#currentLeft(p);
    const later = this.#laterLeft();
    if (current !== undefined && later !== undefined && p.stage !== "done") {
      parts.push(
        `ETA ${formatDuration(current)} this run, ${
          formatDuration(current + later)
        } all runs (elapsed ${formatDuration(elapsed)})`,
      );
    } else {
      parts.push(`elapsed ${formatDuration(elapsed)}`);
    }
    return parts.join(" · ");
  }
}
