/**
 * How the per-trainer figures of many round records sum up (a run's profile, a configuration's
 * tables): step-latency percentiles and the data-loading share are averaged over trainer-rounds,
 * with the worst P99 beside them; merge and evaluation seconds are averaged over rounds; memory
 * is the highest seen.
 */
import type { TrainerRoundFigures } from './types.ts';

/** What a round record contributes: its trainers' figures and the aggregator's own. */
export interface RoundFigures {
  trainers?: readonly TrainerRoundFigures[] | null;
  mergeSeconds: number;
  evalSeconds: number;
  aggregatorPeakRssBytes?: number | null;
}

export interface TrainerSummary {
  /** Trainer-rounds counted. */
  n: number;
  p50: number;
  p95: number;
  p99: number;
  p99Max: number;
  dataLoadShare: number;
  mergeSeconds: number;
  evalSeconds: number;
  trainerPeakRssBytes: number;
  tensorBytes: number;
  tensorCount: number;
  /** null when no backend reported GPU memory. */
  gpuBytes: number | null;
  /** null for records written before aggregators measured it. */
  aggregatorPeakRssBytes: number | null;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const max = (xs: readonly number[]) => xs.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);

/** The summary of training rounds that carry trainer figures; null when none does. */
export function summarizeTrainerFigures(rounds: readonly RoundFigures[]): TrainerSummary | null {
  const withFigures = rounds.filter((r) => r.trainers && r.trainers.length > 0);
  const t = withFigures.flatMap((r) => r.trainers ?? []);
  if (t.length === 0) return null;
  const gpu = t.flatMap((x) => (x.gpuBytes === null ? [] : [x.gpuBytes]));
  const agg = withFigures.flatMap((r) => (typeof r.aggregatorPeakRssBytes === 'number' ? [r.aggregatorPeakRssBytes] : []));
  return {
    n: t.length,
    p50: mean(t.map((x) => x.stepP50Seconds)),
    p95: mean(t.map((x) => x.stepP95Seconds)),
    p99: mean(t.map((x) => x.stepP99Seconds)),
    p99Max: max(t.map((x) => x.stepP99Seconds)),
    dataLoadShare: mean(t.map((x) => x.dataLoadShare)),
    mergeSeconds: mean(withFigures.map((r) => r.mergeSeconds)),
    evalSeconds: mean(withFigures.map((r) => r.evalSeconds)),
    trainerPeakRssBytes: max(t.map((x) => x.peakRssBytes)),
    tensorBytes: max(t.map((x) => x.tensorBytes)),
    tensorCount: max(t.map((x) => x.tensorCount)),
    gpuBytes: gpu.length ? max(gpu) : null,
    aggregatorPeakRssBytes: agg.length ? max(agg) : null,
  };
}
