/**
 * An attempt's entry in the results store: the run record this attempt wrote (never an older
 * run of the same key), why the attempt failed, and its end when the aggregator could not
 * record it.
 */
import { ResultsStore } from '../core/results/store.ts';
import { runKeyFields } from '../core/results/schema.ts';
import type { RunRecord } from '../core/results/types.ts';
import { storageErrorOf } from '../core/results/storage-error.ts';
import type { Attempt, RunOutcome } from './executor.ts';
import { tail } from './processes.ts';
import type { NamedLog } from './run-layout.ts';

/**
 * The key's unfinished run an attempt resumed, for an aggregator that could not even record its
 * start (a full disk): the attempt's end goes under that run's id, so the next attempt still
 * resumes its checkpoint instead of starting afresh.
 */
function resumedRecord(a: Pick<Attempt, 'layout' | 'run'>): RunRecord | undefined {
  const store = new ResultsStore(a.layout.results);
  return store.latestForKey(a.run.key, (r) => r.status !== 'completed');
}

/** The latest record of the attempt's key, if it started during this attempt. */
export function attemptRecord(a: Pick<Attempt, 'layout' | 'run' | 'startedAt'>): RunRecord | undefined {
  const store = new ResultsStore(a.layout.results);
  return store.latestForKey(a.run.key, (r) => r.startedAt >= a.startedAt);
}

const ERROR_LINE = /^fedslice: (internal )?error: /;

/**
 * Why an attempt failed, in the aggregator's words: the error of the run record it wrote, else
 * the last error line of its log (it died before it had a record to write to); null when
 * neither says.
 */
export function failureReason(record: RunRecord | undefined, aggregatorLogTail: string[]): string | null {
  if (record?.error && (record.status === 'failed' || record.status === 'interrupted')) return record.error;
  const line = [...aggregatorLogTail].reverse().find((l) => ERROR_LINE.test(l));
  return line ? line.replace(ERROR_LINE, '') : null;
}

export function attemptFailure(a: Attempt): string | null {
  return failureReason(attemptRecord(a), tail(a.layout.aggregatorLog, 50));
}

/**
 * The aggregator records its own end when it can; this covers what it cannot: killed roles,
 * crashes before it registered, and the log tail a human needs to see why. The store has the
 * last word: a run the aggregator recorded as completed just before it was stopped is completed.
 */
export function recordEnd(a: Attempt, outcome: RunOutcome, logs: NamedLog[]): RunOutcome {
  if (outcome.status === 'completed') return outcome;
  try {
    return appendEnd(a, outcome, logs);
  } catch (e) {
    const se = storageErrorOf(e);
    if (!se) throw e;
    // The store cannot take the record: the run stays resumable from its checkpoint all the same.
    return { ...outcome, storeError: outcome.storeError ?? se.naming(a.layout.results).message };
  }
}

function appendEnd(a: Attempt, outcome: Exclude<RunOutcome, { status: 'completed' }>, logs: NamedLog[]): RunOutcome {
  const mine = attemptRecord(a);
  if (mine?.status === 'completed') return { status: 'completed' };
  if (outcome.status === 'interrupted' && (!mine || mine.status !== 'started')) return outcome; // never started, or the aggregator said so itself
  const base: RunRecord = mine ?? resumedRecord(a) ?? {
    kind: 'run',
    runId: `${a.run.key}-${Date.now().toString(36)}`,
    key: a.run.key,
    keyFields: runKeyFields(a.run.config),
    status: 'started',
    config: a.run.config,
    startedAt: new Date().toISOString(),
    environment: { backend: 'unknown', node: process.version, tfjs: 'unknown', fedslice: 'unknown', host: '', platform: process.platform },
  };
  new ResultsStore(a.layout.results).appendRun({
    ...base,
    status: outcome.status,
    endedAt: new Date().toISOString(),
    error: outcome.status === 'failed' ? outcome.reason : 'interrupted by the sweep runner',
    logTail: logs.flatMap((r) => tail(r.logFile, 6).map((l) => `${r.name}: ${l}`)),
  });
  return outcome;
}
