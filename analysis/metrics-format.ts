/** Table views of the step log, the latency and memory figures, and the data-fraction study. */
import type { ConfigKey } from './fields.ts';
import { configColumns, fmt, fmtSeconds, view, type TableView } from './format.ts';
import type { StepSummary } from './steps.ts';
import type { LatencyRow, MemoryRow } from './trainer-figures.ts';

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

export function latencyView(rows: readonly LatencyRow[], fields: readonly (keyof ConfigKey)[]): TableView {
  return view(
    'Step latency per configuration (ms; training rounds of finished runs)',
    [
      ...configColumns<LatencyRow>(fields),
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

export function memoryView(rows: readonly MemoryRow[], fields: readonly (keyof ConfigKey)[]): TableView {
  return view(
    'Memory per configuration (MB, highest seen)',
    [
      ...configColumns<MemoryRow>(fields),
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
