/**
 * `fedslice runner sweep`: expand the grid, skip what is done, run the rest in parallel with one
 * metaserver for the whole sweep, retry failures, end every child on a signal, and summarise.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';
import { mkdirSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSweep, readJsonFile } from '../core/config.ts';
import { ResultsStore } from '../core/results/store.ts';
import { startMetaserver } from '../metaserver/server.ts';
import { describePoint, expandSweep, type PlannedRun } from './grid.ts';
import { tryLock } from './lock.ts';
import { endAll } from './processes.ts';
import { fmtDuration, plainProgress, ttyProgress, type Progress, type RunningView } from './progress.ts';
import { runPool } from './pool.ts';
import { isWildcardHost, wsUrl } from '../core/wire/tls.ts';
import { runOne, type RunOneOptions, type RunOutcome } from './run-one.ts';
import { runSlurm } from './run-slurm.ts';
import { checkSlurm } from './slurm.ts';

export type ExecutorName = 'local' | 'slurm';

export interface SweepOptions {
  config: string;
  results: string;
  parallel?: number;
  timeoutS: number;
  retries: number;
  force: boolean;
  dryRun: boolean;
  /** local: child processes of this sweep; slurm: one Slurm job per run. */
  executor?: ExecutorName;
  /** Extra sbatch options for every job (--executor slurm). */
  slurmArgs?: string[];
  /** Interface the sweep's metaserver binds (default 127.0.0.1); jobs get the hostname when it is 0.0.0.0. */
  metaserverHost?: string;
  signal: AbortSignal;
  tty: boolean;
  out?: NodeJS.WriteStream;
}

export interface SweepSummary {
  total: number;
  completed: number;
  failed: { key: string; reason: string }[];
  alreadyDone: number;
  elsewhere: number;
  interrupted: number;
  wallSeconds: number;
}

/** How many runs go at once: `--parallel N` runs, or by default as many as fit the cores. */
export interface Schedule {
  capacity: number;
  cost: (run: PlannedRun) => number;
  describe: string;
}

/** A trainer on the wasm backend keeps one core busy; the aggregator mostly waits while they train. */
export function scheduleFor(parallel: number | undefined, cores = availableParallelism()): Schedule {
  if (parallel !== undefined) return { capacity: parallel, cost: () => 1, describe: `${parallel} at a time` };
  return { capacity: cores, cost: (r) => r.config.federation.worldSize, describe: `as many at a time as fit ${cores} cores (one per trainer; --parallel N overrides)` };
}

/** On Slurm the queue decides what runs when: submit every run unless --parallel caps it. */
function slurmSchedule(parallel: number | undefined, pending: number): Schedule {
  if (parallel !== undefined) return { capacity: parallel, cost: () => 1, describe: `${parallel} Slurm jobs at a time` };
  return { capacity: Math.max(1, pending), cost: () => 1, describe: 'one Slurm job per run, all submitted at once' };
}

export const isLoopback = (host: string): boolean => host === 'localhost' || host.startsWith('127.') || host === '::1';

/** The metaserver address jobs dial: a wildcard bind is reached through this machine's hostname. */
export function jobsMetaserverUrl(url: string, bindHost: string): string {
  if (!isWildcardHost(bindHost)) return url;
  return wsUrl('ws', hostname(), Number(new URL(url).port));
}

