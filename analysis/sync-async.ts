/**
 * The parameter-server study: synchronous vs asynchronous federation per world
 * size. Both modes are compared on what they cost (total training time, seconds per round of
 * worldSize updates, samples/s and its speedup over W=1) and what they reach (final accuracy,
 * accuracy against wall-clock time and samples seen). Only finished runs count.
 */
import * as aq from 'arquero';
import type { ColumnTable } from 'arquero';
import { CONFIG_FIELDS, type ConfigKey, configId, pickConfig } from '../core/results/schema.ts';
import { SUMMARY_COLUMNS, type SummaryColumn } from '../core/results/summary.ts';
import { baselineOf, finalRounds, finishedRounds } from './tables.ts';

const op = aq.op;

export interface ModeRow extends ConfigKey {
  config: string;
  n: number;
  accMean: number;
  accStd: number | null;
  /** Mean over seeds of the training time: first task out to last update applied. */
  totalSeconds: number;
  /** totalSeconds per `rounds` (a round being worldSize updates in either mode). */
  secondsPerRound: number;
  samplesPerSecond: number;
  /** samples/s over samples/s at W=1 with otherwise equal settings; null without W=1. */
  speedup: number | null;
  updatesPerSecond: number;
  /** Seconds of local training per task (train.epochs epochs), over trainers: min, mean, max. */
  taskSecondsMin: number | null;
  taskSecondsMean: number | null;
  taskSecondsMax: number | null;
  meanStaleness: number | null;
  maxStaleness: number | null;
}

export interface TimePoint extends ConfigKey {
  config: string;
  round: number;
  elapsedSeconds: number;
  samplesSeen: number;
  accMean: number;
}

/** True when the store holds async runs to compare against synchronous ones. */
export function hasModeComparison(rounds: ColumnTable): boolean {
  const modes = new Set(rounds.array('mode') as string[]);
  return modes.has('async') && (modes.has('fedavg') || modes.has('slice'));
}

export function modeComparison(runs: ColumnTable, rounds: ColumnTable): ModeRow[] {
  const final = finalRounds(rounds).select('runId', ...CONFIG_FIELDS, 'testAccuracy', 'samplesSeen', 'elapsedSeconds');
  if (final.numRows() === 0) return [];
  // the run summary's figures, by their names in the typed summary (core/results/summary.ts)
  const joined = final.join_left(runs.select('runId', ...SUMMARY_COLUMNS), 'runId');
  // runs written before run summaries existed: the elapsed time at the last evaluation
  const perRun = aq.from(
    (joined.objects() as Record<string, unknown>[]).map((r) => ({ ...r, total: r['totalTrainingSeconds' satisfies SummaryColumn] ?? r.elapsedSeconds ?? null })),
  );
  const grouped = perRun
    .groupby(...CONFIG_FIELDS)
    .rollup({
      n: op.count(),
      accMean: op.mean('testAccuracy'),
      accStd: op.stdev('testAccuracy'),
      totalSeconds: op.mean('total'),
      samples: op.mean('samplesSeen'),
      updates: op.mean('updatesApplied' satisfies SummaryColumn),
      meanStaleness: op.mean('meanStaleness' satisfies SummaryColumn),
      maxStaleness: op.max('maxStaleness' satisfies SummaryColumn),
      taskSecondsMin: op.min('taskSecondsMin' satisfies SummaryColumn),
      taskSecondsMean: op.mean('taskSecondsMean' satisfies SummaryColumn),
      taskSecondsMax: op.max('taskSecondsMax' satisfies SummaryColumn),
    })
    .orderby('worldSize', 'mode', ...CONFIG_FIELDS)
    .objects() as (ConfigKey & Record<'n' | 'accMean' | 'accStd' | 'totalSeconds' | 'samples' | 'updates' | 'meanStaleness' | 'maxStaleness' | 'taskSecondsMin' | 'taskSecondsMean' | 'taskSecondsMax', number | null>)[];
  const rows = grouped.map((g) => {
    const total = g.totalSeconds ?? 0;
    return {
      ...pickConfig(g),
      config: configId(g),
      n: g.n!,
      accMean: g.accMean!,
      accStd: finite(g.accStd),
      totalSeconds: total,
      secondsPerRound: total / g.rounds,
      samplesPerSecond: total > 0 && g.samples ? g.samples / total : 0,
      updatesPerSecond: total > 0 && g.updates ? g.updates / total : 0,
      meanStaleness: finite(g.meanStaleness),
      maxStaleness: finite(g.maxStaleness),
      taskSecondsMin: finite(g.taskSecondsMin),
      taskSecondsMean: finite(g.taskSecondsMean),
      taskSecondsMax: finite(g.taskSecondsMax),
      speedup: null as number | null,
    };
  });
  for (const r of rows) {
    const base = baselineOf(r, rows);
    r.speedup = base && base.samplesPerSecond > 0 ? r.samplesPerSecond / base.samplesPerSecond : null;
  }
  return rows;
}

/** Mean test accuracy per configuration and round, placed at its mean wall-clock time and samples seen. */
export function timePoints(rounds: ColumnTable): TimePoint[] {
  const done = finishedRounds(rounds).filter((d: any) => d.elapsedSeconds !== null && d.samplesSeen !== null);
  if (done.numRows() === 0) return [];
  return done
    .groupby(...CONFIG_FIELDS, 'round')
    .rollup({ elapsedSeconds: op.mean('elapsedSeconds'), samplesSeen: op.mean('samplesSeen'), accMean: op.mean('testAccuracy') })
    .orderby(...CONFIG_FIELDS, 'round')
    .objects()
    .map((r: any) => ({ ...r, config: configId(r) })) as TimePoint[];
}

function finite(x: number | null | undefined): number | null {
  return x === null || x === undefined || !Number.isFinite(x) ? null : x;
}
