/** Table views of the step log, the latency and memory figures, and the data-fraction study. */
import type { ConfigKey } from '../core/results/schema.ts';
import { configColumns, fmt, fmtSeconds, view, type TableView } from './format.ts';
import type { StepSummary } from './steps.ts';
import type { TrainerFiguresRow } from './trainer-figures.ts';
import type { BestRun, MetricChoice } from './best.ts';

const MB = 1024 * 1024;
const mb = (x: number | null) => (x === null ? '-' : (x / MB).toFixed(1));
const ms = (x: number) => fmt(x * 1000, 1);

export function stepSummaryView(rows: readonly StepSummary[], fields: readonly (keyof ConfigKey)[]): TableView {
  return view(
    'Step log per configuration (results/steps.jsonl, completed runs)',
    [
      ...configColumns<StepSummary>(fields),
      { header: 'runs', align: 'right', cell: (r) => String(r.runs) },
      { header: 'points', align: 'right', cell: (r) => String(r.points) },
      { header: 'steps', align: 'right', cell: (r) => String(r.steps) },
      { header: 'final loss', align: 'right', cell: (r) => fmt(r.finalLoss, 4) },
      { header: 'best loss', align: 'right', cell: (r) => fmt(r.bestLoss, 4) },
      { header: 'samples/s per trainer', align: 'right', cell: (r) => fmt(r.samplesPerSecond, 1) },
    ],
    rows,
    'no step log of a completed run',
    'final loss: the last interval of each run (mean over its trainers), mean over seeds; best loss: the lowest interval loss of any trainer.',
  );
}

export function latencyView(rows: readonly TrainerFiguresRow[], fields: readonly (keyof ConfigKey)[]): TableView {
  return view(
    'Step latency per configuration (ms; training rounds of finished runs)',
    [
      ...configColumns<TrainerFiguresRow>(fields),
      { header: 'trainer-rounds', align: 'right', cell: (r) => String(r.n) },
      { header: 'P50', align: 'right', cell: (r) => ms(r.p50) },
      { header: 'P95', align: 'right', cell: (r) => ms(r.p95) },
      { header: 'P99', align: 'right', cell: (r) => ms(r.p99) },
      { header: 'worst P99', align: 'right', cell: (r) => ms(r.p99Max) },
      { header: 'data loading', align: 'right', cell: (r) => `${fmt(r.dataLoadShare * 100, 1)}%` },
      { header: 'merge s', align: 'right', cell: (r) => fmtSeconds(r.mergeSeconds) },
      { header: 'eval s', align: 'right', cell: (r) => fmtSeconds(r.evalSeconds) },
    ],
    rows,
    'no round record with trainer figures yet',
    'P50/P95/P99: per trainer and round over its steps, then the mean over trainer-rounds; data loading: share of training time filling batches; merge and eval: the aggregator, per round.',
  );
}

export function memoryView(rows: readonly TrainerFiguresRow[], fields: readonly (keyof ConfigKey)[]): TableView {
  return view(
    'Memory per configuration (MB, highest seen)',
    [
      ...configColumns<TrainerFiguresRow>(fields),
      { header: 'trainer-rounds', align: 'right', cell: (r) => String(r.n) },
      { header: 'trainer peak RSS', align: 'right', cell: (r) => mb(r.trainerPeakRssBytes) },
      { header: 'tensors MB', align: 'right', cell: (r) => mb(r.tensorBytes) },
      { header: 'tensors', align: 'right', cell: (r) => String(r.tensorCount) },
      { header: 'GPU MB', align: 'right', cell: (r) => mb(r.gpuBytes) },
      { header: 'aggregator peak RSS', align: 'right', cell: (r) => mb(r.aggregatorPeakRssBytes) },
    ],
    rows,
    'no round record with trainer figures yet',
    "peak RSS: the process's resident high-water mark; tensors: tfjs tensor bytes and count inside a training step; GPU: '-' where the backend reports none.",
  );
}

/** Numbers of any scale: up to 4 decimals below 1000, whole numbers above. */
function fmtValue(x: number): string {
  return Math.abs(x) >= 1000 ? x.toFixed(0) : String(Number(x.toPrecision(5)));
}

export function bestRunsView(rows: readonly BestRun[], fields: readonly (keyof ConfigKey)[], metric: MetricChoice): TableView {
  return view(
    `Best ${rows.length} runs by ${metric.name} (${metric.best === 'max' ? 'highest' : 'lowest'} first)`,
    [
      { header: '#', align: 'right', cell: (r: BestRun) => String(r.rank) },
      ...configColumns<BestRun>(fields),
      { header: 'seed', align: 'right', cell: (r) => String(r.seed) },
      { header: metric.name, align: 'right', cell: (r) => fmtValue(r.value) },
      { header: 'run', align: 'left', cell: (r) => r.runId },
    ],
    rows,
    'no run has reached its final round yet',
  );
}
