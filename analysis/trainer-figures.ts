/**
 * Latency and memory per configuration, from the per-trainer figures of the round records
 * (training rounds of finished runs). Latency: the mean over trainer-rounds of each step-latency
 * percentile, the worst P99, the share of time spent filling batches, and the aggregator's merge
 * and evaluation seconds. Memory: the highest peak RSS of a trainer and of the aggregator, and the
 * highest tfjs tensor bytes and count (and GPU bytes where a backend reported them).
 */
import type { ColumnTable } from 'arquero';
import type { TrainerRoundFigures } from '../core/results/types.ts';
import { type ConfigKey, pickConfig } from './fields.ts';
import { finishedRounds } from './tables.ts';

export interface LatencyRow extends ConfigKey {
  config: string;
  /** Trainer-rounds counted. */
  n: number;
  p50: number;
  p95: number;
  p99: number;
  p99Max: number;
  dataLoadShare: number;
  mergeSeconds: number;
  evalSeconds: number;
}

export interface MemoryRow extends ConfigKey {
  config: string;
  n: number;
  trainerPeakRssBytes: number;
  tensorBytes: number;
  tensorCount: number;
  /** null when no backend of these runs reports GPU memory. */
  gpuBytes: number | null;
  /** null for records written before aggregators measured it. */
  aggregatorPeakRssBytes: number | null;
}

interface RoundRow extends ConfigKey {
  config: string;
  trainers: TrainerRoundFigures[] | null;
  mergeSeconds: number;
  evalSeconds: number;
  aggregatorPeakRssBytes: number | null;
}

function isRoundRow(r: object): r is RoundRow {
  return 'config' in r && 'trainers' in r && 'mergeSeconds' in r && 'evalSeconds' in r;
}

/** Training rounds of finished runs that carry trainer figures, grouped by configuration in order. */
function byConfig(rounds: ColumnTable): Map<string, RoundRow[]> {
  const rows = finishedRounds(rounds)
    .filter((d: { round: number; trainers: unknown }) => d.round >= 1 && d.trainers !== null)
    .objects()
    .filter(isRoundRow);
  const out = new Map<string, RoundRow[]>();
  for (const r of [...rows].sort((a, b) => (a.config < b.config ? -1 : a.config > b.config ? 1 : 0))) {
    const list = out.get(r.config) ?? [];
    list.push(r);
    out.set(r.config, list);
  }
  return out;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const max = (xs: readonly number[]) => xs.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);

export function latencyTable(rounds: ColumnTable): LatencyRow[] {
  return [...byConfig(rounds)].map(([config, rows]) => {
    const t = rows.flatMap((r) => r.trainers ?? []);
    return {
      ...pickConfig(rows[0]),
      config,
      n: t.length,
      p50: mean(t.map((x) => x.stepP50Seconds)),
      p95: mean(t.map((x) => x.stepP95Seconds)),
      p99: mean(t.map((x) => x.stepP99Seconds)),
      p99Max: max(t.map((x) => x.stepP99Seconds)),
      dataLoadShare: mean(t.map((x) => x.dataLoadShare)),
      mergeSeconds: mean(rows.map((r) => r.mergeSeconds)),
      evalSeconds: mean(rows.map((r) => r.evalSeconds)),
    };
  });
}

export function memoryTable(rounds: ColumnTable): MemoryRow[] {
  return [...byConfig(rounds)].map(([config, rows]) => {
    const t = rows.flatMap((r) => r.trainers ?? []);
    const gpu = t.flatMap((x) => (x.gpuBytes === null ? [] : [x.gpuBytes]));
    const agg = rows.flatMap((r) => (r.aggregatorPeakRssBytes === null ? [] : [r.aggregatorPeakRssBytes]));
    return {
      ...pickConfig(rows[0]),
      config,
      n: t.length,
      trainerPeakRssBytes: max(t.map((x) => x.peakRssBytes)),
      tensorBytes: max(t.map((x) => x.tensorBytes)),
      tensorCount: max(t.map((x) => x.tensorCount)),
      gpuBytes: gpu.length ? max(gpu) : null,
      aggregatorPeakRssBytes: agg.length ? max(agg) : null,
    };
  });
}
