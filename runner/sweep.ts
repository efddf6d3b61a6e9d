/**
 * `fedslice runner sweep`: expand the grid, skip what is done, run the rest through an executor
 * (child processes here, Slurm jobs, ...) with one metaserver for the whole sweep, retry
 * failures, end every run on a signal, and summarise.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdirSync, appendFileSync } from 'node:fs';
import { FedsliceError } from '../core/errors.ts';
import { tornLineWarnings } from '../core/results/jsonl.ts';
import { STORAGE_EXIT_CODE, storageErrorOf, withStorageErrors } from '../core/results/storage-error.ts';
import { parseSweep, readJsonFile } from '../core/config.ts';
import { ResultsStore } from '../core/results/store.ts';
import { startMetaserver } from '../metaserver/server.ts';
import { DEFAULT_ADMISSION } from '../core/wire/admission.ts';
import { isWildcardHost, wsUrl } from '../core/wire/tls.ts';
import { runAttempt } from './attempt.ts';
import type { Attempt, Executor, RunHooks, RunOutcome } from './executor.ts';
import { describePoint, expandSweep, type PlannedRun } from './grid.ts';
import { tryLock } from './lock.ts';
import { etaSeconds, fmtDuration, plainProgress, ttyProgress, type Progress, type RunningView } from './progress.ts';
import { runPool } from './pool.ts';
import { logsDir, metaserverLog, runLayout } from './run-layout.ts';
import { describeBudget, type ThreadBudget } from './thread-budget.ts';

export interface SweepOptions {
  config: string;
  results: string;
  timeoutS: number;
  retries: number;
  force: boolean;
  dryRun: boolean;
  /** Where runs execute; it also decides how many go at once. */
  executor: Executor;
  /** Interface the sweep's metaserver binds (default 127.0.0.1); jobs get the hostname when it is 0.0.0.0. */
  metaserverHost?: string;
  /** Serve the dashboard of the results store on this port of 127.0.0.1 while the sweep runs (0: any free port). */
  dashboardPort?: number;
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
  /** Runs not started because the results store could not be written. */
  notStarted: number;
  wallSeconds: number;
}

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
  const summary: SweepSummary = { total: runs.length, completed: 0, failed: [], alreadyDone: runs.length - pending.length, elsewhere: 0, interrupted: 0, notStarted: 0, wallSeconds: 0 };

  if (o.dryRun) {
    out.write(`sweep ${sweep.name}: ${runs.length} runs, ${summary.alreadyDone} already completed in ${o.results}, ${pending.length} to run${o.force ? ' (--force)' : ''}\n`);
    printPlan(out, runs, store);
    return summary;
  }
  if (pending.length === 0) {
    out.write(`sweep ${sweep.name}: all ${runs.length} runs are already completed in ${o.results}; nothing to do (--force runs them again)\n`);
    return summary;
  }

  o.executor.check();
  o.executor.prepare(pending);
  const schedule = o.executor.schedule(pending);
  withStorageErrors(logsDir(o.results), () => mkdirSync(logsDir(o.results), { recursive: true }), 'write', o.results);
  const bindHost = o.metaserverHost ?? '127.0.0.1';
  // Every role of every running run connects from this machine (or a few nodes) at about the same
  // time: bound the connections waiting to say hello in total only, not per address.
  const admission = { maxPendingPerAddress: DEFAULT_ADMISSION.maxPending };
  const metaserver = await startMetaserver({ host: bindHost, port: 0, admission, log: bestEffortLog(metaserverLog(o.results)) });
  const dashboard = o.dashboardPort === undefined ? null : await startSweepDashboard(o.results, o.dashboardPort, metaserver.close);
  const progress: Progress = o.tty ? ttyProgress(out) : plainProgress(out);
  if (dashboard) progress.event(`dashboard: ${dashboard.url}`);
  const sweeper = new Sweeper(o, summary, progress, pending, jobsMetaserverUrl(metaserver.url, bindHost), schedule.threads);
  progress.event(`sweep ${sweep.name}: ${pending.length} runs to do (${summary.alreadyDone} already completed), ${schedule.describe}${schedule.threads ? `, ${describeBudget(schedule.threads)}` : ''}; logs in ${logsDir(o.results)}`);
  for (const [file, read] of [[store.runsPath, store.readRuns()], [store.roundsPath, store.readRounds()]] as const) {
    for (const line of tornLineWarnings(file, read.torn)) progress.event(`note  ${line}`);
  }

  const onAbort = () => progress.event(o.executor.stopping(sweeper.running.size));
  o.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await runPool(pending, { capacity: schedule.capacity, cost: schedule.cost, signal: o.signal }, (run) => sweeper.execute(run));
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    await o.executor.cancel();
    progress.close();
    await dashboard?.close();
    await metaserver.close();
  }
  summary.wallSeconds = (Date.now() - sweeper.started) / 1000;
  printSummary(out, sweep.name, summary, o.signal.aborted);
  if (sweeper.storeError !== null) throw new FedsliceError('FEDSLICE_ERR_STORE_UNWRITABLE', sweeper.storeError, STORAGE_EXIT_CODE);
  return summary;
}

