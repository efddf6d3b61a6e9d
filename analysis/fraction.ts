/**
 * The data-fraction study: final test accuracy and training time against `dataset.fraction`, per
 * configuration (the fraction aside). Present when the finished runs cover two or more fractions.
 * Training time is the mean seconds per training round times the rounds.
 */
import type { TopLevelSpec } from 'vega-lite';
import { CONFIG, SCHEMA } from './charts.ts';
import type { ConfigKey } from '../core/results/schema.ts';
import { configLabel } from './fields.ts';
import { configColumns, fmt, fmtSeconds, view, type TableView } from './format.ts';
import type { ConfigStats, TimingStats } from './tables.ts';

export interface FractionRow extends ConfigKey {
  config: string;
  n: number;
  accMean: number;
  accStd: number | null;
  lossMean: number;
  /** Mean seconds per training round x rounds; null without timings. */
  trainingSeconds: number | null;
  samplesPerSecond: number | null;
}

/** One row per configuration, in fraction order within each; empty unless two fractions were run. */
export function fractionRows(stats: readonly ConfigStats[], timing: readonly TimingStats[]): FractionRow[] {
  if (new Set(stats.map((s) => s.fraction)).size < 2) return [];
  const byConfig = new Map(timing.map((t) => [t.config, t]));
  return stats
    .map((s) => {
      const t = byConfig.get(s.config);
      const { n, accMean, accStd, lossMean, config } = s;
      return { ...pickKey(s), config, n, accMean, accStd, lossMean, trainingSeconds: t ? t.roundSeconds * s.rounds : null, samplesPerSecond: t ? t.samplesPerSecond : null };
    })
    .sort((a, b) => (seriesOf(a) < seriesOf(b) ? -1 : seriesOf(a) > seriesOf(b) ? 1 : a.fraction - b.fraction));
}

function pickKey(s: ConfigStats): ConfigKey {
  const { config: _c, n: _n, accMean: _a, accStd: _s, accMin: _i, accMax: _x, lossMean: _l, lossStd: _ls, lossMin: _li, lossMax: _lx, ...key } = s;
  return key;
}

/** The configuration without its fraction: what a line of the study follows. */
function seriesOf(k: ConfigKey): string {
  return JSON.stringify({ ...k, fraction: null });
}

function seriesFields(shown: readonly (keyof ConfigKey)[]): (keyof ConfigKey)[] {
  return shown.filter((f) => f !== 'fraction');
}

export function fractionView(rows: readonly FractionRow[], shown: readonly (keyof ConfigKey)[]): TableView {
  const fields = seriesFields(shown);
  return view(
    'Data-fraction study (finished runs, mean over seeds)',
    [
      ...configColumns<FractionRow>(fields),
      { header: 'fraction', align: 'right', cell: (r) => `${Number((r.fraction * 100).toPrecision(4))}%` },
      { header: 'n', align: 'right', cell: (r) => String(r.n) },
      { header: 'final acc', align: 'right', cell: (r) => fmt(r.accMean, 4) },
      { header: 'acc std', align: 'right', cell: (r) => fmt(r.accStd, 4) },
      { header: 'final loss', align: 'right', cell: (r) => fmt(r.lossMean, 4) },
      { header: 'training s', align: 'right', cell: (r) => fmtSeconds(r.trainingSeconds) },
      { header: 'samples/s', align: 'right', cell: (r) => fmt(r.samplesPerSecond, 1) },
    ],
    rows,
    'the finished runs cover one data fraction',
    'training s = mean seconds per training round x rounds; std over seeds (n-1), - when n = 1.',
  );
}

/** Final test accuracy and training time against the data fraction, a line per configuration. */
export function fractionChart(rows: readonly FractionRow[], shown: readonly (keyof ConfigKey)[]): TopLevelSpec {
  const fields = seriesFields(shown);
  const values = rows.map((r) => ({ ...r, series: fields.length ? configLabel(r, fields) : 'all runs', accLo: r.accMean - (r.accStd ?? 0), accHi: r.accMean + (r.accStd ?? 0) }));
  const fractions = [...new Set(rows.map((r) => r.fraction))].sort((a, b) => a - b);
  const x = { field: 'fraction', type: 'quantitative' as const, title: 'data fraction (log scale)', scale: { type: 'log', domain: [fractions[0], fractions.at(-1)], nice: false, padding: 14 }, axis: { values: fractions, format: '~%' } };
  const color = { field: 'series', type: 'nominal' as const, title: 'configuration', scale: { scheme: 'tableau10' }, legend: { labelLimit: 400 } };
  const panel = (layers: object[]) => ({ width: 260, height: 220, layer: layers });
  return {
    $schema: SCHEMA,
    title: { text: 'Data-fraction study', subtitle: 'final test accuracy (error bar = ± 1 std over seeds) and training time against the share of the data set used' },
    data: { values },
    hconcat: [
      panel([
        { mark: { type: 'errorbar', ticks: true }, encoding: { x, y: { field: 'accLo', type: 'quantitative', title: 'final test accuracy' }, y2: { field: 'accHi' }, color } },
        { mark: { type: 'line', strokeWidth: 2, point: { size: 40 } }, encoding: { x, y: { field: 'accMean', type: 'quantitative', title: 'final test accuracy', scale: { zero: true } }, color } },
      ]),
      panel([{ mark: { type: 'line', strokeWidth: 2, point: { size: 40 } }, encoding: { x, y: { field: 'trainingSeconds', type: 'quantitative', title: 'training time (s)' }, color } }]),
    ],
    config: CONFIG,
  } as TopLevelSpec;
}
