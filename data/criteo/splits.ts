/**
 * DLRM's train / test / validation splits of the Criteo data.
 *
 * - Kaggle: `train.txt` is cut into 7 consecutive parts ("days") of near-equal line counts (the
 *   first `lines % 7` parts one line longer); parts 0–5 train, part 6 is halved into test (the
 *   first half, rounded up) and validation.
 * - Terabyte: `day_0 … day_{n-2}` train; the last day used is halved the same way. With one day
 *   only (the usual sample, `day_0`), that day is cut into 7 parts as Kaggle's file is.
 * - With a separate test set (`--test-data`): every sample of the training data trains, and every
 *   sample of the test set tests (`use: "train"` / `"test"`).
 *
 * Halving counts samples (after sub-sampling and bad lines), as DLRM's `np.array_split` does.
 *
 * @module
 */

/** Kaggle's parts of a file of `lines` lines: DLRM's `divmod(lines, days)`. */
export function partLines(lines: number, parts = 7): number[] {
  if (!Number.isInteger(lines) || lines < 0) {
    throw new RangeError(`Expected a non-negative integer line count but found ${lines}`);
  }
  const base = Math.floor(lines / parts);
  const extra = lines % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0));
}

/** Test and validation sizes of a last day of `samples` samples (test gets the odd one). */
export function halve(samples: number): { test: number; validation: number } {
  const test = Math.ceil(samples / 2);
  return { test, validation: samples - test };
}

/** Sample ranges of the three splits, in chunk order. */
export interface SplitRanges {
  train: { start: number; samples: number };
  test: { start: number; samples: number };
  validation: { start: number; samples: number };
}

/**
 * The splits when the samples of the last part start at `lastPartStart` and `total` samples
 * exist: train before it, the last part halved.
 */
export function splitRanges(lastPartStart: number, total: number): SplitRanges {
  if (!(lastPartStart >= 0 && lastPartStart <= total)) {
    throw new RangeError(
      `Expected the last part to start in [0, ${total}] but found ${lastPartStart}`,
    );
  }
  const { test, validation } = halve(total - lastPartStart);
  return {
    train: { start: 0, samples: lastPartStart },
    test: { start: lastPartStart, samples: test },
    validation: { start: lastPartStart + test, samples: validation },
  };
}

/** Which samples a cache's splits hold: DLRM's (`splits`), or all of them in one split. */
export type SplitUse = "splits" | "train" | "test";

/**
 * The splits of a cache of `samples` samples with the manifest's DLRM `splits`: those, or every
 * sample in the one split `use` names (the others empty).
 */
export function splitsOf(
  manifest: { samples: number; splits: SplitRanges },
  use: SplitUse = "splits",
): SplitRanges {
  if (use === "splits") return manifest.splits;
  if (use !== "train" && use !== "test") {
    throw new TypeError(`Expected the split use "splits", "train" or "test" but found ${use}`);
  }
  const all = { start: 0, samples: manifest.samples };
  const none = { start: manifest.samples, samples: 0 };
  return {
    train: use === "train" ? all : none,
    test: use === "test" ? all : none,
    validation: none,
  };
}

/**
 * The rule that split a dataset read from `sources` files (for output and the README): DLRM's
 * 7 parts of one file, or its held-out last day.
 */
export function splitRule(dataset: "kaggle" | "terabyte", sources: number): string {
  const parts = "cut into 7 parts by lines: parts 0-5 train, part 6 is halved into test and " +
    "validation";
  if (dataset === "kaggle") return `train.txt is ${parts}`;
  if (sources === 1) return `one day only: as Kaggle's file, the day is ${parts}`;
  return `day_0 to day_${sources - 2} train, day_${sources - 1} is halved into test and validation`;
}