/** The dashboard beside the sweep; the metaserver is closed when it cannot start. */
async function startSweepDashboard(results: string, port: number, closeMetaserver: () => Promise<void>): Promise<{ url: string; close(): Promise<void> }> {
  const { startDashboard } = await import('../dashboard/server.ts');
  try {
    return await startDashboard({ results, host: '127.0.0.1', port });
  } catch (e) {
    await closeMetaserver();
    throw e;
  }
}

/** The runs of a sweep under way: locks, attempts, the live view and the tally. */
class Sweeper {
  readonly running = new Map<string, RunningView>();
  readonly started = Date.now();
  /** Why the results store cannot be written, once a run found out: no run starts after that. */
  storeError: string | null = null;
  private readonly store: ResultsStore;
  /** One token per run, made when it is first needed: by a warm start or by its first attempt. */
  private readonly tokens = new Map<string, string>();
  /** Runs whose attempts began (in pool order): the next run to warm is the first pending one not among them. */
  private readonly begun = new Set<string>();

  constructor(
    private readonly o: SweepOptions,
    private readonly summary: SweepSummary,
    private readonly progress: Progress,
    private readonly queue: readonly PlannedRun[],
    private readonly metaserverUrl: string,
    private readonly threads?: ThreadBudget,
  ) {
    this.store = new ResultsStore(o.results);
  }

  async execute(run: PlannedRun): Promise<void> {
    if (this.storeError !== null) {
      this.summary.notStarted++;
      return;
    }
    try {
      await this.lockedAttempts(run);
    } catch (e) {
      // The sweep's own writes (the run's lock, config, logs) found the store unwritable.
      const se = storageErrorOf(e);
      if (!se) throw e;
      this.summary.notStarted++;
      this.stopStarting(se.naming(this.o.results).message);
    }
  }

  /** Running runs end on their own (they cannot write either, or they finish); queued ones are left for the next sweep. */
  private stopStarting(message: string): void {
    if (this.storeError !== null) return;
    this.storeError = message;
    const n = this.running.size;
    this.progress.event(`stop: ${message}; starting no more runs${n ? `, letting ${n} running run${n === 1 ? '' : 's'} end` : ''}`);
  }

  private async lockedAttempts(run: PlannedRun): Promise<void> {
    const lock = tryLock(this.o.results, run.key);
    if (!lock) return this.skip(run, 'another sweep is running it');
    try {
      if (this.completedElsewhere(run.key)) return this.skip(run, 'another sweep completed it');
      const t0 = Date.now();
      const outcome = await this.attempts(run, t0);
      if (outcome.status !== 'completed' && outcome.storeError) this.stopStarting(outcome.storeError);
      this.tally(run, outcome, (Date.now() - t0) / 1000);
    } finally {
      lock.release();
    }
  }

  /** Attempts until one does not fail, the retries are used up, or the sweep is stopped. */
  private async attempts(run: PlannedRun, t0: number): Promise<RunOutcome> {
    const token = this.tokenOf(run.key);
    this.begun.add(run.key);
    let outcome: RunOutcome = { status: 'interrupted' };
    for (let number = 1; number <= this.o.retries + 1 && !this.o.signal.aborted; number++) {
      const { worldSize, rounds } = run.config.federation;
      const view: RunningView = { key: run.key, label: describePoint(run.point), round: 0, rounds, state: 'starting', trainers: 0, worldSize, startedAt: t0 };
      this.running.set(run.key, view);
      this.progress.event(`start ${run.key}${number > 1 ? ` (attempt ${number})` : ''}`);
      this.refresh();
      const attempt: Attempt = {
        run,
        layout: runLayout(this.o.results, run.key),
        metaserver: this.metaserverUrl,
        token,
        timeoutS: this.o.timeoutS,
        force: this.o.force,
        number,
        startedAt: new Date().toISOString(),
        signal: this.o.signal,
        hooks: this.hooks(view),
        ...(this.threads ? { threads: this.threads } : {}),
      };
      try {
        outcome = await runAttempt(this.o.executor, attempt);
      } catch (e) {
        const se = storageErrorOf(e)?.naming(this.o.results);
        if (!se) throw e;
        outcome = { status: 'failed', reason: se.message, storeError: se.message };
      }
      if (outcome.status !== 'failed') break;
      const retry = number <= this.o.retries && !outcome.storeError; // a full disk stays full: the next sweep resumes it
      this.progress.event(`fail  ${run.key}: ${outcome.reason}${retry ? '; retrying' : ''}`);
      if (!retry) break;
    }
    this.running.delete(run.key);
    return outcome;
  }

  private tokenOf(key: string): string {
    let token = this.tokens.get(key);
    if (token === undefined) this.tokens.set(key, (token = randomBytes(16).toString('hex')));
    return token;
  }

