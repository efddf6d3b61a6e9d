/**
 * The results schema: run keys stay what they were, every derived list covers every key field,
 * one list of neutral settings serves the hash and the merge warning, the latest record of a key,
 * and the typed run summary. The companion results-schema-extension.test.ts promotes a field.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExperiment, readJsonFile } from '../core/config.ts';
import { CONFIG_FIELDS, KEY_FIELDS, configHash, configId, keyName, runKey, runKeyFields } from '../core/results/schema.ts';
import { ResultsStore } from '../core/results/store.ts';
import { runSummary, summaryField } from '../core/results/summary.ts';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { expandSweep } from '../runner/grid.ts';
import { parseSweep } from '../core/config.ts';
import { loadStore } from '../analysis/load.ts';
import { configStats } from '../analysis/tables.ts';
import { mergedSettingsWarnings } from '../analysis/merged-settings.ts';
import { EPOCHS, SEEDS, epochsConfig, expectDerivedListsComplete, writeEpochsStore } from './helpers/key-fields.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedslice-schema-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('run keys', () => {
  it('are the same as before the schema (completed runs in existing stores stay completed)', () => {
    expect(runKey(parseExperiment({}))).toBe('ws1_lr0.0001_swap0_lsw0_r10_seed123_slice_synthetic_w1_81dddf99');
    expect(runKey(parseExperiment(readJsonFile('configs/example.json')))).toBe('ws2_lr0.001_swap1_lsw0_r3_seed123_slice_synthetic_w0.125_6630f80d');
    const asyncConfig = {
      dataset: { name: 'cifar100', dir: '/data/c' },
      federation: { mode: 'async', worldSize: 4, minTrainers: 2, async: { mixing: 0.5 } },
      train: { learningRate: 3e-4 },
      eval: { batchSize: 100 },
      backend: 'wasm',
      name: 'x',
      seed: 7,
    };
    expect(runKey(parseExperiment(asyncConfig))).toBe('ws4_lr0.0003_swap0_lsw0_r10_seed7_async_cifar100_w1_29627975');
    const reference = expandSweep(parseSweep(readJsonFile('configs/reference.json')));
    expect(reference.map((r) => r.key)).toHaveLength(63);
    expect(reference[0].key).toBe('ws1_lr0.00001_swap0_lsw0_r10_seed123_slice_cifar100_w1_48076f7a');
    expect(reference[62].key).toBe('ws8_lr0.001_swap1_lsw0_r10_seed77_slice_cifar100_w1_fcb5c3c8');
  });

  it('every list derived from the key declaration covers every key field', () => {
    expectDerivedListsComplete(parseExperiment(readJsonFile('configs/example.json')));
    // the analysis columns: the configuration, then the seed
    expect(KEY_FIELDS).toEqual([...CONFIG_FIELDS, 'seed']);
    expect(configId(runKeyFields(parseExperiment({})))).toBe('ws1_lr0.0001_swap0_lsw0_r10_slice_synthetic_w1');
  });

  it('a config lacking a key field is refused with the field named', () => {
    const c = parseExperiment({});
    Reflect.deleteProperty(c.federation, 'rounds');
    expect(() => runKeyFields(c)).toThrow(/lacks run key field\(s\) rounds/);
  });
});

describe('settings that do not change what a run computes', () => {
  const base = parseExperiment({ dataset: { name: 'synthetic', dir: 'data/a' } });

  it('change neither the hash nor raise a merge warning; any other setting does both', () => {
    const neutral = parseExperiment({ name: 'other', backend: 'wasm', dataset: { name: 'synthetic', dir: 'data/a' }, federation: { roundTimeoutS: 5, minTrainers: 1 }, eval: { batchSize: 7 }, log: { everySteps: 3 } });
    expect(configHash(neutral)).toBe(configHash(base));
    expect(mergedSettingsWarnings([record(base, 'a'), record(neutral, 'b')])).toEqual([]);

    for (const [path, other] of [
      ['dataset.dir', parseExperiment({ dataset: { name: 'synthetic', dir: 'data/b' } })],
      ['train.epochs', parseExperiment({ dataset: { name: 'synthetic', dir: 'data/a' }, train: { epochs: 5 } })],
      ['dataset.partition', parseExperiment({ dataset: { name: 'synthetic', dir: 'data/a', partition: 'iid' } })],
    ] as const) {
      expect(configHash(other), path).not.toBe(configHash(base));
      const w = mergedSettingsWarnings([record(base, 'a'), record(other, 'b')]);
      expect(w, path).toHaveLength(1);
      expect(w[0]).toContain(`differ in ${path} (`);
    }
  });

  it('seeds are the replicate axis: no warning for runs that differ only in seed', () => {
    const other = parseExperiment({ dataset: { name: 'synthetic', dir: 'data/a' }, seed: 9 });
    expect(mergedSettingsWarnings([record(base, 'a'), record(other, 'b')])).toEqual([]);
  });
});

describe('a setting outside the key', () => {
  it('keeps runs apart in the store by hash but merges them into one configuration, with a warning', () => {
    const results = join(dir, 'epochs-today');
    writeEpochsStore(results);
    const keys = EPOCHS.map((e) => runKey(epochsConfig(e, SEEDS[0])));
    expect(new Set(keys).size).toBe(2);
    expect(new Set(EPOCHS.map((e) => keyName(runKeyFields(epochsConfig(e, SEEDS[0])))))).toHaveLength(1);
    const loaded = loadStore(results);
    const stats = configStats(loaded.rounds);
    expect(stats).toHaveLength(1);
    expect(stats[0].n).toBe(4);
    expect(loaded.warnings.some((w) => w.includes('differ in train.epochs (1 | 3)'))).toBe(true);
  });
});

describe('latest record of a key', () => {
  it('is the last write of the newest run of the key that the filter accepts', () => {
    const store = new ResultsStore(join(dir, 'latest'));
    const c = parseExperiment({});
    const key = runKey(c);
    const run = (runId: string, startedAt: string, status: RunRecord['status'], k = key): RunRecord => ({
      kind: 'run', runId, key: k, keyFields: runKeyFields(c), status, config: c, startedAt,
      environment: { backend: 'wasm', node: '', tfjs: '', fedslice: '', host: '', platform: '' },
    });
    expect(store.latestForKey(key)).toBeUndefined();
    store.appendRun(run('a', '2026-01-01', 'started'));
    store.appendRun(run('other', '2026-01-03', 'started', 'other-key'));
    store.appendRun(run('b', '2026-01-02', 'started'));
    store.appendRun(run('a', '2026-01-01', 'failed'));
    store.appendRun(run('b', '2026-01-02', 'completed'));
    expect(store.latestForKey(key)).toMatchObject({ runId: 'b', status: 'completed' });
    expect(store.latestForKey(key, (r) => r.status !== 'completed')).toMatchObject({ runId: 'a', status: 'failed' });
    expect(store.latestForKey(key, (r) => r.startedAt >= '2026-01-02')).toMatchObject({ runId: 'b' });
    expect(store.latestForKey(key, (r) => r.startedAt >= '2026-01-05')).toBeUndefined();
    expect(store.completedKeys()).toEqual(new Set([key]));
  });

  it('rounds: the last write of each round counts', () => {
    const store = new ResultsStore(join(dir, 'rounds'));
    const c = parseExperiment({});
    const round = (runId: string, r: number, acc: number): RoundRecord => ({
      kind: 'round', runId, ...runKeyFields(c), round: r, testLoss: 1, testAccuracy: acc, trainLoss: null,
      roundSeconds: 1, trainSeconds: 1, transferSeconds: 0, mergeSeconds: 0, evalSeconds: 0, bytesSent: 0, bytesReceived: 0,
      samplesPerSecond: 0, trainersReporting: 1, time: '', elapsedSeconds: 10 * r, updatesApplied: 2 * r,
    });
    for (const r of [round('x', 0, 0.1), round('x', 1, 0.2), round('y', 1, 0.9), round('x', 2, 0.3), round('x', 1, 0.25)]) store.appendRound(r);
    expect(store.roundsOf('x').map((r) => [r.round, r.testAccuracy])).toEqual([[0, 0.1], [1, 0.25], [2, 0.3]]);
  });
});

describe('run summary', () => {
  it('sums a run from its round records and is left out when empty', () => {
    const c = parseExperiment({});
    const round = (r: number, staleness: number, maxStaleness: number): RoundRecord => ({
      kind: 'round', runId: 'x', ...runKeyFields(c), round: r, testLoss: 1, testAccuracy: 0.5, trainLoss: null,
      roundSeconds: 1, trainSeconds: 1, transferSeconds: 0, mergeSeconds: 0, evalSeconds: 0, bytesSent: 0, bytesReceived: 0,
      samplesPerSecond: 0, trainersReporting: 1, time: '', elapsedSeconds: 5 + 10 * r, updatesApplied: 4 * r, staleness, maxStaleness,
    });
    const s = runSummary([round(0, 0, 0), round(1, 1, 2), round(2, 2, 3)]);
    expect(s).toEqual({ totalTrainingSeconds: 20, updatesApplied: 8, updatesPerSecond: 0.4, meanStaleness: 1.5, maxStaleness: 3 });
    expect(summaryField(runSummary([]))).toEqual({});
    expect(summaryField({ taskSecondsMin: 1 })).toEqual({ summary: { taskSecondsMin: 1 } });
  });
});

function record(config: ReturnType<typeof parseExperiment>, runId: string): RunRecord {
  return {
    kind: 'run', runId, key: runKey(config), keyFields: runKeyFields(config), status: 'completed', config, startedAt: '',
    environment: { backend: 'wasm', node: '', tfjs: '', fedslice: '', host: '', platform: '' },
  };
}
