/**
 * The step log and trainer figures in analysis, on the hand-made store of
 * test/fixtures/make-metrics-store.ts: curves (mean +/- std over seeds), summary, latency and
 * memory tables against values worked out by hand; the exports; the charts in the report.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAnalyze } from '../analysis/analyze.ts';
import { loadStore } from '../analysis/load.ts';
import { type StepRun, stepTables } from '../analysis/steps.ts';
import { trainerFiguresTable } from '../analysis/trainer-figures.ts';
import { pickConfig } from '../core/results/schema.ts';
import { bestRuns, parseMetric } from '../analysis/best.ts';
import { FRACTION_ACC, writeFractionStore, writeMetricsStore } from './fixtures/make-metrics-store.ts';
import { fractionRows } from '../analysis/fraction.ts';
import { configStats, timingStats } from '../analysis/tables.ts';
import { parseExperiment } from '../core/config.ts';
import { configId, keyFieldsOf, keyName, runKeyFields } from '../core/results/schema.ts';
import { pngSize } from './fixtures/png.ts';

let dir: string;
let results: string;
const MB = 1024 * 1024;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedslice-metrics-'));
  results = join(dir, 'results');
  writeMetricsStore(results);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function completedRuns(): Map<string, StepRun> {
  const { runs } = loadStore(results);
  const out = new Map<string, StepRun>();
  for (const r of runs.objects() as { runId: string; status: string; config: string; seed: number; worldSize: number }[]) {
    if (r.status === 'completed') out.set(r.runId, { runId: r.runId, config: r.config, key: pickConfig(r as never), seed: r.seed });
  }
  return out;
}

const round = (xs: number[], d = 6) => xs.map((x) => Number(x.toFixed(d)));

describe('step log tables', () => {
  it('loss against step: per run the mean over its trainers, then mean and sample std over seeds; failed runs left out', () => {
    const t = stepTables(results, completedRuns());
    expect(t.lines).toBe(2 * 4 + 2 * 2 * 4 + 4); // W1 seeds, W2 seeds x 2 slots, the failed run; the torn line is not one
    const w1 = t.lossByStep.filter((p) => p.worldSize === 1);
    const w2 = t.lossByStep.filter((p) => p.worldSize === 2);
    expect(w1.map((p) => p.x)).toEqual([5, 10, 15, 20]);
    expect(round(w1.map((p) => p.mean))).toEqual([2.1, 1.9, 1.7, 1.5]);
    expect(round(w1.map((p) => p.std ?? -1))).toEqual(round(Array(4).fill(Math.SQRT2 / 10)));
    expect(w1.every((p) => p.n === 2)).toBe(true);
    expect(round(w2.map((p) => p.mean))).toEqual([2.45, 2.25, 2.15, 2.05]);
    expect(round(w2.map((p) => p.std ?? -1))).toEqual(round(Array(4).fill(Math.SQRT2 / 20)));
    expect(round([w2[0].lo, w2[0].hi])).toEqual(round([2.45 - Math.SQRT2 / 20, 2.45 + Math.SQRT2 / 20]));
    expect(t.warnings).toEqual(['steps.jsonl: skipped a torn last line (a writer stopped mid-append)']);
  });

  it('loss against wall-clock time bins the seeds together; throughput sums the trainers of a run', () => {
    const t = stepTables(results, completedRuns());
    const w1 = t.lossByTime.filter((p) => p.worldSize === 1);
    expect(round(w1.map((p) => p.x))).toEqual([1.05, 2.05, 4.05, 5]);
    expect(round(w1.map((p) => p.mean))).toEqual([2.1, 1.9, 1.7, 1.5]);
    const w2 = t.throughput.filter((p) => p.worldSize === 2);
    expect(round(w2.map((p) => p.mean))).toEqual([95, 95, 115, 115]);
    expect(round([w2[0].std ?? -1])).toEqual(round([Math.sqrt(50)]));
  });

  it('summary: final and best loss, samples/s per trainer, steps', () => {
    const t = stepTables(results, completedRuns());
    const [w1, w2] = t.summary;
    expect([w1.worldSize, w1.runs, w1.points, w1.steps]).toEqual([1, 2, 8, 20]);
    expect(round([w1.finalLoss, w1.bestLoss, w1.samplesPerSecond])).toEqual([1.5, 1.4, 110]);
    expect([w2.worldSize, w2.runs, w2.points]).toEqual([2, 2, 16]);
    expect(round([w2.finalLoss, w2.bestLoss, w2.samplesPerSecond])).toEqual([2.05, 1.9, 52.5]);
  });
});

describe('latency and memory tables', () => {
  it('percentiles averaged over trainer-rounds, the worst P99, data share, merge and eval', () => {
    const [w1, w2] = trainerFiguresTable(loadStore(results).rounds);
    expect([w1.worldSize, w1.n]).toEqual([1, 4]);
    expect(round([w1.p50, w1.p95, w1.p99, w1.p99Max, w1.dataLoadShare, w1.mergeSeconds, w1.evalSeconds])).toEqual([0.15, 0.25, 0.4, 0.5, 0.15, 0.1, 0.4]);
    expect([w2.worldSize, w2.n]).toEqual([2, 8]);
    expect(round([w2.p50, w2.p95, w2.p99, w2.p99Max, w2.dataLoadShare, w2.mergeSeconds])).toEqual([0.06, 0.105, 0.30625, 0.9, 0.35, 0.2]);
  });

  it('memory: the highest of each figure; no GPU where no backend reported one', () => {
    const [w1, w2] = trainerFiguresTable(loadStore(results).rounds);
    expect([w1.trainerPeakRssBytes / MB, w1.tensorBytes / MB, w1.tensorCount, w1.gpuBytes, (w1.aggregatorPeakRssBytes ?? 0) / MB]).toEqual([530, 42, 40, null, 700]);
    expect([w2.trainerPeakRssBytes / MB, w2.tensorBytes / MB, w2.tensorCount, w2.gpuBytes, (w2.aggregatorPeakRssBytes ?? 0) / MB]).toEqual([315, 21, 40, null, 800]);
  });
});

describe('best run by any recorded metric', () => {
  it('ranks by a trainer figure, lowest first for seconds, highest first with :max or for rates', () => {
    const { runs, rounds } = loadStore(results);
    const p99 = bestRuns(runs, rounds, parseMetric('stepP99Seconds'), 4);
    expect(p99.map((r) => [r.worldSize, r.seed])).toEqual([[2, 1], [2, 2], [1, 1], [1, 2]]);
    expect(round(p99.map((r) => r.value))).toEqual([0.2375, 0.375, 0.4, 0.4]);
    const rss = bestRuns(runs, rounds, parseMetric('peakRssBytes:max'), 1);
    expect([rss[0].worldSize, rss[0].seed, rss[0].value / MB]).toEqual([1, 2, 530]);
    expect(parseMetric('samplesPerSecond')).toEqual({ name: 'samplesPerSecond', best: 'max' });
    expect(parseMetric('testLoss')).toEqual({ name: 'testLoss', best: 'min' });
    expect(bestRuns(runs, rounds, parseMetric('aggregatorPeakRssBytes'), 1)[0].value / MB).toBe(700);
    expect(bestRuns(runs, rounds, parseMetric('wallSeconds'), 9)).toHaveLength(4); // the failed run never finished
    expect(() => bestRuns(runs, rounds, parseMetric('f1'), 1)).toThrow(/--metric f1 is not recorded .*known: .*stepP50Seconds/);
  });
});

describe('fedslice analyze with a step log', () => {
  it('prints the step, latency and memory tables, exports the step log, and renders its charts into report.html', async () => {
    const out: string[] = [];
    const warnings: string[] = [];
    const stepsCsv = join(dir, 'exports', 'steps.csv');
    const stepsJson = join(dir, 'exports', 'steps.json');
    const report = join(dir, 'report');
    const r = await runAnalyze(
      { results, plots: true, out: report, top: 3, metric: 'testAccuracy', where: [], stepsCsv, stepsJson },
      { out: (t) => out.push(t), warn: (t) => warnings.push(t) },
    );
    const text = out.join('\n');
    for (const title of ['Step log per configuration', 'Step latency per configuration (ms', 'Memory per configuration (MB']) expect(text).toContain(title);
    expect(text).toMatch(/\n {0,2}1 .* 150\.0 +250\.0 +400\.0 +500\.0 +15\.0% /);
    expect(warnings).toContain('steps.jsonl: skipped a torn last line (a writer stopped mid-append)');
    expect(warnings.filter((w) => w.startsWith('chart '))).toEqual([]); // vega-lite found no flaw in a chart spec

    const csv = readFileSync(stepsCsv, 'utf8').trim().split('\n');
    expect(csv.length).toBe(1 + 28); // every run analysed, the failed one too
    expect(csv[0]).toMatch(/^runId,config,worldSize,learningRate,.*,seed,slot,round,globalStep,epoch,loss,intervalSteps,samples,samplesPerSecond,time,elapsedSeconds$/);
    const json = JSON.parse(readFileSync(stepsJson, 'utf8')) as { loss: number; globalStep: number; worldSize: number; slot: number }[];
    expect(json.length).toBe(28);
    expect(json.filter((x) => x.worldSize === 2 && x.slot === 1).map((x) => x.loss)).toEqual([2.5, 2.3, 2.2, 2.1, 2.6, 2.4, 2.3, 2.2]);
    expect(r.files).toContain(stepsCsv);

    for (const name of ['loss-by-step', 'loss-by-time', 'throughput']) {
      const png = join(report, `${name}.png`);
      expect(existsSync(png)).toBe(true);
      const size = pngSize(readFileSync(png));
      expect(size.width).toBeGreaterThan(300);
    }
    const html = readFileSync(join(report, 'report.html'), 'utf8');
    for (const t of ['Training loss against step', 'Training loss against wall-clock time', 'Training throughput over time', 'Step latency per configuration', 'Memory per configuration']) {
      expect(html).toContain(t);
    }
  }, 120_000);
});

describe('the data-fraction study', () => {
  it('dataset.fraction is a key field: named when not 1, so the keys of full-data runs are what they were', () => {
    const at = (fraction: number) => runKeyFields(parseExperiment({ dataset: { fraction }, federation: { worldSize: 2 }, model: { width: 0.125 } }));
    expect(keyName(at(1))).toBe('ws2_lr0.0001_swap0_lsw0_r10_seed123_slice_synthetic_w0.125');
    expect(keyName(at(0.05))).toBe('ws2_lr0.0001_swap0_lsw0_r10_seed123_slice_synthetic_w0.125_f0.05');
    // a record written before the field existed reads as the whole data set
    const { fraction: _f, ...old } = at(1);
    expect(keyFieldsOf(old)).toEqual(at(1));
    expect(configId(keyFieldsOf(old) ?? at(0.5))).toBe(configId(at(1)));
  });

  it('accuracy and training time per fraction and configuration, and its chart', async () => {
    const store = join(dir, 'fraction');
    writeFractionStore(store);
    const loaded = loadStore(store);
    expect(loaded.warnings).toEqual([]);
    const rows = fractionRows(configStats(loaded.rounds), timingStats(loaded.rounds));
    expect(rows.map((r) => [r.worldSize, r.fraction, r.n])).toEqual([
      [1, 0.01, 2], [1, 0.05, 2], [1, 0.1, 2], [1, 0.2, 2],
      [2, 0.01, 2], [2, 0.05, 2], [2, 0.1, 2], [2, 0.2, 2],
    ]);
    expect(round(rows.map((r) => r.accMean))).toEqual(round([1, 2].flatMap((w) => FRACTION_ACC[w].map(([a, b]) => (a + b) / 2))));
    expect(round([rows[1].accStd ?? -1])).toEqual(round([Math.sqrt(2 * 0.02 ** 2)]));
    expect(rows[4].accStd).toBe(0);
    expect(rows.map((r) => r.trainingSeconds)).toEqual([2, 8, 16, 32, 1.6, 5, 10, 18]);

    const report = join(dir, 'fraction-report');
    const out: string[] = [];
    await runAnalyze({ results: store, plots: true, out: report, top: 3, metric: 'testAccuracy', where: [] }, { out: (t) => out.push(t), warn: () => {} });
    const text = out.join('\n');
    expect(text).toContain('Data-fraction study (finished runs, mean over seeds)');
    expect(text).toMatch(/\n1 +1e-4 +no +5% +2 +0\.2200 +0\.0283 .* 8\.00 /);
    expect(pngSize(readFileSync(join(report, 'data-fraction.png'))).width).toBeGreaterThan(500);
    expect(readFileSync(join(report, 'report.html'), 'utf8')).toContain('Data-fraction study');
  }, 120_000);
});
