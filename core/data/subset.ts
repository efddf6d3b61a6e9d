/** Seeded, class-stratified fractions of a labelled set. */
import { FedsliceError } from '../errors.ts';
import { Rng } from '../rng.ts';
import type { LabelSet } from './types.ts';

/**
 * The indices of round(fraction * count) records (at least one), taking the same share of every
 * class (largest remainders fill the rounding), chosen with `seed`, in their original order.
 */
export function fractionIndices(set: LabelSet, fraction: number, seed: number): Int32Array {
  if (!(fraction > 0 && fraction <= 1)) {
    throw new FedsliceError('FEDSLICE_ERR_DATA_FRACTION', `data fraction must be in (0, 1], got ${fraction}`);
  }
  if (fraction === 1) return Int32Array.from({ length: set.count }, (_, i) => i);
  const target = Math.max(1, Math.round(fraction * set.count));
  const byClass: number[][] = Array.from({ length: set.numClasses }, () => []);
  for (let i = 0; i < set.count; i++) byClass[set.labels[i]].push(i);
  // per-class quotas: floor of the exact share, then the largest remainders get one more
  const exact = byClass.map((members) => (members.length * target) / set.count);
  const quota = exact.map(Math.floor);
  let left = target - quota.reduce((a, b) => a + b, 0);
  const order = exact.map((e, c) => [e - Math.floor(e), c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0; k++, left--) quota[order[k][1]]++;
  const rng = Rng.derive(seed, 'subset');
  const chosen: number[] = [];
  byClass.forEach((members, c) => {
    const shuffled = rng.shuffle(Int32Array.from(members));
    for (let k = 0; k < quota[c]; k++) chosen.push(shuffled[k]);
  });
  chosen.sort((a, b) => a - b);
  return Int32Array.from(chosen);
}
