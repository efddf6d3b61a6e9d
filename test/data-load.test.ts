import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DatasetSchema } from '../core/config.ts';
import { loadForAggregator, loadForExperiment, loadTrainSet, shardIndices } from '../core/data/load.ts';
import { readManifest } from '../core/data/manifest.ts';
import { partition } from '../core/data/partition.ts';
import { writeSynthetic } from '../core/data/synthetic.ts';
import type { ImageSet } from '../core/data/types.ts';

const root = mkdtempSync(join(tmpdir(), 'fedslice-load-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function captureStderr<T>(f: () => T): { value: T; text: string } {
  const original = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: f(), text };
  } finally {
    process.stderr.write = original;
  }
}

describe('loadForExperiment', () => {
  it('generates the default synthetic set when the folder holds none, and says so', () => {
    const dir = join(root, 'default');
    const cfg = DatasetSchema.parse({ name: 'synthetic', dir });
    const first = captureStderr(() => loadForExperiment(cfg, 1));
    expect(first.text).toContain(`no synthetic set in ${dir}; generating the default one (10 classes, 10000 train, 2000 test, seed 0)`);
    expect(first.value.train.count).toBe(10_000);
    expect(first.value.test.count).toBe(2_000);
    expect(readManifest(dir)?.seed).toBe(0);
    const again = captureStderr(() => loadForExperiment(cfg, 1));
    expect(again.text).toBe('');
    expect(Buffer.from(again.value.train.images).equals(Buffer.from(first.value.train.images))).toBe(true);
  });

  it('applies the fraction to both splits, seeded', () => {
    const dir = join(root, 'small');
    const full = writeSynthetic(dir, { numClasses: 4, trainCount: 400, testCount: 100, seed: 3 });
    const cfg = DatasetSchema.parse({ name: 'synthetic', dir, fraction: 0.25 });
    const a = loadForExperiment(cfg, 5);
    expect([a.train.count, a.test.count]).toEqual([100, 25]);
    expect(loadForExperiment(cfg, 5).train.labels).toEqual(a.train.labels);
    // every kept image is one of the originals, with its own label
    const key = (set: ImageSet, i: number) => Buffer.from(set.images.subarray(i * 3072, (i + 1) * 3072)).toString('base64');
    const originals = new Map(Array.from({ length: full.train.count }, (_, i) => [key(full.train, i), full.train.labels[i]]));
    for (let i = 0; i < a.train.count; i++) expect(originals.get(key(a.train, i))).toBe(a.train.labels[i]);
  });

  it("gives a trainer and an aggregator the very sets loadForExperiment cuts, each only what it uses", () => {
    const dir = join(root, 'roles');
    writeSynthetic(dir, { numClasses: 4, trainCount: 400, testCount: 100, seed: 3 });
    for (const fraction of [0.25, 1]) {
      const cfg = DatasetSchema.parse({ name: 'synthetic', dir, fraction });
      const both = loadForExperiment(cfg, 5);
      const same = (a: ImageSet, b: ImageSet) => {
        expect({ ...a, images: null }).toEqual({ ...b, images: null });
        expect(Buffer.from(a.images).equals(Buffer.from(b.images))).toBe(true);
      };
      same(loadTrainSet(cfg, 5), both.train);
      const aggregator = loadForAggregator(cfg, 5);
      same(aggregator.test, both.test);
      expect(aggregator.train).toEqual({ count: both.train.count, labels: both.train.labels, numClasses: 4 });
      expect('images' in aggregator.train).toBe(false);
    }
  });

  it('cifar100 with no files says to run fedslice data download', () => {
    const dir = join(root, 'none');
    expect(() => loadForExperiment(DatasetSchema.parse({ name: 'cifar100', dir }), 1)).toThrow(
      `CIFAR-100 is not in ${dir} (no train.bin / test.bin); run \`fedslice data download --dir ${dir}\` first`,
    );
  });
});

describe('shardIndices', () => {
  it('is the configured partition of the training labels, shard by shard', () => {
    const dir = join(root, 'shards');
    writeSynthetic(dir, { numClasses: 5, trainCount: 300, testCount: 10, seed: 1 });
    for (const name of ['contiguous', 'iid', 'dirichlet'] as const) {
      const cfg = DatasetSchema.parse({ name: 'synthetic', dir, partition: name, alpha: 0.5 });
      const { train } = loadForExperiment(cfg, 4);
      const all = partition(name, train.labels, 3, { seed: 4, alpha: 0.5 });
      for (let s = 0; s < 3; s++) expect(shardIndices(train, cfg, 3, s, 4)).toEqual(all[s]);
      expect(() => shardIndices(train, cfg, 3, 3, 4)).toThrow(/shard 3 is outside \[0, 3\)/);
    }
  });
});