  /** Has the executor start the next run's roles ahead of it (held until its attempt), if it can. */
  private warmNext(): void {
    const next = this.queue.find((r) => !this.begun.has(r.key));
    if (!next || !this.o.executor.warm || this.storeError !== null || this.o.signal.aborted) return;
    const warm = this.o.executor.warm({
      run: next,
      layout: runLayout(this.o.results, next.key),
      metaserver: this.metaserverUrl,
      token: this.tokenOf(next.key),
      force: this.o.force,
      ...(this.threads ? { threads: this.threads } : {}),
    });
    void warm.then((started) => {
      if (started && !this.o.tty) this.progress.event(`warm  ${next.key}: its roles start ahead, held until the run starts`);
    });
  }

  private hooks(view: RunningView): RunHooks {
    const plain = !this.o.tty;
    let queuedAs: string | null = null;
    return {
      onStatus: (s) => {
        // On a TTY the live view shows readiness and rounds; plain output gets a line for each.
        if (plain && s.state === 'waiting' && view.state === 'starting') this.progress.event(`ready ${view.key}: aggregator waiting for ${view.worldSize} trainer${view.worldSize === 1 ? '' : 's'}`);
        if (plain && s.state === 'training') this.progress.event(`round ${view.key}: ${s.round}/${s.rounds} recorded`);
        // round r's record comes while round r+1 trains: from record R-1 on, the last round is training
        if (s.state === 'training' && s.round >= s.rounds - 1) this.warmNext();
        view.round = s.round;
        view.state = s.state;
        this.refresh();
      },
      onTrainers: (n) => {
        view.trainers = n;
        this.refresh();
      },
      onEvent: (line) => this.progress.event(line),
      onDetail: (line) => {
        if (plain) this.progress.event(line);
      },
      onQueued: (state) => {
        if (state !== null) view.state = queuedAs = state;
        else if (view.state === queuedAs) view.state = 'starting';
        this.refresh();
      },
    };
  }

  private tally(run: PlannedRun, outcome: RunOutcome, seconds: number): void {
    if (outcome.status === 'completed') {
      this.summary.completed++;
      this.progress.event(`done  ${run.key} in ${fmtDuration(seconds)}`);
    } else if (outcome.status === 'failed') {
      this.summary.failed.push({ key: run.key, reason: outcome.reason });
    } else {
      this.summary.interrupted++;
      this.progress.event(`stop  ${run.key}: interrupted`);
    }
    this.refresh();
  }

  private skip(run: PlannedRun, why: string): void {
    this.summary.elsewhere++;
    this.progress.event(`skip  ${run.key}: ${why}`);
  }

  /** Another sweep on the same results may have finished this key since the plan was made. */
  private completedElsewhere(key: string): boolean {
    const since = new Date(this.started).toISOString();
    return this.store.latestForKey(key, (r) => r.status === 'completed' && (!this.o.force || (r.endedAt ?? '') >= since)) !== undefined;
  }

  private refresh(): void {
    const s = this.summary;
    const finished = s.completed + s.failed.length;
    const eta = etaSeconds(this.queue.length - finished - s.elsewhere, finished, (Date.now() - this.started) / 1000);
    this.progress.update([...this.running.values()], { done: s.completed, failed: s.failed.length, skipped: s.elsewhere, total: this.queue.length }, eta);
  }
}

/** --dry-run: every run of the sweep, whether it is done, and its grid point and key. */
function printPlan(out: NodeJS.WritableStream, runs: PlannedRun[], store: ResultsStore): void {
  const done = store.completedKeys();
  const state = (r: PlannedRun) => {
    if (done.has(r.key)) return 'done';
    const last = store.latestForKey(r.key);
    return last ? `${last.status} before` : 'pending';
  };
  const rows = runs.map((r) => [String(r.index + 1), state(r), describePoint(r.point), r.key]);
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((row) => row[c].length), ['#', 'status', 'grid point'][c].length));
  out.write(['#', 'status', 'grid point'].map((h, c) => h.padEnd(widths[c])).join('  ') + '  key\n');
  for (const row of rows) out.write(row.slice(0, 3).map((v, c) => v.padEnd(widths[c])).join('  ') + `  ${row[3]}\n`);
}

function printSummary(out: NodeJS.WritableStream, name: string, s: SweepSummary, aborted: boolean): void {
  const rows: [string, string][] = [
    ['runs in the sweep', String(s.total)],
    ['completed now', String(s.completed)],
    ['failed', String(s.failed.length)],
    ['skipped: already completed', String(s.alreadyDone)],
    ['skipped: run by another sweep', String(s.elsewhere)],
    ['interrupted', String(s.interrupted)],
    ...(s.notStarted ? [['not started: store unwritable', String(s.notStarted)] as [string, string]] : []),
    ['wall time', fmtDuration(s.wallSeconds)],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  out.write(`\nsweep ${name}${aborted ? ' (interrupted: run it again to finish)' : ''}\n`);
  for (const [k, v] of rows) out.write(`  ${k.padEnd(w)}  ${v}\n`);
  for (const f of s.failed) out.write(`  failed ${f.key}: ${f.reason}\n`);
}

/** A log sink that drops its line when the disk is full: the metaserver's log must not stop the sweep. */
function bestEffortLog(file: string): (line: string) => void {
  return (line) => {
    try {
      appendFileSync(file, `${line}\n`);
    } catch {
      /* the runs' records say what matters; this log is for debugging */
    }
  };
}
