import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSynthetic, writeSynthetic } from '../core/data/synthetic.ts';
import type { ImageSet } from '../core/data/types.ts';

const root = mkdtempSync(join(tmpdir(), 'fedslice-synth-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Test accuracy of the nearest class mean on raw pixels. */
function nearestMeanAccuracy(train: ImageSet, test: ImageSet): number {
  const K = train.numClasses;
  const D = 3072;
  const mean = new Float64Array(K * D);
  const n = new Float64Array(K);
  for (let i = 0; i < train.count; i++) {
    const l = train.labels[i];
    n[l]++;
    for (let d = 0; d < D; d++) mean[l * D + d] += train.images[i * D + d];
  }
  for (let k = 0; k < K; k++) for (let d = 0; d < D; d++) mean[k * D + d] /= n[k];
  let correct = 0;
  for (let i = 0; i < test.count; i++) {
    let best = -1;
    let bestDist = Infinity;
    for (let k = 0; k < K; k++) {
      let dist = 0;
      for (let d = 0; d < D; d++) {
        const v = test.images[i * D + d] - mean[k * D + d];
        dist += v * v;
      }
      if (dist < bestDist) [best, bestDist] = [k, dist];
    }
    if (best === test.labels[i]) correct++;
  }
  return correct / test.count;
}

describe('synthetic set', () => {
  it('the same seed gives identical files, another seed different ones', () => {
    const opts = { numClasses: 5, trainCount: 200, testCount: 50 };
    writeSynthetic(join(root, 'a'), { ...opts, seed: 3 });
    writeSynthetic(join(root, 'b'), { ...opts, seed: 3 });
    writeSynthetic(join(root, 'c'), { ...opts, seed: 4 });
    const files = readdirSync(join(root, 'a')).sort();
    expect(files).toEqual(['coarse_label_names.txt', 'fedslice-synthetic.json', 'fine_label_names.txt', 'test.bin', 'train.bin']);
    for (const f of files) expect(readFileSync(join(root, 'b', f)).equals(readFileSync(join(root, 'a', f)))).toBe(true);
    expect(readFileSync(join(root, 'c', 'train.bin')).equals(readFileSync(join(root, 'a', 'train.bin')))).toBe(false);
  });

  it('has balanced classes, train and test drawn apart, labels in range', () => {
    const s = generateSynthetic({ numClasses: 7, trainCount: 700, testCount: 70, seed: 1 });
    const counts = new Array(7).fill(0);
    for (const l of s.train.labels) counts[l]++;
    expect(counts).toEqual(new Array(7).fill(100));
    expect(Math.max(...s.test.labels)).toBe(6);
    expect(s.train.images.subarray(0, 3072)).not.toEqual(s.test.images.subarray(0, 3072));
    expect(() => generateSynthetic({ numClasses: 1, trainCount: 1, testCount: 1, seed: 0 })).toThrow(/classes must be/);
  });

  it('is learnable but not trivial: nearest class mean on raw pixels beats chance clearly, far from perfect', () => {
    const s = generateSynthetic({ numClasses: 10, trainCount: 2000, testCount: 400, seed: 0 });
    const acc = nearestMeanAccuracy(s.train, s.test);
    expect(acc).toBeGreaterThan(0.2); // chance is 0.1
    expect(acc).toBeLessThan(0.8);
  });
});
