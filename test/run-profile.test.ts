/** The pieces of a run's profile.json: data statistics of the shards, the timing summary, the file. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseExperiment } from '../core/config.ts';
import { dataStatistics } from '../core/data/statistics.ts';
import { generateSynthetic } from '../core/data/synthetic.ts';
import { fractionIndices } from '../core/data/subset.ts';
import type { LabelSet } from '../core/data/types.ts';
import { buildProfile, timingSummary, writeProfile } from '../core/results/profile.ts';
import { runKey, runKeyFields } from '../core/results/schema.ts';
import type { RoundRecord } from '../core/results/types.ts';

describe('data statistics', () => {
  it('shards cover the training subset; per-class counts per shard add up to the class counts', () => {
    const full = generateSynthetic({ numClasses: 5, trainCount: 1000, testCount: 200, seed: 3 });
    const dataset = parseExperiment({ dataset: { fraction: 0.1, partition: 'dirichlet', alpha: 0.3 } }).dataset;
    const labelsAt = (set: LabelSet, seed: number): LabelSet => {
      const labels = Uint8Array.from(fractionIndices(set, 0.1, seed), (i) => set.labels[i]);
      return { count: labels.length, labels, numClasses: set.numClasses };
    };
    const sets = { train: labelsAt(full.train, 7), test: labelsAt(full.test, 8) };
    const s = dataStatistics(dataset, sets, 3, 7);
    expect([s.dataset, s.fraction, s.partition, s.alpha, s.numClasses, s.trainImages, s.testImages]).toEqual(['synthetic', 0.1, 'dirichlet', 0.3, 5, 100, 20]);
    expect(s.shards.map((x) => x.shard)).toEqual([0, 1, 2]);
    expect(s.shards.reduce((a, x) => a + x.images, 0)).toBe(100);
    for (const x of s.shards) expect(x.perClass.reduce((a, b) => a + b, 0)).toBe(x.images);
    const byClass = [0, 1, 2, 3, 4].map((c) => s.shards.reduce((a, x) => a + x.perClass[c], 0));
    // class-stratified 10%: 20 of each class
    expect(byClass).toEqual([20, 20, 20, 20, 20]);
    expect(s.testPerClass).toEqual([4, 4, 4, 4, 4]);
  });

  it('the iid partition has no alpha', () => {
    const sets = generateSynthetic({ numClasses: 4, trainCount: 80, testCount: 8, seed: 1 });
    const s = dataStatistics(parseExperiment({ dataset: { partition: 'iid' } }).dataset, sets, 2, 1);
    expect('alpha' in s).toBe(false);
    expect(s.shards.map((x) => x.images)).toEqual([40, 40]);
  });
});

describe('profile.json', () => {
  const config = parseExperiment({ federation: { worldSize: 1, rounds: 2 }, model: { width: 0.125, numClasses: 10 } });
  const keyFields = runKeyFields(config);
  const record = (round: number, roundSeconds: number, train: number, acc: number): RoundRecord => ({
    kind: 'round', runId: 'r1', ...keyFields, round, testLoss: 2 - acc, testAccuracy: acc, trainLoss: round ? 1 : null, roundSeconds, trainSeconds: train,
    transferSeconds: round ? 0.5 : 0, mergeSeconds: round ? 0.1 : 0, evalSeconds: 0.4, evalOverlapSeconds: round === 1 ? 0.4 : 0, bytesSent: 0, bytesReceived: 0, samplesPerSecond: round ? 100 * round : 0,
    trainersReporting: round ? 1 : 0, time: '2025-01-01T00:00:00.000Z',
    ...(round ? { trainers: [{ slot: 0, steps: 10, stepP50Seconds: 0.1 * round, stepP95Seconds: 0.2, stepP99Seconds: 0.3 * round, dataLoadShare: 0.1, peakRssBytes: 1000 * round, tensorBytes: 50, tensorCount: 9, gpuBytes: null }] } : {}),
    aggregatorPeakRssBytes: 2000 + round,
  });
  const rounds = [record(0, 0.4, 0, 0.1), record(1, 3, 2, 0.3), record(2, 5, 4, 0.5)];

  it('timing: totals over every record, means over training rounds, first and final accuracy', () => {
    expect(timingSummary(rounds)).toEqual({
      trainingRounds: 2, totalSeconds: 8.4, roundSeconds: 4, trainSeconds: 3, transferSeconds: 0.5, mergeSeconds: 0.1, evalSeconds: 0.4,
      evalOverlapSeconds: 0.2, samplesPerSecond: 150, firstTestAccuracy: 0.1, finalTestAccuracy: 0.5, finalTestLoss: 1.5,
    });
  });

  it('is written whole into logs/<key>/ and reads back alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslice-profile-'));
    try {
      const sets = generateSynthetic({ numClasses: 10, trainCount: 100, testCount: 20, seed: 1 });
      const profile = buildProfile({
        runId: 'r1', key: runKey(config), keyFields, status: 'completed', startedAt: 'a', endedAt: 'b', wallSeconds: 9, config,
        environment: { backend: 'wasm', node: 'v20', tfjs: '4.22.0', fedslice: '0', host: 'h', platform: 'linux' },
        data: dataStatistics(config.dataset, sets, 1, config.seed), rounds,
      });
      const path = writeProfile(dir, profile);
      expect(path).toBe(join(dir, 'logs', runKey(config), 'profile.json'));
      const back = JSON.parse(readFileSync(path, 'utf8'));
      expect(back).toEqual(profile);
      expect(back.trainers.p50).toBeCloseTo(0.15, 12);
      expect(back.trainers).toMatchObject({ n: 2, p99Max: 0.6, trainerPeakRssBytes: 2000, aggregatorPeakRssBytes: 2002, gpuBytes: null });
      expect(back.config.dataset.fraction).toBe(1);
      expect(back.data.shards[0].images).toBe(100);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
