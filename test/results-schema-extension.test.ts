/**
 * Adding a key field takes one line: here train.epochs is promoted by extending the key
 * declaration (core/results/key-fields.ts) for this file only, and nothing else changes. Runs that
 * differ only in epochs then get distinct key names and configuration ids in the store, distinct
 * rows in the analysis tables, distinct lines in the charts, and no merge warning. The same store
 * without the extra field merges them (results-schema.test.ts, "a setting outside the key").
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { configId, keyName, runKey, runKeyFields } from '../core/results/schema.ts';
import { ResultsStore } from '../core/results/store.ts';
import { loadStore } from '../analysis/load.ts';
import { configStats, curvePoints, scalingRows, timingStats } from '../analysis/tables.ts';
import { learningCurvesChart, scalingChart } from '../analysis/charts.ts';
import { parseWhere, applyWhere } from '../analysis/where.ts';
import { EPOCHS, FINAL_ACC, SEEDS, epochsConfig, expectDerivedListsComplete, writeEpochsStore } from './helpers/key-fields.ts';

vi.mock('../core/results/key-fields.ts', async (importOriginal) => {
  const declared = await importOriginal<typeof import('../core/results/key-fields.ts')>();
  const epochs = { name: 'epochs', kind: 'number', from: 'train.epochs', label: 'epochs', token: 'e' } as const;
  return { ...declared, KEY_SPEC: [...declared.KEY_SPEC, epochs] };
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedslice-schema-ext-'));
  writeEpochsStore(join(dir, 'results'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('train.epochs promoted to a key field in the declaration only', () => {
  it('every derived list includes it', () => {
    expectDerivedListsComplete(epochsConfig(3, 1));
  });

  it('the store keeps the configurations apart by name, not only by hash', () => {
    const [one, three] = EPOCHS.map((e) => epochsConfig(e, SEEDS[0]));
    expect(keyName(runKeyFields(one))).toBe('ws2_lr0.0001_swap0_lsw0_r2_seed1_slice_synthetic_w0.125_e1');
    expect(keyName(runKeyFields(three))).toBe('ws2_lr0.0001_swap0_lsw0_r2_seed1_slice_synthetic_w0.125_e3');
    expect(configId(runKeyFields(one))).not.toBe(configId(runKeyFields(three)));
    const store = new ResultsStore(join(dir, 'results'));
    expect(store.completedKeys()).toEqual(new Set(EPOCHS.flatMap((e) => SEEDS.map((s) => runKey(epochsConfig(e, s))))));
    expect(store.completedKeys().size).toBe(4);
  });

  it('the analysis shows one row, one curve and one scaling line per epochs value, and no merge warning', () => {
    const loaded = loadStore(join(dir, 'results'));
    expect(loaded.warnings).toEqual([]);
    const stats = configStats(loaded.rounds);
    expect(stats.map((s) => [Reflect.get(s, 'epochs'), s.n, s.accMean])).toEqual([
      [1, 2, expect.closeTo((FINAL_ACC[1][0] + FINAL_ACC[1][1]) / 2, 9)],
      [3, 2, expect.closeTo((FINAL_ACC[3][0] + FINAL_ACC[3][1]) / 2, 9)],
    ]);
    expect(new Set(stats.map((s) => s.config)).size).toBe(2);

    const curves = learningCurvesChart(curvePoints(loaded.rounds));
    const curveValues = valuesOf(curves);
    expect(new Set(curveValues.map((v) => v.config)).size).toBe(2);

    const scaling = scalingChart(scalingRows(stats, timingStats(loaded.rounds)));
    expect(new Set(valuesOf(scaling).flatMap((v) => (v.series === undefined ? [] : [v.series]))).size).toBe(2);

    // and --where knows the field, with its kind
    const where = parseWhere('epochs=3');
    expect(applyWhere(loaded.rounds, where).array('testAccuracy').length).toBe(2 * 3);
    expect(() => parseWhere('epochs=many')).toThrow(/epochs needs a number/);
  });
});

/** The data rows of a chart spec, wherever a layer keeps them. */
function valuesOf(spec: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') {
      for (const [k, v] of Object.entries(x)) {
        if (k === 'values' && Array.isArray(v)) out.push(...v.filter((r): r is Record<string, unknown> => !!r && typeof r === 'object'));
        else walk(v);
      }
    }
  };
  walk(spec);
  return out;
}
