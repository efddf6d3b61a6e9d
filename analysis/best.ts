/**
 * "Best run by metric" over any metric the store records for a run: every number of its final
 * round record (test and train loss, accuracy, timings, bytes, staleness, the aggregator's peak
 * RSS), of its run record (wall seconds, the end summary's figures), and its trainers' figures by
 * their recorded names (step latency percentiles and data-loading share averaged over the run's
 * trainer-rounds; peak RSS, tensor bytes and count, GPU bytes: the highest).
 *
 * `--metric name` ranks highest first for accuracies, rates and counts of work done, lowest first
 * for everything else (losses, seconds, bytes, staleness); `name:max` or `name:min` says which.
 */
import type { ColumnTable } from 'arquero';
import { FedsliceError } from '../core/errors.ts';
import { summarizeTrainerFigures } from '../core/results/trainer-summary.ts';
import type { TrainerRoundFigures } from '../core/results/types.ts';
import { KEY_FIELDS, type ConfigKey, pickConfig } from '../core/results/schema.ts';
import { finalRounds } from './tables.ts';

export interface MetricChoice {
  name: string;
  best: 'max' | 'min';
}

export interface BestRun extends ConfigKey {
  rank: number;
  config: string;
  runId: string;
  seed: number;
  value: number;
}

const HIGHER_IS_BETTER = /accuracy|persecond|speedup|samplesseen|updatesapplied/i;

/** Parses `name` or `name:max|min`; the name is checked against the store later. */
export function parseMetric(raw: string): MetricChoice {
  const m = /^([A-Za-z][A-Za-z0-9]*)(?::(max|min))?$/.exec(raw);
  if (!m) throw new FedsliceError('FEDSLICE_ERR_OPTION', `--metric takes a metric name, optionally with :max or :min (e.g. testLoss, samplesPerSecond:max), got "${raw}"`);
  const best = m[2] === 'max' || m[2] === 'min' ? m[2] : HIGHER_IS_BETTER.test(m[1]) ? 'max' : 'min';
  return { name: m[1], best };
}

const NOT_METRICS = new Set<string>(['runId', 'round', 'finalRound', 'config', 'status', ...KEY_FIELDS]);

interface RunRow extends ConfigKey {
  runId: string;
  config: string;
  seed: number;
  values: Map<string, number>;
}

function numbersOf(o: object, into: Map<string, number>): void {
  for (const [k, v] of Object.entries(o)) if (!NOT_METRICS.has(k) && typeof v === 'number' && Number.isFinite(v)) into.set(k, v);
}

function isTrainerList(v: unknown): v is TrainerRoundFigures[] {
  return Array.isArray(v) && v.every((t) => typeof t === 'object' && t !== null && 'stepP50Seconds' in t);
}

/** One row per finished run with every metric it recorded. */
function runMetrics(runs: ColumnTable, rounds: ColumnTable): RunRow[] {
  const runRows = new Map((runs.objects() as { runId: string }[]).map((r) => [r.runId, r]));
  const trainersByRun = new Map<string, { trainers: TrainerRoundFigures[]; mergeSeconds: number; evalSeconds: number }[]>();
  for (const r of rounds.objects() as { runId: string; round: number; trainers: unknown; mergeSeconds: number; evalSeconds: number }[]) {
    if (r.round < 1 || !isTrainerList(r.trainers)) continue;
    trainersByRun.set(r.runId, [...(trainersByRun.get(r.runId) ?? []), { trainers: r.trainers, mergeSeconds: r.mergeSeconds, evalSeconds: r.evalSeconds }]);
  }
  return (finalRounds(rounds).objects() as (ConfigKey & { runId: string; config: string; seed: number })[]).map((f) => {
    const values = new Map<string, number>();
    numbersOf(f, values);
    const run = runRows.get(f.runId);
    if (run) numbersOf(run, values);
    const t = summarizeTrainerFigures(trainersByRun.get(f.runId) ?? []);
    if (t) {
      const recorded: [string, number | null][] = [
        ['stepP50Seconds', t.p50],
        ['stepP95Seconds', t.p95],
        ['stepP99Seconds', t.p99],
        ['dataLoadShare', t.dataLoadShare],
        ['peakRssBytes', t.trainerPeakRssBytes],
        ['tensorBytes', t.tensorBytes],
        ['tensorCount', t.tensorCount],
        ['gpuBytes', t.gpuBytes],
      ];
      for (const [k, v] of recorded) if (v !== null) values.set(k, v);
    }
    return { ...pickConfig(f), runId: f.runId, config: f.config, seed: f.seed, values };
  });
}

/** The best n finished runs by the metric; an unknown metric is an error naming the known ones. */
export function bestRuns(runs: ColumnTable, rounds: ColumnTable, metric: MetricChoice, n: number): BestRun[] {
  const rows = runMetrics(runs, rounds);
  const known = new Set(rows.flatMap((r) => [...r.values.keys()]));
  if (rows.length > 0 && !known.has(metric.name)) {
    throw new FedsliceError('FEDSLICE_ERR_OPTION', `--metric ${metric.name} is not recorded for any finished run here; known: ${[...known].sort().join(', ')}`);
  }
  const sign = metric.best === 'max' ? -1 : 1;
  return rows
    .flatMap((r) => {
      const value = r.values.get(metric.name);
      return value === undefined ? [] : [{ ...pickConfig(r), config: r.config, runId: r.runId, seed: r.seed, value }];
    })
    .sort((a, b) => sign * (a.value - b.value) || (a.runId < b.runId ? -1 : 1))
    .slice(0, n)
    .map((r, i) => ({ ...r, rank: i + 1 }));
}
