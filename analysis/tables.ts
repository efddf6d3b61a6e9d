/**
 * The analysis tables, as pure functions of the loaded store. Conventions:
 * - A run counts in the statistics once it has a record at its configured final round
 *   (round === rounds; in async mode, its last evaluation); runs that stopped early (failed, interrupted, still running) are
 *   counted in the summary only.
 * - std is the sample standard deviation over seeds (n - 1 in the denominator); with one
 *   seed it is null (shown as '-', exported as null in JSON and empty in CSV), not 0,
 *   because one replicate says nothing about the spread.
 * - Timings average the training rounds (round >= 1) of finished runs; round 0 only evaluates.
 */
import * as aq from 'arquero';
import type { ColumnTable } from 'arquero';
import { CONFIG_FIELDS, INERT_AT_ONE_TRAINER, KEY_FIELDS, SERIES_FIELDS, type ConfigField, type ConfigKey, type KeyField, configId, pickConfig } from '../core/results/schema.ts';
import type { RoundTimings } from '../core/results/types.ts';

const op = aq.op;

export type Metric = 'testAccuracy' | 'testLoss';
export const METRICS: readonly Metric[] = ['testAccuracy', 'testLoss'];

export interface StoreTables {
  runs: ColumnTable;
  rounds: ColumnTable;
}

export interface StoreSummary {
  runs: number;
  byStatus: { status: string; runs: number }[];
  /** Runs with a record at their final round: the ones in the statistics. */
  finishedRuns: number;
  roundRecords: number;
  configurations: number;
  parameters: { field: KeyField; values: (number | string | boolean)[] }[];
}

export interface ConfigStats extends ConfigKey {
  config: string;
  n: number;
  accMean: number;
  accStd: number | null;
  accMin: number;
  accMax: number;
  lossMean: number;
  lossStd: number | null;
  lossMin: number;
  lossMax: number;
}

export interface RankedConfig extends ConfigStats {
  rank: number;
}

export type SwapKey = Omit<ConfigKey, 'swap'>;
export interface SwapComparison extends SwapKey {
  nNoSwap: number;
  accNoSwap: number;
  nSwap: number;
  accSwap: number;
  /** Mean final accuracy with swap minus without. */
  accDiff: number;
}

/** Per configuration: mean seconds of a round and of each phase (RoundTimings), and samples/s. */
export interface TimingStats extends ConfigKey, RoundTimings {
  config: string;
  runs: number;
  roundsCounted: number;
  samplesPerSecond: number;
  /** secondsPerRound(W=1) / secondsPerRound(W) at otherwise equal settings; null with no W=1. */
  speedup: number | null;
}

export interface CurvePoint extends ConfigKey {
  config: string;
  round: number;
  n: number;
  accMean: number;
  accStd: number | null;
  accLo: number;
  accHi: number;
  lossMean: number;
}

export interface FinalRun extends ConfigKey {
  config: string;
  runId: string;
  seed: number;
  testAccuracy: number;
  testLoss: number;
}

export interface ScalingRow extends ConfigKey {
  config: string;
  accMean: number;
  accStd: number | null;
  roundSeconds: number;
  speedup: number | null;
}

const configCols = [...CONFIG_FIELDS];

/** The record at the final round of every run that got there. */
export function finalRounds(rounds: ColumnTable): ColumnTable {
  return rounds.filter((d: any) => d.round === d.finalRound);
}

/** All rounds of the runs that reached their final round. */
export function finishedRounds(rounds: ColumnTable): ColumnTable {
  const finished = finalRounds(rounds).select('runId');
  return rounds.semijoin(finished, 'runId');
}

export function summarize(store: StoreTables): StoreSummary {
  const byStatus = store.runs.numRows()
    ? (store.runs.groupby('status').count({ as: 'runs' }).orderby(aq.desc('runs'), 'status').objects() as {
        status: string;
        runs: number;
      }[])
    : [];
  const runIds = new Set<string>([
    ...(store.runs.array('runId') as string[]),
    ...(store.rounds.array('runId') as string[]),
  ]);
  const parameters = KEY_FIELDS.map((field) => {
    const vals = new Map<string, number | string | boolean>();
    for (const t of [store.runs, store.rounds]) {
      for (const v of t.array(field) as (number | string | boolean)[]) if (v !== undefined && v !== null) vals.set(String(v), v);
    }
    return { field, values: [...vals.values()].sort(compareValues) };
  });
  const configs = new Set<string>([
    ...(store.runs.array('config') as string[]),
    ...(store.rounds.array('config') as string[]),
  ]);
  return {
    runs: runIds.size,
    byStatus,
    finishedRuns: finalRounds(store.rounds).numRows(),
    roundRecords: store.rounds.numRows(),
    configurations: configs.size,
    parameters,
  };
}

/** Final-round statistics per configuration, aggregated over seeds, in configuration order. */
export function configStats(rounds: ColumnTable): ConfigStats[] {
  const final = finalRounds(rounds);
  if (final.numRows() === 0) return [];
  const rows = final
    .groupby(...configCols, 'config')
    .rollup({
      n: op.count(),
      accMean: op.mean('testAccuracy'),
      accStd: op.stdev('testAccuracy'),
      accMin: op.min('testAccuracy'),
      accMax: op.max('testAccuracy'),
      lossMean: op.mean('testLoss'),
      lossStd: op.stdev('testLoss'),
      lossMin: op.min('testLoss'),
      lossMax: op.max('testLoss'),
    })
    .orderby(...configCols)
    .objects() as ConfigStats[];
  return rows.map((r) => ({ ...r, accStd: nullIfMissing(r.accStd), lossStd: nullIfMissing(r.lossStd) }));
}

