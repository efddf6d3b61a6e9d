/**
 * Loads the results store into arquero tables: the latest record of each run, and the round
 * records de-duplicated by (runId, round) with the last write winning (a resumed run writes
 * a round again). Skipped lines and other oddities come back as warnings, not errors.
 */
import * as aq from 'arquero';
import type { ColumnTable } from 'arquero';
import { existsSync } from 'node:fs';
import { FedsliceError } from '../core/errors.ts';
import { ROUNDS_FILE, RUNS_FILE, ResultsStore } from '../core/results/store.ts';
import { type JsonLines, tornLineWarnings } from '../core/results/jsonl.ts';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { latestByRun, latestRounds } from '../core/results/latest.ts';
import { SUMMARY_COLUMNS } from '../core/results/summary.ts';
import { plannedRounds } from '../core/aggregation/async-rule.ts';
import { KEY_FIELDS, badStoredKeyFields, configId, keyFieldsOf } from '../core/results/schema.ts';
import { mergedSettingsWarnings } from './merged-settings.ts';

export interface LoadedStore {
  dir: string;
  /** One row per run id: its latest status, key fields, config id, wall seconds, error. */
  runs: ColumnTable;
  /** One row per (runId, round): key fields, config id, metrics and timings. */
  rounds: ColumnTable;
  warnings: string[];
}

const ROUND_COLUMNS = [
  'round',
  'testLoss',
  'testAccuracy',
  'trainLoss',
  'roundSeconds',
  'trainSeconds',
  'transferSeconds',
  'mergeSeconds',
  'evalSeconds',
  'evalOverlapSeconds',
  'samplesPerSecond',
  'bytesSent',
  'bytesReceived',
  'trainersReporting',
  'elapsedSeconds',
  'samplesSeen',
  'updatesApplied',
  'version',
  'staleness',
  'maxStaleness',
  'trainers',
  'aggregatorPeakRssBytes',
] as const;

export function noResultsError(dir: string): FedsliceError {
  return new FedsliceError(
    'FEDSLICE_ERR_NO_RESULTS',
    `no results in ${dir}: run \`fedslice runner sweep --config configs/smoke.json\` first`,
  );
}

export function loadStore(dir: string): LoadedStore {
  if (!existsSync(dir)) throw noResultsError(dir);
  const store = new ResultsStore(dir);
  const runsRead = store.readRuns();
  const roundsRead = store.readRounds();
  if (runsRead.records.length === 0 && roundsRead.records.length === 0) throw noResultsError(dir);
  return { dir, ...storeTables(runsRead, roundsRead) };
}

/**
 * The runs and rounds tables of the records read from runs.jsonl and rounds.jsonl (whole files, or
 * what a live reader has seen so far), with the warnings about what was skipped.
 */
export function storeTables(runsRead: JsonLines<RunRecord>, roundsRead: JsonLines<RoundRecord>): Omit<LoadedStore, 'dir'> {
  const warnings: string[] = [];
  for (const [file, read] of [
    [RUNS_FILE, runsRead],
    [ROUNDS_FILE, roundsRead],
  ] as const) {
    warnings.push(...tornLineWarnings(file, read.torn));
  }

  const goodRuns = runsRead.records.filter(isRunRecord);
  const badRuns = runsRead.records.length - goodRuns.length;
  const latestRun = latestByRun(goodRuns);
  if (badRuns > 0) warnings.push(`${RUNS_FILE}: skipped ${badRuns} record(s) without runId, status and keyFields${missingNote(runsRead.records.map((r) => r?.keyFields))}`);
  warnings.push(...mergedSettingsWarnings([...latestRun.values()]));

  const goodRounds = roundsRead.records.filter(isRoundRecord);
  const badRounds = roundsRead.records.length - goodRounds.length;
  const { records: latestRound, rewritten } = latestRounds(goodRounds);
  if (badRounds > 0) warnings.push(`${ROUNDS_FILE}: skipped ${badRounds} record(s) missing runId, round or test metrics${missingNote(roundsRead.records)}`);
  if (rewritten > 0) {
    warnings.push(`${ROUNDS_FILE}: ${rewritten} round(s) written twice (resumed runs); the last record of each is used`);
  }

  const runRows = [...latestRun.values()].map((r) => ({
    runId: r.runId,
    status: r.status,
    ...keyOf(r.keyFields),
    config: configId(r.keyFields),
    wallSeconds: r.wallSeconds ?? null,
    error: r.error ?? null,
    ...Object.fromEntries(SUMMARY_COLUMNS.map((c) => [c, r.summary?.[c] ?? null])),
  }));
  const roundRows = latestRound
    .map((r) => {
      const row: Record<string, unknown> = { runId: r.runId, ...keyOf(r), config: configId(r) };
      for (const c of ROUND_COLUMNS) row[c] = r[c] ?? null;
      const run = latestRun.get(r.runId);
      row.status = run?.status ?? 'unknown';
      row.finalRound = finalRoundOf(run, r);
      return row;
    })
    .sort((a, b) => cmp(a.runId as string, b.runId as string) || (a.round as number) - (b.round as number));

  return {
    runs: runRows.length > 0 ? aq.from(runRows) : emptyTable(['runId', 'status', ...KEY_FIELDS, 'config', 'wallSeconds', 'error', ...SUMMARY_COLUMNS]),
    rounds: roundRows.length > 0 ? aq.from(roundRows) : emptyTable(['runId', ...KEY_FIELDS, 'config', ...ROUND_COLUMNS, 'status', 'finalRound']),
    warnings,
  };
}

/**
 * The last round a run records: written in its run record when it starts. Async runs record one
 * round per evaluation, which need not end at `rounds`; for records older than the field, it is
 * recomputed from the config with today's defaults.
 */
function finalRoundOf(run: RunRecord | undefined, r: RoundRecord): number {
  if (run?.plannedRounds !== undefined) return run.plannedRounds;
  return run?.config?.federation ? plannedRounds(run.config.federation) : r.rounds;
}

/** A record's key fields, a field it was written without read as its default. */
function keyOf(r: unknown): Record<string, unknown> {
  const key = keyFieldsOf(r);
  return Object.fromEntries(KEY_FIELDS.map((f) => [f, key?.[f] ?? null]));
}

/** Which key fields the records lack (a store written before a key field was added). */
function missingNote(records: readonly unknown[]): string {
  const missing = new Set(records.flatMap((r) => (r && typeof r === 'object' ? badStoredKeyFields(r) : [])));
  return missing.size ? ` (key fields missing or of the wrong kind: ${[...missing].join(', ')})` : '';
}

function emptyTable(columns: readonly string[]): ColumnTable {
  return aq.table(Object.fromEntries(columns.map((c) => [c, [] as unknown[]])));
}

function isRunRecord(r: unknown): r is RunRecord {
  const x = r as RunRecord;
  return !!x && typeof x.runId === 'string' && typeof x.status === 'string' && keyFieldsOf(x.keyFields) !== null;
}

function isRoundRecord(r: unknown): r is RoundRecord {
  const x = r as RoundRecord;
  return (
    !!x &&
    typeof x.runId === 'string' &&
    Number.isInteger(x.round) &&
    typeof x.testAccuracy === 'number' &&
    typeof x.testLoss === 'number' &&
    keyFieldsOf(x) !== null
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
