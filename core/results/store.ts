/**
 * The append-only results store: runs.jsonl and rounds.jsonl in one directory.
 * Appends are whole lines written with one call and flushed, so concurrent writers (several
 * aggregators of a sweep, two sweeps) never interleave inside a line; readers skip and report
 * a torn last line instead of failing.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { RoundRecord, RunRecord } from './types.ts';
import { latestByRun, latestOfKey, latestRounds } from './latest.ts';

export const RUNS_FILE = 'runs.jsonl';
export const ROUNDS_FILE = 'rounds.jsonl';

export interface JsonLines<T> {
  records: T[];
  /** The last line when it was cut short (a writer died mid-append); it is skipped. */
  tornLastLine: string | null;
  /** 1-based numbers of other lines that did not parse; skipped. */
  badLines: number[];
}

export function readJsonLines<T>(path: string): JsonLines<T> {
  const out: JsonLines<T> = { records: [], tornLastLine: null, badLines: [] };
  if (!existsSync(path)) return out;
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const endsClean = text.endsWith('\n') || text.length === 0;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const isLast = i === lines.length - 1;
    try {
      out.records.push(JSON.parse(line) as T);
    } catch {
      if (isLast && !endsClean) out.tornLastLine = line;
      else out.badLines.push(i + 1);
    }
  });
  return out;
}

/** Appends one JSON record as a single line with a single write, then flushes it to disk. */
export function appendJsonLine(path: string, record: unknown): void {
  const line = Buffer.from(JSON.stringify(record) + '\n', 'utf8');
  const fd = openSync(path, 'a');
  try {
    let off = 0;
    while (off < line.length) off += writeSync(fd, line, off, line.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class ResultsStore {
  readonly runsPath: string;
  readonly roundsPath: string;

  constructor(readonly dir: string) {
    this.runsPath = join(dir, RUNS_FILE);
    this.roundsPath = join(dir, ROUNDS_FILE);
  }

  ensureDir(): void {
    mkdirSync(this.dir, { recursive: true });
  }

  appendRun(r: RunRecord): void {
    this.ensureDir();
    appendJsonLine(this.runsPath, r);
  }

  appendRound(r: RoundRecord): void {
    this.ensureDir();
    appendJsonLine(this.roundsPath, r);
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
