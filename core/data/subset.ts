/** Seeded, class-stratified fractions of an image set. */
import { FedsliceError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { IMAGE_BYTES, type ImageSet, type LabelSet } from './types.ts';

/** Copies the images at `indices` (in that order) into a new set. */
export function selectImages(set: ImageSet, indices: Int32Array): ImageSet {
  const count = indices.length;
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  const coarseLabels = set.coarseLabels ? new Uint8Array(count) : undefined;
  for (let i = 0; i < count; i++) {
    const j = indices[i];
    images.set(set.images.subarray(j * IMAGE_BYTES, (j + 1) * IMAGE_BYTES), i * IMAGE_BYTES);
    labels[i] = set.labels[j];
    if (coarseLabels) coarseLabels[i] = set.coarseLabels![j];
  }
  return coarseLabels ? { count, images, labels, numClasses: set.numClasses, coarseLabels } : { count, images, labels, numClasses: set.numClasses };
}

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

/** The images fractionIndices chooses, as a new set; fraction 1 returns `set` itself. */
export function takeFraction(set: ImageSet, fraction: number, seed: number): ImageSet {
  const indices = fractionIndices(set, fraction, seed);
  return fraction === 1 ? set : selectImages(set, indices);
}
