/** Batches for training and evaluation: shuffle order, augment (flip + padded crop), normalise into NHWC float32. */
import type { Rng } from '../rng.ts';
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_SIDE, type Batch, type ImageSet } from './types.ts';

/** Per-channel mean and std of CIFAR-100 on pixel/255, as in the reference. */
export const CIFAR100_MEAN = [0.5071, 0.4867, 0.4408] as const;
export const CIFAR100_STD = [0.2675, 0.2565, 0.2761] as const;
/** Zero padding on each side before the random 32x32 crop. */
export const CROP_PADDING = 4;

const PLANE = IMAGE_SIDE * IMAGE_SIDE;
const FLOATS_PER_IMAGE = IMAGE_BYTES;

/** NORM[c * 256 + v] = (v / 255 - mean[c]) / std[c]; a padded (zero) pixel normalises as v = 0. */
const NORM = (() => {
  const t = new Float32Array(IMAGE_CHANNELS * 256);
  for (let c = 0; c < IMAGE_CHANNELS; c++) {
    for (let v = 0; v < 256; v++) t[c * 256 + v] = (v / 255 - CIFAR100_MEAN[c]) / CIFAR100_STD[c];
  }
  return t;
})();

/** The normalised value of byte `v` in channel `c` (0 = R, 1 = G, 2 = B). */
export function normalisedValue(channel: number, v: number): number {
  return NORM[channel * 256 + v];
}

export function allocBatch(size: number): Batch {
  return { size, x: new Float32Array(size * FLOATS_PER_IMAGE), y: new Int32Array(size) };
}

/** A shuffled copy of `indices` (the input is left untouched). */
export function epochOrder(indices: Int32Array, rng: Rng): Int32Array {
  return rng.shuffle(Int32Array.from(indices));
}

/**
 * Fill `out` with images order[start .. start+size) of `set`: augmented (random horizontal flip
 * p=0.5, random 32x32 crop of the image zero-padded by 4 pixels) when augment is an Rng, then
 * normalised with the reference mean/std on pixel/255, written NHWC float32 into out.x, labels into
 * out.y. `size` may be smaller than out's capacity (last batch); out.size is set to it.
 */
export function fillBatch(
  set: ImageSet,
  order: Int32Array,
  start: number,
  size: number,
  augment: Rng | null,
  out: Batch,
): void {
  const capacity = out.y.length;
  if (size < 0 || size > capacity) throw new RangeError(`fillBatch: size ${size} exceeds batch capacity ${capacity}`);
  if (start < 0 || start + size > order.length) {
    throw new RangeError(`fillBatch: range [${start}, ${start + size}) is outside the order of length ${order.length}`);
  }
  const { images, labels } = set;
  const x = out.x;
  for (let b = 0; b < size; b++) {
    const idx = order[start + b];
    if (idx < 0 || idx >= set.count) throw new RangeError(`fillBatch: image index ${idx} outside set of ${set.count}`);
    out.y[b] = labels[idx];
    const src = idx * IMAGE_BYTES;
    let dst = b * FLOATS_PER_IMAGE;
    let flip = false;
    let dy = 0;
    let dx = 0;
    if (augment) {
      flip = augment.next() < 0.5;
      // crop offset in the padded image is [0, 2P]; relative to the original image that is [-P, P]
      dy = augment.int(2 * CROP_PADDING + 1) - CROP_PADDING;
      dx = augment.int(2 * CROP_PADDING + 1) - CROP_PADDING;
    }
    if (!flip && dy === 0 && dx === 0) {
      for (let p = 0; p < PLANE; p++) {
        x[dst++] = NORM[images[src + p]];
        x[dst++] = NORM[256 + images[src + PLANE + p]];
        x[dst++] = NORM[512 + images[src + 2 * PLANE + p]];
      }
      continue;
    }
    for (let r = 0; r < IMAGE_SIDE; r++) {
      const sr = r + dy;
      const rowIn = sr >= 0 && sr < IMAGE_SIDE;
      for (let c = 0; c < IMAGE_SIDE; c++) {
        // the crop is taken first, then flipped: output column c shows crop column (31 - c)
        const sc = (flip ? IMAGE_SIDE - 1 - c : c) + dx;
        if (rowIn && sc >= 0 && sc < IMAGE_SIDE) {
          const p = src + sr * IMAGE_SIDE + sc;
          x[dst++] = NORM[images[p]];
          x[dst++] = NORM[256 + images[p + PLANE]];
          x[dst++] = NORM[512 + images[p + 2 * PLANE]];
        } else {
          x[dst++] = NORM[0];
          x[dst++] = NORM[256];
          x[dst++] = NORM[512];
        }
      }
    }
  }
  out.size = size;
}