export async function runSweep(o: SweepOptions): Promise<SweepSummary> {
  const out = o.out ?? process.stdout;
  const sweep = parseSweep(readJsonFile(o.config), o.config);
  const runs = expandSweep(sweep, o.config);
  const store = new ResultsStore(o.results);
  const done = store.completedKeys();
  const pending = o.force ? runs : runs.filter((r) => !done.has(r.key));
  const summary: SweepSummary = { total: runs.length, completed: 0, failed: [], alreadyDone: runs.length - pending.length, elsewhere: 0, interrupted: 0, wallSeconds: 0 };

  if (o.dryRun) {
    const state = (r: PlannedRun) => {
      if (done.has(r.key)) return 'done';
      const last = store.latestForKey(r.key);
      return last ? `${last.status} before` : 'pending';
    };
    out.write(`sweep ${sweep.name}: ${runs.length} runs, ${summary.alreadyDone} already completed in ${o.results}, ${pending.length} to run${o.force ? ' (--force)' : ''}\n`);
    const rows = runs.map((r) => [String(r.index + 1), state(r), describePoint(r.point), r.key]);
    const widths = [0, 1, 2].map((c) => Math.max(...rows.map((row) => row[c].length), ['#', 'status', 'grid point'][c].length));
    out.write(['#', 'status', 'grid point'].map((h, c) => h.padEnd(widths[c])).join('  ') + '  key\n');
    for (const row of rows) out.write(row.slice(0, 3).map((v, c) => v.padEnd(widths[c])).join('  ') + `  ${row[3]}\n`);
    return summary;
  }
  if (pending.length === 0) {
    out.write(`sweep ${sweep.name}: all ${runs.length} runs are already completed in ${o.results}; nothing to do (--force runs them again)\n`);
    return summary;
  }

  const executor = o.executor ?? 'local';
  if (executor === 'slurm') checkSlurm();
  const schedule = executor === 'slurm' ? slurmSchedule(o.parallel, pending.length) : scheduleFor(o.parallel);
  const logs = join(o.results, 'logs');
  mkdirSync(logs, { recursive: true });
  const bindHost = o.metaserverHost ?? '127.0.0.1';
  const metaserver = await startMetaserver({ host: bindHost, port: 0, log: (l) => appendFileSync(join(logs, 'metaserver.log'), `${l}\n`) });
  const metaserverUrl = jobsMetaserverUrl(metaserver.url, bindHost);
  const progress: Progress = o.tty ? ttyProgress(out) : plainProgress(out);
  const started = Date.now();
  const startedIso = new Date(started).toISOString();
  const running = new Map<string, RunningView>();
  const finished = () => summary.completed + summary.failed.length;
  const counts = () => ({ done: summary.completed, failed: summary.failed.length, skipped: summary.elsewhere, total: pending.length });
  const eta = () => {
    if (!finished()) return null;
    const left = pending.length - finished() - summary.elsewhere;
    return (left * (Date.now() - started)) / 1000 / finished();
  };
  const refresh = () => progress.update([...running.values()], counts(), eta());
  progress.event(`sweep ${sweep.name}: ${pending.length} runs to do (${summary.alreadyDone} already completed), ${schedule.describe}; logs in ${logs}`);

  // Another sweep on the same results may have finished this key since we read the store.
  const completedElsewhere = (key: string) =>
    store.latestForKey(key, (r) => r.status === 'completed' && (!o.force || (r.endedAt ?? '') >= startedIso)) !== undefined;

  const execute = async (run: PlannedRun) => {
    const lock = tryLock(o.results, run.key);
    if (!lock) {
      summary.elsewhere++;
      progress.event(`skip  ${run.key}: another sweep is running it`);
      return;
    }
    try {
      if (completedElsewhere(run.key)) {
        summary.elsewhere++;
        progress.event(`skip  ${run.key}: another sweep completed it`);
        return;
      }
      await attempts(run);
    } finally {
      lock.release();
    }
  };

  const attempts = async (run: PlannedRun) => {
    const label = describePoint(run.point);
    const t0 = Date.now();
    const token = randomBytes(16).toString('hex');
    let outcome: RunOutcome = { status: 'interrupted' };
    for (let attempt = 1; attempt <= o.retries + 1 && !o.signal.aborted; attempt++) {
      const view: RunningView = { key: run.key, label, round: 0, rounds: run.config.federation.rounds, state: 'starting', trainers: 0, worldSize: run.config.federation.worldSize, startedAt: t0 };
      running.set(run.key, view);
      progress.event(`start ${run.key}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
      refresh();
      const runOptions: RunOneOptions = {
        run,
        metaserver: metaserverUrl,
        results: o.results,
        token,
        timeoutS: o.timeoutS,
        force: o.force,
        attempt,
        signal: o.signal,
        onStatus: (s) => {
          // On a TTY the live view shows readiness and rounds; plain output gets a line for each.
          if (!o.tty && s.state === 'waiting' && view.state === 'starting') progress.event(`ready ${run.key}: aggregator waiting for ${view.worldSize} trainer${view.worldSize === 1 ? '' : 's'}`);
          if (!o.tty && s.state === 'training') progress.event(`round ${run.key}: ${s.round}/${s.rounds} recorded`);
          view.round = s.round;
          view.state = s.state;
          refresh();
        },
        onTrainers: (n) => {
          view.trainers = n;
          refresh();
        },
        onEvent: (line) => progress.event(line),
      };
      outcome =
        executor === 'slurm'
          ? await runSlurm({
              ...runOptions,
              slurmArgs: o.slurmArgs ?? [],
              aggregatorHost: isLoopback(bindHost) ? 'loopback' : 'hostname',
              onJobState: (id, state) => {
                if (!o.tty) progress.event(`slurm ${run.key}: job ${id} ${state}`);
                if (state === 'PENDING') view.state = 'queued in slurm';
                else if (view.state === 'queued in slurm') view.state = 'starting';
                refresh();
              },
            })
          : await runOne(runOptions);
      if (outcome.status !== 'failed') break;
      progress.event(`fail  ${run.key}: ${outcome.reason}${attempt <= o.retries ? '; retrying' : ''}`);
    }
    running.delete(run.key);
    const secs = (Date.now() - t0) / 1000;
    if (outcome.status === 'completed') {
      summary.completed++;
      progress.event(`done  ${run.key} in ${fmtDuration(secs)}`);
    } else if (outcome.status === 'failed') {
      summary.failed.push({ key: run.key, reason: outcome.reason });
    } else {
      summary.interrupted++;
      progress.event(`stop  ${run.key}: interrupted`);
    }
    refresh();
  };

  const onAbort = () =>
    progress.event(
      executor === 'slurm'
        ? `stop: cancelling ${running.size} Slurm jobs (scancel; they resume next time); Ctrl-C again to exit at once (the jobs are still cancelled)`
        : `stop: ending ${running.size} running runs (they resume next time); Ctrl-C again to kill them at once`,
    );
  o.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await runPool(pending, { capacity: schedule.capacity, cost: schedule.cost, signal: o.signal }, execute);
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    await endAll();
    progress.close();
    await metaserver.close();
  }
  summary.wallSeconds = (Date.now() - started) / 1000;
  printSummary(out, sweep.name, summary, o.signal.aborted);
  return summary;
}

function printSummary(out: NodeJS.WritableStream, name: string, s: SweepSummary, aborted: boolean): void {
  const rows: [string, string][] = [
    ['runs in the sweep', String(s.total)],
    ['completed now', String(s.completed)],
    ['failed', String(s.failed.length)],
    ['skipped: already completed', String(s.alreadyDone)],
    ['skipped: run by another sweep', String(s.elsewhere)],
    ['interrupted', String(s.interrupted)],
    ['wall time', fmtDuration(s.wallSeconds)],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  out.write(`\nsweep ${name}${aborted ? ' (interrupted: run it again to finish)' : ''}\n`);
  for (const [k, v] of rows) out.write(`  ${k.padEnd(w)}  ${v}\n`);
  for (const f of s.failed) out.write(`  failed ${f.key}: ${f.reason}\n`);
}
