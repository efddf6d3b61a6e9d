/**
 * The `summary` of a run record: figures written when a run ends. The run figures come from the
 * round records, so they are the same in every mode and across resumes; task seconds and the
 * async counts describe the last aggregator process only.
 */
import type { RoundRecord } from './types.ts';
import { latestRounds } from './latest.ts';

/** From the round records: training time from the initial evaluation to the last, updates, staleness. */
export const RUN_FIGURES = ['totalTrainingSeconds', 'updatesApplied', 'updatesPerSecond', 'meanStaleness', 'maxStaleness'] as const;
/** Local training seconds per task (train.epochs epochs), over trainer slots: min, mean, max. */
export const TASK_SECONDS = ['taskSecondsMin', 'taskSecondsMean', 'taskSecondsMax'] as const;
/** The summary figures the analysis carries into its runs table (null where a run has none). */
export const SUMMARY_COLUMNS = [...RUN_FIGURES, ...TASK_SECONDS] as const;

export type RunFigures = Record<(typeof RUN_FIGURES)[number], number>;
export type TaskSeconds = Record<(typeof TASK_SECONDS)[number], number>;
export type SummaryColumn = (typeof SUMMARY_COLUMNS)[number];

/**
 * async mode, this process: updates received, refused, lost with a departed trainer; the version
 * reached; per trainer slot the updates applied with their mean staleness and weight.
 */
export type AsyncCounts = {
  updatesReceived: number;
  updatesRefused: number;
  tasksLost: number;
  finalVersion: number;
} & PerSlotCounts;
export type PerSlotCounts = { [perSlot: `${'updates' | 'meanStaleness' | 'meanWeight'}.slot${number}`]: number };

export type RunSummary = Partial<RunFigures & TaskSeconds & Omit<AsyncCounts, keyof PerSlotCounts>> & PerSlotCounts;

/** The run figures from its round records (each round's last write counts); {} without rounds. */
export function runSummary(rounds: readonly RoundRecord[]): Partial<RunFigures> {
  const sorted = latestRounds(rounds).records.sort((a, b) => a.round - b.round);
  const first = sorted[0];
  const last = sorted.at(-1);
  if (!first || !last) return {};
  const seconds = (last.elapsedSeconds ?? 0) - (first.elapsedSeconds ?? 0);
  const updates = last.updatesApplied ?? 0;
  let stalenessSum = 0;
  let maxStaleness = 0;
  for (let i = 1; i < sorted.length; i++) {
    const n = (sorted[i].updatesApplied ?? 0) - (sorted[i - 1].updatesApplied ?? 0);
    stalenessSum += (sorted[i].staleness ?? 0) * n;
    maxStaleness = Math.max(maxStaleness, sorted[i].maxStaleness ?? 0);
  }
  return {
    totalTrainingSeconds: seconds,
    updatesApplied: updates,
    updatesPerSecond: seconds > 0 ? updates / seconds : 0,
    meanStaleness: updates > 0 ? stalenessSum / updates : 0,
    maxStaleness,
  };
}

/** A run record's `summary` field, left out when there is nothing to say. */
export function summaryField(summary: RunSummary): { summary?: RunSummary } {
  return Object.keys(summary).length ? { summary } : {};
}
