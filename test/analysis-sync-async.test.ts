/**
 * The sync-vs-async tables and charts on a hand-made store: fedavg and async runs at W=1 and 2,
 * two seeds each; the async W=2 runs evaluate every 4 updates, so their last round is 2 of a
 * 4-round budget, which must still count as finished.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from 'vega-lite';
import { loadStore, type LoadedStore } from '../analysis/load.ts';
import { hasModeComparison, modeComparison, timePoints } from '../analysis/sync-async.ts';
import { accuracyOverTimeChart, syncAsyncChart } from '../analysis/charts.ts';
import { configStats } from '../analysis/tables.ts';
import { runAnalyze } from '../analysis/analyze.ts';
import { parseExperiment } from '../core/config.ts';
import { ResultsStore } from '../core/results/store.ts';
import { runKey, runKeyFields } from '../core/results/schema.ts';
import type { RoundRecord } from '../core/results/types.ts';

let dir: string;
let store: LoadedStore;

interface Spec {
  worldSize: number;
  mode: 'fedavg' | 'async';
  evalEvery?: number;
  /** per seed: final accuracy, total training seconds, mean staleness */
  seeds: { seed: number; acc: number; total: number; staleness: number }[];
}

const SPECS: Spec[] = [
  { worldSize: 1, mode: 'fedavg', seeds: [{ seed: 1, acc: 0.5, total: 100, staleness: 0 }, { seed: 2, acc: 0.6, total: 120, staleness: 0 }] },
  { worldSize: 1, mode: 'async', seeds: [{ seed: 1, acc: 0.52, total: 104, staleness: 0 }, { seed: 2, acc: 0.58, total: 116, staleness: 0 }] },
  { worldSize: 2, mode: 'fedavg', seeds: [{ seed: 1, acc: 0.4, total: 80, staleness: 0 }, { seed: 2, acc: 0.44, total: 90, staleness: 0 }] },
  { worldSize: 2, mode: 'async', evalEvery: 4, seeds: [{ seed: 1, acc: 0.3, total: 50, staleness: 1.5 }, { seed: 2, acc: 0.34, total: 60, staleness: 2.5 }] },
];
const ROUNDS = 4;
const SAMPLES_PER_ROUND = 1000;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedslice-syncasync-'));
  const s = new ResultsStore(join(dir, 'results'));
  for (const spec of SPECS) {
    for (const x of spec.seeds) {
      const config = parseExperiment({
        dataset: { name: 'synthetic' },
        model: { width: 0.125, numClasses: 10 },
        federation: { worldSize: spec.worldSize, mode: spec.mode, rounds: ROUNDS, ...(spec.evalEvery ? { async: { evalEvery: spec.evalEvery } } : {}) },
        seed: x.seed,
      });
      const key = runKey(config);
      const runId = `${key}-r`;
      const base = { kind: 'run' as const, runId, key, keyFields: runKeyFields(config), config, startedAt: '2026-01-01T00:00:00Z', environment: { backend: 'wasm', node: 'v20', tfjs: '4.22.0', fedslice: '0.1.0', host: 'h', platform: 'linux' } };
      s.appendRun({ ...base, status: 'started' });
      const evals = spec.evalEvery ? (ROUNDS * spec.worldSize) / spec.evalEvery : ROUNDS;
      for (let r = 0; r <= evals; r++) {
        const share = r / evals;
        const rec: RoundRecord = {
          kind: 'round', runId, ...runKeyFields(config), round: r,
          testLoss: 2, testAccuracy: 0.1 + (x.acc - 0.1) * share, trainLoss: r ? 1 : null,
          roundSeconds: x.total / evals, trainSeconds: 1, transferSeconds: 0, mergeSeconds: 0, evalSeconds: 0,
          bytesSent: 0, bytesReceived: 0, samplesPerSecond: 0, trainersReporting: spec.worldSize, time: '2026-01-01T00:00:00Z',
          elapsedSeconds: x.total * share, samplesSeen: ROUNDS * SAMPLES_PER_ROUND * share, updatesApplied: ROUNDS * spec.worldSize * share,
          ...(spec.mode === 'async' ? { version: r, staleness: x.staleness } : {}),
        };
        s.appendRound(rec);
      }
      s.appendRun({
        ...base, status: 'completed', wallSeconds: x.total + 5,
        summary: { totalTrainingSeconds: x.total, updatesApplied: ROUNDS * spec.worldSize, updatesPerSecond: (ROUNDS * spec.worldSize) / x.total, meanStaleness: x.staleness, maxStaleness: Math.ceil(x.staleness) + 1, taskSecondsMin: 1, taskSecondsMean: 2 + x.seed, taskSecondsMax: 3 * x.seed },
      });
    }
  }
  store = loadStore(join(dir, 'results'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sync vs async tables', () => {
  it('counts an async run whose last evaluation is not at `rounds` as finished', () => {
    const stats = configStats(store.rounds);
    const a2 = stats.find((x) => x.mode === 'async' && x.worldSize === 2)!;
    expect(a2.n).toBe(2);
    expect(a2.accMean).toBeCloseTo(0.32, 10);
  });

  it('compares modes per world size: time, accuracy, throughput speedup, staleness', () => {
    expect(hasModeComparison(store.rounds)).toBe(true);
    const rows = modeComparison(store.runs, store.rounds);
    expect(rows.map((r) => `${r.worldSize}/${r.mode}`)).toEqual(['1/async', '1/fedavg', '2/async', '2/fedavg']);
    const get = (w: number, m: string) => rows.find((r) => r.worldSize === w && r.mode === m)!;
    expect(get(1, 'fedavg').totalSeconds).toBeCloseTo(110, 10);
    expect(get(1, 'fedavg').secondsPerRound).toBeCloseTo(27.5, 10);
    expect(get(2, 'async').totalSeconds).toBeCloseTo(55, 10);
    expect(get(2, 'async').accMean).toBeCloseTo(0.32, 10);
    expect(get(2, 'async').accStd).toBeCloseTo(Math.sqrt(0.0008), 10);
    // samples/s = 4000 samples over the mean time; speedup against W=1 of the same mode
    expect(get(2, 'fedavg').samplesPerSecond).toBeCloseTo(4000 / 85, 8);
    expect(get(2, 'fedavg').speedup).toBeCloseTo(110 / 85, 8);
    expect(get(2, 'async').speedup).toBeCloseTo(110 / 55, 8);
    expect(get(1, 'async').speedup).toBeCloseTo(1, 12);
    expect(get(2, 'async').meanStaleness).toBeCloseTo(2, 10);
    expect(get(2, 'async').maxStaleness).toBe(4);
    expect(get(2, 'async').updatesPerSecond).toBeCloseTo(8 / 55, 8);
    expect([get(2, 'async').taskSecondsMin, get(2, 'async').taskSecondsMean, get(2, 'async').taskSecondsMax]).toEqual([1, 3.5, 6]);
  });

  it('places every evaluation at its mean wall-clock time and samples seen', () => {
    const pts = timePoints(store.rounds).filter((p) => p.worldSize === 2 && p.mode === 'async');
    expect(pts.map((p) => p.round)).toEqual([0, 1, 2]);
    expect(pts.map((p) => p.elapsedSeconds)).toEqual([0, 27.5, 55]);
    expect(pts.map((p) => p.samplesSeen)).toEqual([0, 2000, 4000]);
  });

  it('builds chart specs that compile', () => {
    const rows = modeComparison(store.runs, store.rounds);
    for (const spec of [syncAsyncChart(rows), accuracyOverTimeChart(timePoints(store.rounds))]) {
      expect(() => compile(spec)).not.toThrow();
    }
  });

  it('analyze prints the comparison table and renders both charts', async () => {
    let text = '';
    const out = join(dir, 'report');
    const r = await runAnalyze(
      { results: join(dir, 'results'), plots: true, out, top: 3, metric: 'testAccuracy', where: [] },
      { out: (t) => (text += `${t}\n`), warn: () => {} },
    );
    expect(text).toContain('Synchronous vs asynchronous');
    expect(r.files.some((f) => f.endsWith('sync-vs-async.png'))).toBe(true);
    expect(r.files.some((f) => f.endsWith('accuracy-over-time.png'))).toBe(true);
  });
});

describe('runs that share key fields but not settings', () => {
  it('are named in a warning instead of being averaged silently', async () => {
    const { mergedSettingsWarnings } = await import('../analysis/merged-settings.ts');
    const run = (mixing: number, seed: number) => {
      const config = parseExperiment({ federation: { worldSize: 2, mode: 'async', async: { mixing } }, seed });
      return { kind: 'run' as const, runId: `r${mixing}-${seed}`, key: runKey(config), keyFields: runKeyFields(config), status: 'completed' as const, config, startedAt: '', environment: { backend: 'wasm', node: '', tfjs: '', fedslice: '', host: '', platform: '' } };
    };
    expect(mergedSettingsWarnings([run(0.6, 1), run(0.6, 2)])).toEqual([]);
    const w = mergedSettingsWarnings([run(0.6, 1), run(0.3, 1)]);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/^configuration ws2_.*_async_.* has runs that differ in federation\.async\.mixing \(0\.6 \| 0\.3\); the tables average them together/);
  });
});
