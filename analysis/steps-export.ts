/**
 * `--steps-csv` / `--steps-json`: the step log of the runs analysed (after --where), one row per
 * line of steps.jsonl with the run's configuration id and key fields in front. Streamed: a store
 * of millions of lines is written without holding it in memory.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FedsliceError } from '../core/errors.ts';
import { scanJsonLines } from '../core/results/jsonl-scan.ts';
import { STEPS_FILE } from '../core/results/store.ts';
import type { StepRun } from './steps.ts';

/** The step record's own columns, after the run's configuration and key fields. */
export const STEP_COLUMNS = ['slot', 'round', 'globalStep', 'epoch', 'loss', 'intervalSteps', 'samples', 'samplesPerSecond', 'learningRate', 'time', 'elapsedSeconds'] as const;

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Writes the step log of `runs` to `path` as CSV or a JSON array; returns the absolute path and the row count. */
export function exportSteps(dir: string, runs: ReadonlyMap<string, StepRun>, path: string, format: 'csv' | 'json'): { path: string; rows: number } {
  const full = resolve(path);
  let fd: number;
  try {
    mkdirSync(dirname(full), { recursive: true });
    fd = openSync(full, 'w');
  } catch (e) {
    throw new FedsliceError('FEDSLICE_ERR_WRITE', `cannot write ${path}: ${e instanceof Error && 'code' in e ? String(e.code) : String(e)}; check the path`);
  }
  const keyFields = (run: StepRun) => ({ runId: run.runId, config: run.config, ...run.key, seed: run.seed });
  let header: string[] | null = null;
  let rows = 0;
  let pending: string[] = [];
  const flush = () => {
    if (pending.length) writeSync(fd, pending.join(''));
    pending = [];
  };
  try {
    if (format === 'json') pending.push('[');
    scanJsonLines(join(dir, STEPS_FILE), (r) => {
      if (typeof r !== 'object' || r === null) return;
      const runId: unknown = Reflect.get(r, 'runId');
      const run = typeof runId === 'string' ? runs.get(runId) : undefined;
      if (!run) return;
      const row: Record<string, unknown> = keyFields(run);
      for (const c of STEP_COLUMNS) row[c] = Reflect.get(r, c) ?? null;
      if (format === 'json') {
        pending.push(`${rows === 0 ? '\n' : ',\n'}${JSON.stringify(row)}`);
      } else {
        if (!header) {
          header = Object.keys(row);
          pending.push(`${header.join(',')}\n`);
        }
        pending.push(`${header.map((h) => csvCell(row[h])).join(',')}\n`);
      }
      rows++;
      if (pending.length >= 4096) flush();
    });
    if (format === 'json') pending.push(rows ? '\n]\n' : ']\n');
    flush();
  } finally {
    closeSync(fd);
  }
  return { path: full, rows };
}
