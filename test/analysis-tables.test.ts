/**
 * The analysis tables on the fixture store (test/fixtures/make-results-store.ts), against
 * numbers worked out by hand from the chosen final accuracies and losses.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLearningRate, shownConfigFields } from '../analysis/fields.ts';
import { configStatsView, renderText, timingView } from '../analysis/format.ts';
import { type LoadedStore, loadStore } from '../analysis/load.ts';
import {
  type ConfigStats,
  configStats,
  curvePoints,
  finalRuns,
  summarize,
  swapComparison,
  timingStats,
  topConfigs,
} from '../analysis/tables.ts';
import { applyWhere, parseWhere } from '../analysis/where.ts';
import { isFedsliceError } from '../core/errors.ts';
import { writeFixtureStore } from './fixtures/make-results-store.ts';

let dir: string;
let store: LoadedStore;
let stats: ConfigStats[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedslice-analysis-'));
  writeFixtureStore(join(dir, 'results'));
  store = loadStore(join(dir, 'results'));
  stats = configStats(store.rounds);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const find = (ws: number, lr: number, swap: boolean) => {
  const s = stats.find((x) => x.worldSize === ws && x.learningRate === lr && x.swap === swap);
  if (!s) throw new Error(`no config W${ws} lr${lr} swap${swap}`);
  return s;
};
const sampleStd = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

describe('loading the store', () => {
  it('skips the torn last line and keeps the last write of a resumed round, with warnings', () => {
    expect(store.warnings.some((w) => w.includes('rounds.jsonl') && w.includes('torn last line'))).toBe(true);
    expect(store.warnings.some((w) => w.includes('written twice'))).toBe(true);
    // 17 finished runs x 4 rounds + the failed run's rounds 0 and 1; the duplicate counted once
    expect(store.rounds.numRows()).toBe(70);
    expect(store.runs.numRows()).toBe(18);
  });

  it('says clearly when the store is missing or empty', () => {
    const missing = join(dir, 'nothing-here');
    expect(() => loadStore(missing)).toThrowError(/no results in .*nothing-here: run `fedslice runner sweep --config configs\/smoke.json` first/);
    const empty = join(dir, 'empty');
    mkdirSync(empty, { recursive: true });
    writeFileSync(join(empty, 'runs.jsonl'), '');
    writeFileSync(join(empty, 'rounds.jsonl'), '\n');
    try {
      loadStore(empty);
      expect.unreachable();
    } catch (e) {
      expect(isFedsliceError(e) && e.code).toBe('FEDSLICE_ERR_NO_RESULTS');
    }
  });

  it('reports unparsable lines in the middle instead of failing', () => {
    const d = join(dir, 'bad-lines');
    writeFixtureStore(d);
    appendFileSync(join(d, 'runs.jsonl'), 'not json\n{"kind":"run"}\n');
    const s = loadStore(d);
    expect(s.warnings.some((w) => w.startsWith('runs.jsonl: skipped 1 unparsable line(s): 39'))).toBe(true);
    expect(s.warnings.some((w) => w.startsWith('runs.jsonl: skipped 1 record(s) without'))).toBe(true);
    expect(s.runs.numRows()).toBe(18);
  });
});

describe('store summary', () => {
  it('counts runs by status, data points and the values each parameter took', () => {
    const s = summarize(store);
    expect(s.runs).toBe(18);
    expect(s.byStatus).toEqual([
      { status: 'completed', runs: 17 },
      { status: 'failed', runs: 1 },
    ]);
    expect(s.finishedRuns).toBe(17);
    expect(s.roundRecords).toBe(70);
    expect(s.configurations).toBe(6);
    const values = Object.fromEntries(s.parameters.map((p) => [p.field, p.values]));
    expect(values.worldSize).toEqual([1, 2]);
    expect(values.learningRate).toEqual([1e-4, 1e-3]);
    expect(values.swap).toEqual([false, true]);
    expect(values.seed).toEqual([42, 77, 123]);
    expect(values.rounds).toEqual([3]);
  });
});

describe('final-round statistics per configuration', () => {
  it('aggregates over seeds: n, mean, sample std, min, max', () => {
    expect(stats).toHaveLength(6);
    const a = find(1, 1e-4, false);
    expect(a.n).toBe(3);
    expect(a.accMean).toBeCloseTo(0.61, 12);
    expect(a.accStd).toBeCloseTo(0.01, 12);
    expect([a.accMin, a.accMax]).toEqual([0.6, 0.62]);
    expect(a.lossMean).toBeCloseTo(1.45, 12);
    expect(a.lossStd).toBeCloseTo(0.05, 12);
    const e = find(2, 1e-3, false);
    expect(e.accMean).toBeCloseTo(0.13, 12);
    expect(e.accStd).toBeCloseTo(0.03, 12);
  });

  it('uses the last write of the resumed run (0.24, not the stale 0.99)', () => {
    const c = find(2, 1e-4, false);
    expect(c.n).toBe(3);
    expect(c.accMean).toBeCloseTo(0.22, 12);
    expect(c.accMax).toBe(0.24);
    expect(c.lossMean).toBeCloseTo(3.1, 12);
    expect(c.lossMin).toBe(3.0);
  });

  it('leaves the failed run out: W2 lr1e-3 swap has n=2', () => {
    const f = find(2, 1e-3, true);
    expect(f.n).toBe(2);
    expect(f.accMean).toBeCloseTo(0.15, 12);
    expect(f.accStd).toBeCloseTo(sampleStd([0.12, 0.18]), 12);
    expect(f.accStd).toBeCloseTo(0.0424264, 6);
    expect(f.lossMean).toBeCloseTo(3.6, 12);
    expect(f.lossStd).toBeCloseTo(0.2828427, 6);
  });

  it("gives std null with one seed, printed as '-'", () => {
    const one = applyWhere(store.rounds, parseWhere('seed=42'));
    const s = configStats(one);
    expect(s).toHaveLength(6);
    expect(s.every((x) => x.n === 1 && x.accStd === null && x.lossStd === null)).toBe(true);
    const text = renderText(configStatsView(s, shownConfigFields(s)));
    const firstRow = text.split('\n')[4];
    expect(firstRow.split(/\s+/)).toEqual(['1', '1e-4', 'no', '1', '0.6200', '-', '0.6200', '0.6200', '1.4000', '-', '1.4000', '1.4000']);
  });
});

describe('top configurations', () => {
  it('ranks by mean final accuracy, highest first', () => {
    const top = topConfigs(stats, 'testAccuracy', 5);
    expect(top.map((t) => [t.rank, t.worldSize, t.learningRate, t.swap])).toEqual([
      [1, 1, 1e-4, false],
      [2, 1, 1e-3, false],
      [3, 2, 1e-4, true],
      [4, 2, 1e-4, false],
      [5, 2, 1e-3, true],
    ]);
  });

  it('ranks by mean final loss, lowest first (W2 lr1e-3: no swap 3.50 before swap 3.60)', () => {
    const top = topConfigs(stats, 'testLoss', 6);
    expect(top.map((t) => t.lossMean.toFixed(2))).toEqual(['1.45', '1.85', '2.90', '3.10', '3.50', '3.60']);
    expect(top[4].swap).toBe(false);
    expect(top[5].swap).toBe(true);
    expect(topConfigs(stats, 'testLoss', 2)).toHaveLength(2);
  });
});

describe('swap vs no swap', () => {
  it('pairs equal settings and subtracts the mean final accuracies', () => {
    const rows = swapComparison(stats);
    expect(rows).toHaveLength(2); // W=1 has no swap runs
    const [lo, hi] = [rows.find((r) => r.learningRate === 1e-4)!, rows.find((r) => r.learningRate === 1e-3)!];
    expect(lo.accDiff).toBeCloseTo(0.06, 12);
    expect([lo.nNoSwap, lo.nSwap]).toEqual([3, 3]);
    expect(hi.accDiff).toBeCloseTo(0.02, 12);
    expect([hi.nNoSwap, hi.nSwap]).toEqual([3, 2]);
  });
});

describe('timing per configuration', () => {
  it('averages training rounds only and computes the speedup over W=1', () => {
    const t = timingStats(store.rounds);
    const w1 = t.find((x) => x.worldSize === 1 && x.learningRate === 1e-4)!;
    const w2 = t.find((x) => x.worldSize === 2 && x.learningRate === 1e-4 && x.swap)!;
    // W=1 rounds 1..3: train 7, 8, 9 + transfer 0.5 + merge 0.1 + eval 1.4; round 0 left out
    expect(w1.roundsCounted).toBe(9);
    expect(w1.trainSeconds).toBeCloseTo(8, 12);
    expect(w1.roundSeconds).toBeCloseTo(10, 12);
    expect(w1.transferSeconds).toBeCloseTo(0.5, 12);
    expect(w1.mergeSeconds).toBeCloseTo(0.1, 12);
    expect(w1.evalSeconds).toBeCloseTo(1.4, 12);
    expect(w1.samplesPerSecond).toBeCloseTo(125, 12);
    expect(w1.speedup).toBeCloseTo(1, 12);
    expect(w2.roundSeconds).toBeCloseTo(6.6, 12);
    expect(w2.samplesPerSecond).toBeCloseTo(250, 12);
    // swap at W=1 is skipped, so the no-swap W=1 run is the baseline
    expect(w2.speedup).toBeCloseTo(10 / 6.6, 12);
    // the failed run's rounds are not counted
    expect(t.find((x) => x.worldSize === 2 && x.learningRate === 1e-3 && x.swap)!.roundsCounted).toBe(6);
  });

  it('gives no speedup without a W=1 run', () => {
    const t = timingStats(applyWhere(store.rounds, parseWhere('worldSize=2')));
    expect(t).toHaveLength(4);
    expect(t.every((x) => x.speedup === null)).toBe(true);
    expect(renderText(timingView(t, ['worldSize', 'learningRate', 'swap']))).toMatch(/ 1\.40\s+-\s+250\.0\s+-\n/);
  });
});

describe('learning curves and final runs', () => {
  it('averages every round over seeds with a +/- std band', () => {
    const pts = curvePoints(store.rounds).filter((p) => p.worldSize === 2 && p.learningRate === 1e-4 && !p.swap);
    expect(pts.map((p) => p.round)).toEqual([0, 1, 2, 3]);
    expect(pts.every((p) => p.n === 3)).toBe(true);
    expect(pts[0].accMean).toBeCloseTo(0.01, 12);
    expect(pts[3].accMean).toBeCloseTo(0.22, 12);
    expect(pts[3].accLo).toBeCloseTo(0.2, 12);
    expect(pts[3].accHi).toBeCloseTo(0.24, 12);
  });

  it('has one final row per finished run', () => {
    const f = finalRuns(store.rounds);
    expect(f).toHaveLength(17);
    expect(f.some((r) => r.testAccuracy === 0.99)).toBe(false);
  });
});

describe('--where', () => {
  it('filters by key fields, with alternatives', () => {
    const w = parseWhere('worldSize=2,swap=true,learningRate=1e-4|1e-3');
    expect(configStats(applyWhere(store.rounds, w)).map((s) => s.config)).toEqual([
      'ws2_lr0.0001_swap1_lsw0_r3_slice_synthetic_w0.125',
      'ws2_lr0.001_swap1_lsw0_r3_slice_synthetic_w0.125',
    ]);
    expect(applyWhere(store.runs, w).numRows()).toBe(6);
  });

  it('rejects an unknown key or a bad value in one line naming the valid keys', () => {
    expect(() => parseWhere('worlds=2')).toThrowError(/unknown key "worlds"; valid keys: worldSize, learningRate, swap, layerwiseSwap, rounds, mode, dataset, width, fraction, seed/);
    expect(() => parseWhere('worldSize=two')).toThrowError(/worldSize needs a number, got "two"/);
    expect(() => parseWhere('swap=maybe')).toThrowError(/swap needs true or false/);
    expect(() => parseWhere('swap')).toThrowError(/not key=value/);
  });
});

describe('formatting', () => {
  it('writes learning rates readably', () => {
    expect([1e-4, 3e-4, 2.5e-5, 1e-3, 0.01, 0.1, 0].map(formatLearningRate)).toEqual(['1e-4', '3e-4', '2.5e-5', '1e-3', '0.01', '0.1', '0']);
  });

  it('aligns columns: every right-aligned cell ends where its header ends', () => {
    const text = renderText(configStatsView(stats, shownConfigFields(stats)));
    const lines = text.trimEnd().split('\n');
    const header = lines[2];
    const rule = lines[3];
    const rows = lines.slice(4, 10);
    expect(rows).toHaveLength(6);
    const meanEnd = header.indexOf('acc mean') + 'acc mean'.length;
    for (const r of rows) expect(r.slice(meanEnd - 6, meanEnd)).toMatch(/^0\.\d{4}$/);
    expect(rule.length).toBe(header.length);
    expect(rows[0].slice(meanEnd - 6, meanEnd)).toBe('0.6100');
  });
});
