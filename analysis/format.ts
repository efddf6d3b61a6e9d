/**
 * Tables for people: each analysis table becomes a TableView (title, headers, cell strings),
 * printed aligned in the terminal here and as HTML by report.ts, so both show the same cells.
 */
import { type ConfigField, type ConfigKey, FIELD_LABELS, type KeyField, fieldKind } from '../core/results/schema.ts';
import { formatFieldValue } from './fields.ts';
import type { ConfigStats, Metric, RankedConfig, StoreSummary, SwapComparison, TimingStats } from './tables.ts';
import type { ModeRow } from './sync-async.ts';

export type Align = 'left' | 'right';

export interface TableView {
  title: string;
  headers: string[];
  align: Align[];
  rows: string[][];
  /** A line under the table (what '-' means, what was left out). */
  note?: string;
  /** Shown instead of the table when it has no rows. */
  empty: string;
}

export interface Column<R> {
  header: string;
  align: Align;
  cell: (r: R) => string;
}

export function view<R>(title: string, columns: Column<R>[], rows: readonly R[], empty: string, note?: string): TableView {
  return {
    title,
    headers: columns.map((c) => c.header),
    align: columns.map((c) => c.align),
    rows: rows.map((r) => columns.map((c) => c.cell(r))),
    empty,
    note,
  };
}

/** Fixed decimals, '-' for missing values. */
export function fmt(x: number | null | undefined, digits: number): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  return x.toFixed(digits);
}

