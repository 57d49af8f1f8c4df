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
 * is present.
 */
export function rocAuc(labels: ArrayLike<number>, probabilities: ArrayLike<number>): number {
  const n = checkLengths(labels, probabilities);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const scores = Float64Array.from({ length: n }, (_, i) => probabilities[i]);
  order.sort((a, b) => scores[a] - scores[b]);
  // Mann-Whitney U with mid-ranks for ties.
  let positives = 0;
  let rankSumPositives = 0;
  for (let start = 0; start < n;) {
    let end = start + 1;
    while (end < n && scores[order[end]] === scores[order[start]]) end++;
    const midRank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) {
      if (labels[order[k]] > 0.5) {
        positives++;
        rankSumPositives += midRank;
      }
    }
    start = end;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSumPositives - (positives * (positives + 1)) / 2) / (positives * negatives);
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

function checkLengths(labels: ArrayLike<number>, probabilities: ArrayLike<number>): number {
  if (labels.length !== probabilities.length) {
    throw new RangeError(
      `Expected as many probabilities as labels (${labels.length}) but found ${probabilities.length}`,
    );
  }
  if (labels.length === 0) throw new RangeError("Expected at least one sample but found none");
  return labels.length;
}
