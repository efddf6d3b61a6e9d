/**
 * Percentiles by linear interpolation between closest ranks: numpy's default ("linear") and R's
 * type 7. For n sorted values the p-th percentile sits at rank h = (n - 1) p / 100, between
 * v[floor(h)] and v[ceil(h)].
 */

/** The p-th percentile (0..100) of values already sorted ascending; NaN when there are none. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = ((n - 1) * p) / 100;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** The p-th percentile (0..100) of values in any order; the input is not modified. */
export function percentile(values: ArrayLike<number>, p: number): number {
  return percentileOfSorted(Float64Array.from(values).sort(), p);
}