/** Seconds with about three significant digits: 12.3, 1.23, 0.045. */
export function fmtSeconds(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  if (x === 0) return '0';
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  if (Math.abs(x) >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

export function fmtSigned(x: number, digits: number): string {
  const s = x.toFixed(digits);
  return x > 0 ? `+${s}` : s === (-0).toFixed(digits) ? (0).toFixed(digits) : s;
}

const NO_STD_NOTE = "std: sample standard deviation over seeds (n-1); '-' when n = 1.";

export function configColumns<R extends Partial<ConfigKey>>(fields: readonly ConfigField[]): Column<R>[] {
  return fields.map((f) => ({
    header: FIELD_LABELS[f],
    align: fieldKind(f) === 'number' ? 'right' : 'left',
    cell: (r: R) => formatFieldValue(f, r[f]),
  }));
}

export function summaryView(s: StoreSummary): TableView {
  const rows: [string, string][] = [
    ['runs', String(s.runs)],
    ...s.byStatus.map((b): [string, string] => [`  ${b.status}`, String(b.runs)]),
    ['finished runs (in the statistics)', String(s.finishedRuns)],
    ['round records (data points)', String(s.roundRecords)],
    ['configurations', String(s.configurations)],
    ...s.parameters.map((p): [string, string] => [
      `${p.field} values`,
      p.values.length ? p.values.map((v) => formatFieldValue(p.field as KeyField, v)).join(', ') : '-',
    ]),
  ];
  return view(
    'Store summary',
    [
      { header: 'what', align: 'left', cell: (r: [string, string]) => r[0] },
      { header: 'value', align: 'left', cell: (r: [string, string]) => r[1] },
    ],
    rows,
    'empty store',
  );
}

export function configStatsView(stats: readonly ConfigStats[], fields: readonly (keyof ConfigKey)[], title = 'Final round per configuration (over seeds)'): TableView {
  return view(
    title,
    [...configColumns<ConfigStats>(fields), ...statColumns()],
    stats,
    'no run has reached its final round yet',
    NO_STD_NOTE,
  );
}

function statColumns<R extends ConfigStats>(): Column<R>[] {
  return [
    { header: 'n', align: 'right', cell: (r) => String(r.n) },
    { header: 'acc mean', align: 'right', cell: (r) => fmt(r.accMean, 4) },
    { header: 'acc std', align: 'right', cell: (r) => fmt(r.accStd, 4) },
    { header: 'acc min', align: 'right', cell: (r) => fmt(r.accMin, 4) },
    { header: 'acc max', align: 'right', cell: (r) => fmt(r.accMax, 4) },
    { header: 'loss mean', align: 'right', cell: (r) => fmt(r.lossMean, 4) },
    { header: 'loss std', align: 'right', cell: (r) => fmt(r.lossStd, 4) },
    { header: 'loss min', align: 'right', cell: (r) => fmt(r.lossMin, 4) },
    { header: 'loss max', align: 'right', cell: (r) => fmt(r.lossMax, 4) },
  ];
}

const TOP_STATS = new Set(['n', 'acc mean', 'acc std', 'loss mean', 'loss std']);

export function topView(top: readonly RankedConfig[], fields: readonly (keyof ConfigKey)[], metric: Metric): TableView {
  const by = metric === 'testAccuracy' ? 'highest mean final test accuracy' : 'lowest mean final test loss';
  return view(
    `Top ${top.length} configurations by ${by}`,
    [{ header: '#', align: 'right', cell: (r: RankedConfig) => String(r.rank) }, ...configColumns<RankedConfig>(fields), ...statColumns<RankedConfig>().filter((c) => TOP_STATS.has(c.header))],
    top,
    'no run has reached its final round yet',
  );
}

export function swapView(rows: readonly SwapComparison[], fields: readonly (keyof ConfigKey)[]): TableView {
  return view(
    'Swap vs no swap at equal settings (mean final test accuracy over seeds)',
    [
      ...configColumns<SwapComparison>(fields.filter((f) => f !== 'swap')),
      { header: 'n no swap', align: 'right', cell: (r) => String(r.nNoSwap) },
      { header: 'acc no swap', align: 'right', cell: (r) => fmt(r.accNoSwap, 4) },
      { header: 'n swap', align: 'right', cell: (r) => String(r.nSwap) },
      { header: 'acc swap', align: 'right', cell: (r) => fmt(r.accSwap, 4) },
      { header: 'swap - no swap', align: 'right', cell: (r) => fmtSigned(r.accDiff, 4) },
    ],
    rows,
    'no configuration was run both with and without swap',
  );
}

export function timingView(rows: readonly TimingStats[], fields: readonly (keyof ConfigKey)[]): TableView {
  return view(
    'Timing per configuration (mean seconds per training round, round >= 1)',
    [
      ...configColumns<TimingStats>(fields),
      { header: 'n rounds', align: 'right', cell: (r) => String(r.roundsCounted) },
      { header: 's/round', align: 'right', cell: (r) => fmtSeconds(r.roundSeconds) },
      { header: 'train', align: 'right', cell: (r) => fmtSeconds(r.trainSeconds) },
      { header: 'transfer', align: 'right', cell: (r) => fmtSeconds(r.transferSeconds) },
      { header: 'merge', align: 'right', cell: (r) => fmtSeconds(r.mergeSeconds) },
      { header: 'eval', align: 'right', cell: (r) => fmtSeconds(r.evalSeconds) },
      { header: 'eval overlapped', align: 'right', cell: (r) => fmtSeconds(r.evalOverlapSeconds) },
      { header: 'samples/s', align: 'right', cell: (r) => fmt(r.samplesPerSecond, 1) },
      { header: 'speedup vs W=1', align: 'right', cell: (r) => fmt(r.speedup, 2) },
    ],
    rows,
    'no training round of a finished run yet',
    "eval overlapped: evaluation seconds that ran while the next round trained (sync mode); s/round counts only the rest. speedup = s/round at W=1 / s/round at W, otherwise equal settings; '-' without a W=1 run.",
  );
}

/** An aligned plain-text table: title, header, a rule, rows, note. */
export function renderText(v: TableView): string {
  const lines = [v.title, '='.repeat(v.title.length)];
  if (v.rows.length === 0) return [...lines, `(${v.empty})`, ''].join('\n');
  const widths = v.headers.map((h, i) => Math.max(h.length, ...v.rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (v.align[i] === 'right' ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  lines.push(line(v.headers), widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of v.rows) lines.push(line(r));
  if (v.note) lines.push(v.note);
  lines.push('');
  return lines.join('\n');
}

export function modeView(rows: readonly ModeRow[], fields: readonly (keyof ConfigKey)[]): TableView {
  const shown = fields.includes('mode') ? fields : [...fields, 'mode' as const];
  return view(
    'Synchronous vs asynchronous (finished runs, mean over seeds)',
    [
      ...configColumns<ModeRow>(shown),
      { header: 'n', align: 'right', cell: (r) => String(r.n) },
      { header: 'final acc', align: 'right', cell: (r) => fmt(r.accMean, 4) },
      { header: 'acc std', align: 'right', cell: (r) => fmt(r.accStd, 4) },
      { header: 'total time', align: 'right', cell: (r) => fmtSeconds(r.totalSeconds) },
      { header: 's/round', align: 'right', cell: (r) => fmtSeconds(r.secondsPerRound) },
      { header: 'samples/s', align: 'right', cell: (r) => fmt(r.samplesPerSecond, 1) },
      { header: 'speedup vs W=1', align: 'right', cell: (r) => fmt(r.speedup, 2) },
      { header: 'updates/s', align: 'right', cell: (r) => fmt(r.updatesPerSecond, 3) },
      { header: 'task s min/avg/max', align: 'right', cell: (r) => [r.taskSecondsMin, r.taskSecondsMean, r.taskSecondsMax].map((x) => fmt(x, 1)).join('/') },
      { header: 'staleness mean', align: 'right', cell: (r) => fmt(r.meanStaleness, 2) },
      { header: 'max', align: 'right', cell: (r) => fmt(r.maxStaleness, 0) },
    ],
    rows,
    'no finished runs to compare',
    'a round is worldSize updates in either mode; task s = local training seconds per task (train.epochs epochs) of the fastest, average and slowest trainer; speedup = samples/s over samples/s at W=1 in the same mode; staleness = versions applied between a task and its update (0 in sync modes).',
  );
}
