/**
 * Test metrics of a click model: accuracy, exact tie-aware ROC AUC and log loss, defined as
 * DLRM reports them (scikit-learn's `roc_auc_score` and `log_loss`, NumPy's half-even rounding).
 *
 * @module
 */

/**
 * Fraction of samples whose rounded probability equals the label. A probability of exactly 0.5
 * rounds to 0, as `np.round` (half to even) does.
 */
export function accuracy(labels: ArrayLike<number>, probabilities: ArrayLike<number>): number {
  const n = checkLengths(labels, probabilities);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const predicted = probabilities[i] > 0.5 ? 1 : 0;
    if (predicted === (labels[i] > 0.5 ? 1 : 0)) correct++;
  }
  return correct / n;
}

/**
 * Area under the ROC curve, exact: the probability that a random positive scores above a random
 * negative, ties counting one half (scikit-learn's `roc_auc_score`). `NaN` when only one class
 * is present or a score is NaN.
 *
 * The scores of each class are sorted apart and merged: every positive counts the negatives
 * below it and half of those equal to it (Mann-Whitney U, exact in float64). Scores that are all
 * non-negative float32 values (a model's probabilities) sort as the unsigned integers of their
 * bits, which order as the values do; a sort of indices through a comparator took 2.5 s for a
 * 3.3M-sample test set, this 0.2 s.
 */
export function rocAuc(labels: ArrayLike<number>, probabilities: ArrayLike<number>): number {
  const n = checkLengths(labels, probabilities);
  let positives = 0;
  for (let i = 0; i < n; i++) if (labels[i] > 0.5) positives++;
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  const keys = scoreKeys(probabilities, n);
  if (keys === null) return NaN;
  const pos = keys.slice(0, positives), neg = keys.slice(0, negatives);
  for (let i = 0, p = 0, q = 0; i < n; i++) {
    if (labels[i] > 0.5) pos[p++] = keys[i];
    else neg[q++] = keys[i];
  }
  pos.sort();
  neg.sort();
  let u = 0;
  for (let i = 0, below = 0; i < positives;) {
    const score = pos[i];
    let same = i + 1;
    while (same < positives && pos[same] === score) same++;
    while (below < negatives && neg[below] < score) below++;
    let equal = below;
    while (equal < negatives && neg[equal] === score) equal++;
    u += (same - i) * (below + (equal - below) / 2);
    i = same;
  }
  return u / (positives * negatives);
}

/** Mean binary cross-entropy, probabilities clipped to `[1e-7, 1 - 1e-7]`. */
export function logLoss(labels: ArrayLike<number>, probabilities: ArrayLike<number>): number {
  const n = checkLengths(labels, probabilities);
  const eps = 1e-7;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.min(1 - eps, Math.max(eps, probabilities[i]));
    sum -= labels[i] > 0.5 ? Math.log(p) : Math.log(1 - p);
  }
  return sum / n;
}

/** The three test metrics of a set of predictions. */
export interface ClickMetrics {
  /** Accuracy at threshold 0.5. */
  accuracy: number;
  /** Exact ROC AUC. */
  auc: number;
  /** Log loss. */
  logLoss: number;
}

/** Computes accuracy, ROC AUC and log loss together. */
export function clickMetrics(
  labels: ArrayLike<number>,
  probabilities: ArrayLike<number>,
): ClickMetrics {
  return {
    accuracy: accuracy(labels, probabilities),
    auc: rocAuc(labels, probabilities),
    logLoss: logLoss(labels, probabilities),
  };
}

/**
 * Keys that sort and compare as the scores do: the bits of each score as a float32 when every
 * score is a non-negative float32 (`+ 0` turns -0 into 0), else the scores as float64; null
 * when a score is NaN.
 */
function scoreKeys(probabilities: ArrayLike<number>, n: number): Uint32Array | Float64Array | null {
  const keys = new Uint32Array(n);
  const asFloat = new Float32Array(keys.buffer);
  for (let i = 0; i < n; i++) {
    const p = probabilities[i];
    if (!(p >= 0) || Math.fround(p) !== p) {
      const scores = Float64Array.from(probabilities);
      return scores.some(Number.isNaN) ? null : scores;
    }
    asFloat[i] = p + 0;
  }
  return keys;
}

function checkLengths(labels: ArrayLike<number>, probabilities: ArrayLike<number>): number {
  if (labels.length !== probabilities.length) {
    throw new RangeError(
      `Expected as many probabilities as labels (${labels.length}) but found ${probabilities.length}`,
    );
  }
  if (labels.length === 0) throw new RangeError("Expected at least one sample but found none");
  return labels.length;
}
