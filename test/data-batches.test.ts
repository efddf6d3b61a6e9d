import { describe, expect, it } from 'vitest';
import { allocBatch, CIFAR100_MEAN, CIFAR100_STD, CROP_PADDING, epochOrder, fillBatch } from '../core/data/batches.ts';
import { IMAGE_BYTES, type ImageSet } from '../core/data/types.ts';
import { range, Rng } from '../core/rng.ts';

const PLANE = 1024;

/** Image i: R = column + 2*i, G = row, B = 200 + i, so every pixel says where it came from. */
function positionalSet(count: number): ImageSet {
  const images = new Uint8Array(count * IMAGE_BYTES);
  for (let i = 0; i < count; i++) {
    for (let r = 0; r < 32; r++) {
      for (let c = 0; c < 32; c++) {
        const p = i * IMAGE_BYTES + r * 32 + c;
        images[p] = c + 2 * i;
        images[p + PLANE] = r;
        images[p + 2 * PLANE] = 200 + i;
      }
    }
  }
  return { count, images, labels: Uint8Array.from({ length: count }, (_, i) => (i * 3) % 7), numClasses: 7 };
}

const norm = (ch: number, v: number) => (v / 255 - CIFAR100_MEAN[ch]) / CIFAR100_STD[ch];
/** out.x value at batch item b, row r, column c, channel ch (NHWC). */
const at = (x: Float32Array, b: number, r: number, c: number, ch: number) => x[((b * 32 + r) * 32 + c) * 3 + ch];

describe('fillBatch', () => {
  it('writes normalised NHWC floats and int32 labels without augmentation', () => {
    const set = positionalSet(3);
    const out = allocBatch(4);
    fillBatch(set, Int32Array.from([2, 0, 1]), 0, 3, null, out);
    expect(out.size).toBe(3);
    expect(out.x).toBeInstanceOf(Float32Array);
    expect(out.y).toBeInstanceOf(Int32Array);
    expect(Array.from(out.y.subarray(0, 3))).toEqual([set.labels[2], set.labels[0], set.labels[1]]);
    for (const [b, img] of [[0, 2], [1, 0], [2, 1]]) {
      for (const [r, c] of [[0, 0], [5, 17], [31, 31], [12, 3]]) {
        expect(at(out.x, b, r, c, 0)).toBeCloseTo(norm(0, c + 2 * img), 5);
        expect(at(out.x, b, r, c, 1)).toBeCloseTo(norm(1, r), 5);
        expect(at(out.x, b, r, c, 2)).toBeCloseTo(norm(2, 200 + img), 5);
      }
    }
    // reference values: byte 0 and 255 in the red channel
    expect(norm(0, 255)).toBeCloseTo((1 - 0.5071) / 0.2675, 6);
    expect(at(out.x, 1, 0, 0, 0)).toBeCloseTo(-0.5071 / 0.2675, 5);
  });

  it('takes a window of the order and sets size for a short last batch', () => {
    const set = positionalSet(5);
    const out = allocBatch(4);
    fillBatch(set, Int32Array.from([4, 3, 2, 1, 0]), 3, 2, null, out);
    expect(out.size).toBe(2);
    expect(at(out.x, 0, 0, 0, 2)).toBeCloseTo(norm(2, 201), 5);
    expect(at(out.x, 1, 0, 0, 2)).toBeCloseTo(norm(2, 200), 5);
    expect(() => fillBatch(set, range(5), 0, 5, null, out)).toThrow(/capacity/);
    expect(() => fillBatch(set, range(5), 4, 2, null, out)).toThrow(/outside/);
  });

  it('augmented pixels are the source shifted by at most 4 (zero padding outside) and maybe mirrored', () => {
    const set = positionalSet(1);
    const out = allocBatch(1);
    const rng = new Rng(7);
    const seen = new Set<string>();
    const mismatches: string[] = [];
    for (let trial = 0; trial < 200; trial++) {
      fillBatch(set, Int32Array.from([0]), 0, 1, rng, out);
      // recover the transform from the green channel (row) and red channel (column) of a central pixel
      const g = at(out.x, 0, 16, 16, 1);
      const row = Math.round((g * CIFAR100_STD[1] + CIFAR100_MEAN[1]) * 255);
      const dy = row - 16;
      const r1 = Math.round((at(out.x, 0, 16, 16, 0) * CIFAR100_STD[0] + CIFAR100_MEAN[0]) * 255);
      const r2 = Math.round((at(out.x, 0, 16, 17, 0) * CIFAR100_STD[0] + CIFAR100_MEAN[0]) * 255);
      const flip = r2 < r1;
      const dx = flip ? r1 - 15 : r1 - 16;
      expect(Math.abs(dy)).toBeLessThanOrEqual(CROP_PADDING);
      expect(Math.abs(dx)).toBeLessThanOrEqual(CROP_PADDING);
      seen.add(`${flip}`);
      seen.add(`dx${dx}`);
      // every output pixel must match the predicted source pixel or the zero padding
      for (let r = 0; r < 32; r++) {
        for (let c = 0; c < 32; c++) {
          const sr = r + dy;
          const sc = (flip ? 31 - c : c) + dx;
          const inside = sr >= 0 && sr < 32 && sc >= 0 && sc < 32;
          const want = [inside ? sc : 0, inside ? sr : 0, inside ? 200 : 0];
          for (let ch = 0; ch < 3; ch++) {
            if (Math.abs(at(out.x, 0, r, c, ch) - norm(ch, want[ch])) > 1e-5) mismatches.push(`trial ${trial} (${r},${c},${ch})`);
          }
        }
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    // both flip states and all 9 horizontal offsets occur
    expect(seen.has('true') && seen.has('false')).toBe(true);
    for (let d = -CROP_PADDING; d <= CROP_PADDING; d++) expect(seen.has(`dx${d}`)).toBe(true);
  });

  it('the same augmentation seed gives identical batches', () => {
    const set = positionalSet(4);
    const a = allocBatch(4);
    const b = allocBatch(4);
    fillBatch(set, range(4), 0, 4, new Rng(3), a);
    fillBatch(set, range(4), 0, 4, new Rng(3), b);
    expect(a.x).toEqual(b.x);
  });
});

describe('epochOrder', () => {
  it('returns a seeded permutation and leaves the input alone', () => {
    const idx = Int32Array.from([10, 11, 12, 13, 14, 15, 16, 17]);
    const a = epochOrder(idx, new Rng(1));
    expect(Array.from(idx)).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from(idx));
    expect(a).toEqual(epochOrder(idx, new Rng(1)));
    expect(a).not.toEqual(idx);
  });
});
