/**
 * Shared by the results-schema tests: a store whose runs differ only in train.epochs (not a key
 * field today), and a check that every list derived from the key declaration covers every field.
 * The extension test runs both with train.epochs promoted to a key field.
 */
import { expect } from 'vitest';
import { parseExperiment, type Experiment } from '../../core/config.ts';
import { KEY_SPEC } from '../../core/results/key-fields.ts';
import { valueAt } from '../../core/results/config-paths.ts';
import * as schema from '../../core/results/schema.ts';
import { ResultsStore } from '../../core/results/store.ts';
import type { RoundRecord } from '../../core/results/types.ts';

export const EPOCHS = [1, 3] as const;
export const SEEDS = [1, 2] as const;
/** Final test accuracy by epochs and seed. */
export const FINAL_ACC: Record<number, number[]> = { 1: [0.3, 0.34], 3: [0.5, 0.56] };
const ROUNDS = 2;

export function epochsConfig(epochs: number, seed: number): Experiment {
  return parseExperiment({
    name: 'epochs',
    dataset: { name: 'synthetic' },
    model: { width: 0.125, numClasses: 10 },
    federation: { worldSize: 2, rounds: ROUNDS },
    train: { epochs },
    seed,
  });
}

/** Two configurations (epochs 1 and 3) x two seeds, completed, rounds 0..2. */
export function writeEpochsStore(dir: string): void {
  const store = new ResultsStore(dir);
  const environment = { backend: 'wasm', node: 'v20', tfjs: '4.22.0', fedslice: '0.1.0', host: 'h', platform: 'linux' };
  for (const epochs of EPOCHS) {
    SEEDS.forEach((seed, s) => {
      const config = epochsConfig(epochs, seed);
      const key = schema.runKey(config);
      const runId = `${key}-r`;
      const base = { kind: 'run' as const, runId, key, keyFields: schema.runKeyFields(config), config, startedAt: '2026-01-01T00:00:00Z', environment };
      store.appendRun({ ...base, status: 'started' });
      for (let round = 0; round <= ROUNDS; round++) {
        const acc = 0.1 + ((FINAL_ACC[epochs][s] - 0.1) * round) / ROUNDS;
        const record: RoundRecord = {
          kind: 'round', runId, ...schema.runKeyFields(config), round,
          testLoss: 3 - acc, testAccuracy: acc, trainLoss: round ? 2 : null,
          roundSeconds: 10 * epochs, trainSeconds: 8 * epochs, transferSeconds: 1, mergeSeconds: 0.5, evalSeconds: 0.5,
          bytesSent: 1000, bytesReceived: 1000, samplesPerSecond: 100, trainersReporting: 2, time: '2026-01-01T00:00:00Z',
          elapsedSeconds: 10 * epochs * round, samplesSeen: 500 * round, updatesApplied: 2 * round,
        };
        store.appendRound(record);
      }
      store.appendRun({ ...base, status: 'completed', endedAt: '2026-01-01T00:01:00Z', wallSeconds: 60 });
    });
  }
}

/**
 * Every list derived from the key declaration covers exactly the declared fields, and every
 * readable name (key, configuration, chart series) changes when any field it stands for does.
 */
export function expectDerivedListsComplete(config: Experiment): void {
  const declared: string[] = KEY_SPEC.map((f) => f.name);
  const replicate: string[] = KEY_SPEC.filter((f) => 'role' in f && f.role === 'replicate').map((f) => f.name);
  const configFields = declared.filter((f) => !replicate.includes(f));
  const sorted = (xs: Iterable<string>) => [...xs].sort();
  const key = schema.runKeyFields(config);

  expect(sorted(Object.keys(key))).toEqual(sorted(declared));
  expect(sorted(schema.KEY_FIELDS)).toEqual(sorted(declared));
  expect(sorted(schema.CONFIG_FIELDS)).toEqual(sorted(configFields));
  expect(sorted(Object.keys(schema.FIELD_LABELS))).toEqual(sorted(declared));
  expect(sorted(Object.keys(schema.pickConfig(key)))).toEqual(sorted(configFields));
  const numeric = new Set<string>(schema.NUMERIC_FIELDS);
  const boolean = new Set<string>(schema.BOOLEAN_FIELDS);
  expect(sorted(numeric)).toEqual(sorted(KEY_SPEC.filter((f) => f.kind === 'number').map((f) => f.name)));
  expect(sorted(boolean)).toEqual(sorted(KEY_SPEC.filter((f) => f.kind === 'boolean').map((f) => f.name)));
  expect(sorted(schema.KEY_PATHS)).toEqual(sorted(KEY_SPEC.map((f) => f.from)));
  expect(schema.isRunKey(key)).toBe(true);

  for (const spec of KEY_SPEC) {
    const changed = { ...key, [spec.name]: otherValue(valueAt(key, spec.name)) };
    expect(schema.keyName(changed), `key name must change with ${spec.name}`).not.toBe(schema.keyName(key));
    const isConfig = configFields.includes(spec.name);
    expect(schema.configId(changed) !== schema.configId(key), `configuration id and ${spec.name}`).toBe(isConfig);
    const isSeries = isConfig && !('role' in spec && spec.role === 'scale');
    expect(schema.seriesId(changed) !== schema.seriesId(key), `chart series and ${spec.name}`).toBe(isSeries);
    const { [spec.name]: _dropped, ...without } = key;
    expect(schema.isRunKey(without), `a key without ${spec.name} is incomplete`).toBe(false);
  }
}

function otherValue(v: unknown): unknown {
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  return `${String(v)}-other`;
}
