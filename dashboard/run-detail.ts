/**
 * One run's page as data: its latest record (config, status, error), its rounds, its profile.json
 * when it has ended, and the tail of each of its logs. Files are found only through the run's key
 * as the store records it, and only inside <results>/logs/: a key that would lead elsewhere gets
 * no files.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join, relative, isAbsolute } from 'node:path';
import { PROFILE_FILE, logsDir } from '../core/results/profile.ts';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { latestRounds } from '../core/results/latest.ts';
import { roleLogs, runLayout, type NamedLog } from '../runner/run-layout.ts';
import type { LiveStore } from './live-store.ts';

/** Bytes read from the end of a log, and the lines of it shown. */
const TAIL_BYTES = 64 * 1024;
const TAIL_LINES = 80;

export interface LogTail {
  name: string;
  /** Path relative to the results directory. */
  file: string;
  lines: string[];
}

export interface RunDetail {
  record: RunRecord;
  rounds: RoundRecord[];
  /** profile.json as the run wrote it (passed to the page as it is); null before the run ends. */
  profile: unknown;
  logs: LogTail[];
}

export function runDetail(live: LiveStore, runId: string): RunDetail | null {
  const record = live.latestRuns().get(runId);
  if (!record) return null;
  const rounds = latestRounds(live.roundRecords.filter((r) => r?.runId === runId)).records.sort((a, b) => a.round - b.round);
  const dir = runDir(live.dir, record.key);
  if (dir === null) return { record, rounds, profile: null, logs: [] };
  const layout = runLayout(live.dir, record.key);
  const named: NamedLog[] = [...roleLogs(layout, record.keyFields?.worldSize ?? 0), { name: 'slurm', logFile: layout.slurmLog }];
  const logs = named.filter((l) => existsSync(l.logFile)).map((l) => ({ name: l.name, file: relative(live.dir, l.logFile), lines: tailLines(l.logFile) }));
  return { record, rounds, profile: readProfile(join(dir, PROFILE_FILE)), logs };
}

/** <results>/logs/<key>/ when the key names a folder right inside logs/, else null. */
export function runDir(results: string, key: unknown): string | null {
  if (typeof key !== 'string' || key === '' || key.includes('/') || key.includes('\\') || key === '.' || key === '..') return null;
  const dir = runLayout(results, key).dir;
  const rel = relative(logsDir(results), dir);
  return rel === key && !isAbsolute(rel) ? dir : null;
}

function readProfile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null; // not written yet: the run has not ended (it is written whole when it does)
  }
}

/** The last lines of a file, reading only its end. */
export function tailLines(path: string, maxLines = TAIL_LINES): string[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const lines = buf.toString('utf8').split('\n');
    if (start > 0) lines.shift(); // cut mid-line
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-maxLines);
  } finally {
    closeSync(fd);
  }
}
