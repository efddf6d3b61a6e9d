/**
 * The append-only results store: runs.jsonl, rounds.jsonl and steps.jsonl (the step log) in one directory. Appends are whole
 * lines or nothing, even on a full disk, and concurrent writers (several aggregators of a sweep,
 * two sweeps) never interleave inside a line; readers skip and report torn lines (./jsonl.ts).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RoundRecord, RunRecord, StepRecord } from './types.ts';
import { latestByRun, latestOfKey, latestRounds } from './latest.ts';
import { appendJsonLine, readJsonLines, type JsonLines } from './jsonl.ts';
import { withStorageErrors } from './storage-error.ts';

export const RUNS_FILE = 'runs.jsonl';
export const ROUNDS_FILE = 'rounds.jsonl';
export const STEPS_FILE = 'steps.jsonl';

export class ResultsStore {
  readonly runsPath: string;
  readonly roundsPath: string;
  readonly stepsPath: string;

  constructor(readonly dir: string) {
    this.runsPath = join(dir, RUNS_FILE);
    this.roundsPath = join(dir, ROUNDS_FILE);
    this.stepsPath = join(dir, STEPS_FILE);
  }

  ensureDir(): void {
    withStorageErrors(this.dir, () => mkdirSync(this.dir, { recursive: true }), 'write', this.dir);
  }

  appendRun(r: RunRecord): void {
    this.ensureDir();
    appendJsonLine(this.runsPath, r);
  }

  appendRound(r: RoundRecord): void {
    this.ensureDir();
    appendJsonLine(this.roundsPath, r);
  }

  appendStep(r: StepRecord): void {
    this.ensureDir();
    appendJsonLine(this.stepsPath, r);
  }

  readRuns(): JsonLines<RunRecord> {
    return readJsonLines<RunRecord>(this.runsPath);
  }

  readRounds(): JsonLines<RoundRecord> {
    return readJsonLines<RoundRecord>(this.roundsPath);
  }

  /** The latest record of each run id (a run writes 'started' then its end state). */
  latestRuns(): Map<string, RunRecord> {
    return latestByRun(this.readRuns().records);
  }

  /**
   * The latest record of the newest run of this key that `where` accepts (e.g. completed, or
   * started since this attempt began); undefined when there is none.
   */
  latestForKey(key: string, where?: (r: RunRecord) => boolean): RunRecord | undefined {
    return latestOfKey(this.latestRuns().values(), key, where);
  }

  /** Keys with at least one completed run. */
  completedKeys(): Set<string> {
    const done = new Set<string>();
    for (const r of this.latestRuns().values()) if (r.status === 'completed') done.add(r.key);
    return done;
  }

  /** Round records of one run, de-duplicated by round (the last write wins), in round order. */
  roundsOf(runId: string): RoundRecord[] {
    const mine = this.readRounds().records.filter((r) => r.runId === runId);
    return latestRounds(mine).records.sort((a, b) => a.round - b.round);
  }
}
