// The median the benchmark scripts report, and how sure a set of runs is of
// it: one definition for all of them.

/** The median of `values` (the mean of the middle two when even), or `null` when empty. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** An interval that holds the true median with probability `coverage`. */
export interface MedianInterval {
  low: number;
  high: number;
  coverage: number;
}

/**
 * A distribution-free interval for the median of whatever `values` were
 * drawn from: the k-th lowest and k-th highest value, k as large as keeps
 * the coverage at `level` or more. Each value falls below the median with
 * probability 1/2, so the chance that fewer than k of n do is a binomial
 * tail; no shape of the noise is assumed. Below 6 values no k reaches 95 %:
 * the interval is then the lowest and highest, with the coverage they have
 * (5 values: 93.8 %).
 */
export function medianInterval(
  values: readonly number[],
  level = 0.95,
): MedianInterval | null {
  const n = values.length;
  if (n < 2) return null;
  const sorted = [...values].sort((a, b) => a - b);
  // tail(k) = P(Binomial(n, 1/2) <= k - 1): below the k-th lowest.
  let term = 0.5 ** n; // P(X = 0)
  let tail = term;
  let k = 1;
  while (k < n / 2) {
    term = (term * (n - k + 1)) / k; // P(X = k) from P(X = k - 1)
    if (1 - 2 * (tail + term) < level) break;
    tail += term;
    k++;
  }
  return { low: sorted[k - 1]!, high: sorted[n - k]!, coverage: 1 - 2 * tail };
}
