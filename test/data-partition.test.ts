import { describe, expect, it } from 'vitest';
import { partition, type PartitionKind } from '../core/data/partition.ts';
import { fractionIndices } from '../core/data/subset.ts';
import { generateSynthetic } from '../core/data/synthetic.ts';
import { Rng } from '../core/rng.ts';

function labelsOf(n: number, k: number, seed: number): Uint8Array {
  const l = Uint8Array.from({ length: n }, (_, i) => i % k);
  return new Rng(seed).shuffle(l);
}

function expectDisjointCover(shards: Int32Array[], n: number) {
  const seen = new Uint8Array(n);
  for (const s of shards) {
    expect(s.length).toBeGreaterThan(0);
    for (const i of s) seen[i]++;
  }
  expect(seen.every((v) => v === 1)).toBe(true);
}

/** Mean over shards of the share of a shard's images in its most common class. */
function meanTopClassShare(shards: Int32Array[], labels: Uint8Array, k: number): number {
  let sum = 0;
  for (const s of shards) {
    const c = new Array(k).fill(0);
    for (const i of s) c[labels[i]]++;
    sum += Math.max(...c) / s.length;
  }
  return sum / shards.length;
}

describe('partition', () => {
  const labels = labelsOf(1000, 10, 9);

  it('contiguous gives the reference blocks [r*N/W, (r+1)*N/W)', () => {
    const shards = partition('contiguous', labels.subarray(0, 10), 3, { seed: 0, alpha: 1 });
    expect(shards.map((s) => Array.from(s))).toEqual([[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]);
  });

  for (const kind of ['contiguous', 'iid', 'dirichlet'] as PartitionKind[]) {
    it(`${kind}: disjoint, covering, non-empty, deterministic per seed`, () => {
      for (const w of [1, 2, 7]) {
        const a = partition(kind, labels, w, { seed: 5, alpha: 0.3 });
        expect(a).toHaveLength(w);
        expectDisjointCover(a, labels.length);
        expect(partition(kind, labels, w, { seed: 5, alpha: 0.3 })).toEqual(a);
      }
      if (kind !== 'contiguous') expect(partition(kind, labels, 4, { seed: 6, alpha: 0.3 })).not.toEqual(partition(kind, labels, 4, { seed: 5, alpha: 0.3 }));
    });
  }

  it('iid shards are even in size and mixed in class', () => {
    const shards = partition('iid', labels, 4, { seed: 1, alpha: 1 });
    expect(shards.map((s) => s.length)).toEqual([250, 250, 250, 250]);
    expect(meanTopClassShare(shards, labels, 10)).toBeLessThan(0.2);
  });

  it('dirichlet skew grows as alpha shrinks, and no shard is empty even at tiny alpha', () => {
    const share = (alpha: number) => {
      let s = 0;
      for (let seed = 0; seed < 5; seed++) s += meanTopClassShare(partition('dirichlet', labels, 8, { seed, alpha }), labels, 10);
      return s / 5;
    };
    const [wide, mid, narrow] = [share(100), share(1), share(0.05)];
    expect(wide).toBeLessThan(mid);
    expect(mid).toBeLessThan(narrow);
    expect(wide).toBeLessThan(0.25);
    expect(narrow).toBeGreaterThan(0.6);
    expectDisjointCover(partition('dirichlet', labelsOf(20, 2, 1), 16, { seed: 2, alpha: 0.01 }), 20);
  });

  it('refuses more shards than images with a clear error', () => {
    expect(() => partition('iid', labels.subarray(0, 3), 4, { seed: 0, alpha: 1 })).toThrow(/cannot split 3 training images into 4 non-empty shards/);
  });
});

describe('fractionIndices', () => {
  const { train } = generateSynthetic({ numClasses: 5, trainCount: 503, testCount: 5, seed: 2 });

  it('fraction 1 keeps every record in order', () => {
    expect(Array.from(fractionIndices(train, 1, 0))).toEqual(Array.from({ length: 503 }, (_, i) => i));
  });

  it('is seeded, stratified by class, distinct and in the original order', () => {
    const a = fractionIndices(train, 0.2, 7);
    expect(a.length).toBe(101);
    const per = new Array(5).fill(0);
    for (const i of a) per[train.labels[i]]++;
    for (const c of per) expect(c === 20 || c === 21).toBe(true);
    for (let k = 1; k < a.length; k++) expect(a[k]).toBeGreaterThan(a[k - 1]);
    expect(fractionIndices(train, 0.2, 7)).toEqual(a);
    expect(fractionIndices(train, 0.2, 8)).not.toEqual(a);
    expect(() => fractionIndices(train, 0, 1)).toThrow(/fraction must be in \(0, 1\]/);
  });
});