/** The best n configurations by the mean final metric (accuracy: highest first; loss: lowest). */
export function topConfigs(stats: readonly ConfigStats[], metric: Metric, n: number): RankedConfig[] {
  const value = (s: ConfigStats) => (metric === 'testAccuracy' ? -s.accMean : s.lossMean);
  return [...stats]
    .sort((a, b) => value(a) - value(b) || (a.config < b.config ? -1 : 1))
    .slice(0, n)
    .map((s, i) => ({ ...s, rank: i + 1 }));
}

/** Swap against no swap at otherwise equal settings, for every configuration that has both. */
export function swapComparison(stats: readonly ConfigStats[]): SwapComparison[] {
  if (stats.length === 0) return [];
  const others = configCols.filter((f) => f !== 'swap');
  const t = aq.from(stats as ConfigStats[]);
  const side = (swap: boolean, n: string, acc: string) =>
    t
      .params({ swap })
      .filter((d: any, $: any) => d.swap === $.swap)
      .select(...others, { n, accMean: acc });
  const joined = side(false, 'nNoSwap', 'accNoSwap').join(side(true, 'nSwap', 'accSwap'), [others, others]);
  if (joined.numRows() === 0) return [];
  return joined
    .derive({ accDiff: (d: any) => d.accSwap - d.accNoSwap })
    .orderby(...others)
    .objects() as SwapComparison[];
}

/** Mean seconds per training round of finished runs, split by phase, with samples/s and speedup over W=1. */
export function timingStats(rounds: ColumnTable): TimingStats[] {
  return roundTimingStats(finishedRounds(rounds));
}

/** timingStats over the given rounds, finished or not (a live view counts the rounds so far). */
export function roundTimingStats(rounds: ColumnTable): TimingStats[] {
  const training = rounds.filter((d: any) => d.round >= 1);
  if (training.numRows() === 0) return [];
  const rows = training
    .groupby(...configCols, 'config')
    .rollup({
      runs: op.distinct('runId'),
      roundsCounted: op.count(),
      roundSeconds: op.mean('roundSeconds'),
      trainSeconds: op.mean('trainSeconds'),
      transferSeconds: op.mean('transferSeconds'),
      mergeSeconds: op.mean('mergeSeconds'),
      evalSeconds: op.mean('evalSeconds'),
      evalOverlapSeconds: op.mean('evalOverlapSeconds'),
      samplesPerSecond: op.mean('samplesPerSecond'),
    })
    .orderby(...configCols)
    .objects() as Omit<TimingStats, 'speedup'>[];
  return rows.map((r) => {
    const base = baselineOf(r, rows);
    return { ...r, speedup: base ? base.roundSeconds / r.roundSeconds : null };
  });
}

/**
 * The W=1 row with otherwise equal settings. Swapping (and layerwise swapping) do nothing with
 * one trainer and sweeps skip them there, so when no exact match exists any W=1 row that agrees
 * on every other field is the baseline, preferably one without swapping.
 */
export function baselineOf<T extends ConfigKey>(r: ConfigKey, rows: readonly T[]): T | undefined {
  const same = (a: ConfigKey, fields: readonly ConfigField[]) => fields.every((f) => a[f] === r[f]);
  const inert = INERT_AT_ONE_TRAINER;
  const loose = SERIES_FIELDS.filter((f) => !inert.includes(f));
  const ones = rows.filter((x) => x.worldSize === 1 && same(x, loose));
  return ones.find((x) => same(x, inert)) ?? ones.find((x) => inert.every((f) => !x[f])) ?? ones[0];
}

/** Test accuracy per configuration and round: mean and std over seeds of finished runs. */
export function curvePoints(rounds: ColumnTable): CurvePoint[] {
  return seedCurves(finishedRounds(rounds));
}

/** curvePoints over the given rounds, finished or not (a live view counts the rounds so far). */
export function seedCurves(done: ColumnTable): CurvePoint[] {
  if (done.numRows() === 0) return [];
  const rows = done
    .groupby(...configCols, 'config', 'round')
    .rollup({
      n: op.count(),
      accMean: op.mean('testAccuracy'),
      accStd: op.stdev('testAccuracy'),
      lossMean: op.mean('testLoss'),
    })
    .orderby(...configCols, 'round')
    .objects() as CurvePoint[];
  return rows.map((r) => {
    const std = nullIfMissing(r.accStd);
    return { ...r, accStd: std, accLo: r.accMean - (std ?? 0), accHi: r.accMean + (std ?? 0) };
  });
}

/** One row per finished run: its final metrics (the points of the hyperparameter chart). */
export function finalRuns(rounds: ColumnTable): FinalRun[] {
  const final = finalRounds(rounds);
  if (final.numRows() === 0) return [];
  return final
    .select('runId', ...KEY_FIELDS, 'config', 'testAccuracy', 'testLoss')
    .orderby(...configCols, 'seed')
    .objects() as FinalRun[];
}

/** Final accuracy, seconds per round and speedup per configuration (the scaling chart). */
export function scalingRows(stats: readonly ConfigStats[], timing: readonly TimingStats[]): ScalingRow[] {
  const byConfig = new Map(timing.map((t) => [t.config, t]));
  return stats.flatMap((s) => {
    const t = byConfig.get(s.config);
    if (!t) return [];
    return [{ ...pickConfig(s), config: configId(s), accMean: s.accMean, accStd: s.accStd, roundSeconds: t.roundSeconds, speedup: t.speedup }];
  });
}

function nullIfMissing(x: number | null | undefined): number | null {
  return x === undefined || x === null || Number.isNaN(x) ? null : x;
}

function compareValues(a: number | string | boolean, b: number | string | boolean): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}
