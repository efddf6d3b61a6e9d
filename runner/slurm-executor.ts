/**
 * Runs as Slurm jobs, one per run: its batch script and token file go to <results>/slurm/, its
 * logs to <results>/logs/<key>/ as with child processes. Progress comes from the aggregator's
 * status through the metaserver; the end from squeue, then scontrol or sacct for Slurm's state
 * and exit code, and the results store for whether the run completed.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { attemptFailure, attemptRecord } from './attempt-record.ts';
import { firstEnd, timedOut } from './attempt-end.ts';
import type { Attempt, Executor, RunOutcome, Schedule } from './executor.ts';
import type { PlannedRun } from './grid.ts';
import { FEDSLICE_BIN } from './processes.ts';
import { STORAGE_EXIT_CODE } from '../core/results/storage-error.ts';
import { roleLogs, type NamedLog } from './run-layout.ts';
import { batchScript, sbatchArgs } from './slurm-script.ts';
import { cancelAll, cancelAndWait, checkSlurm, forget, jobEnd, sbatch, watchJob } from './slurm.ts';

export const isLoopback = (host: string): boolean => host === 'localhost' || host.startsWith('127.') || host === '::1';

/** On Slurm the queue decides what runs when: submit every run unless --parallel caps it. */
export function slurmSchedule(parallel: number | undefined, pending: number): Schedule {
  if (parallel !== undefined) return { capacity: parallel, cost: () => 1, describe: `${parallel} Slurm jobs at a time` };
  return { capacity: Math.max(1, pending), cost: () => 1, describe: 'one Slurm job per run, all submitted at once' };
}

export interface SlurmExecutorOptions {
  parallel?: number;
  /** Extra sbatch options for every job. */
  slurmArgs: string[];
  /** The interface the sweep's metaserver binds: a loopback one means a one-node cluster. */
  metaserverHost: string;
}

export class SlurmExecutor implements Executor {
  constructor(private readonly o: SlurmExecutorOptions) {}

  check(): void {
    checkSlurm();
  }

  /** Nothing here: the roles run on cluster nodes, whose data folders (often node-local) this machine may not see; each role makes or checks its own. */
  prepare(): void {}

  schedule(pending: readonly PlannedRun[]): Schedule {
    return slurmSchedule(this.o.parallel, pending.length);
  }

  logs(a: Attempt): NamedLog[] {
    return [...roleLogs(a.layout, a.run.config.federation.worldSize), { name: 'slurm', logFile: a.layout.slurmLog }];
  }

  stopping(running: number): string {
    return `stop: cancelling ${running} Slurm jobs (scancel; they resume next time); Ctrl-C again to exit at once (the jobs are still cancelled)`;
  }

  cancel(): Promise<void> {
    return cancelAll();
  }

  async run(a: Attempt): Promise<RunOutcome> {
    const { key } = a.run;
    let jobId: string;
    try {
      jobId = await sbatch(sbatchArgs(a.run, a.layout.slurmLog, this.o.slurmArgs), this.writeScript(a));
    } catch (e) {
      return { status: 'failed', reason: (e as Error).message };
    }
    a.hooks.onEvent(`slurm ${key}: job ${jobId}`);
    let lastState = '';
    const end = await firstEnd<'left'>(a, (report) =>
      watchJob(jobId, (state) => {
        if (!state) return report('left');
        if (state === lastState) return;
        lastState = state;
        a.hooks.onDetail(`slurm ${key}: job ${jobId} ${state}`);
        a.hooks.onQueued(state === 'PENDING' ? 'queued in slurm' : null);
      }),
    );
    if (end.by !== 'event') {
      if (!(await cancelAndWait(jobId))) a.hooks.onEvent(`slurm ${key}: job ${jobId} still listed by squeue after scancel`);
      return end.by === 'timeout' ? { status: 'failed', reason: `${timedOut(a.timeoutS)}; slurm job ${jobId} cancelled` } : { status: 'interrupted' };
    }
    forget(jobId);
    const { state, exitCode } = await jobEnd(jobId);
    if (attemptRecord(a)?.status === 'completed') return { status: 'completed' };
    const reason = attemptFailure(a);
    const failed = `slurm job ${jobId} ended ${state} with exit code ${exitCode}${reason ? `: ${reason}` : ''}`;
    // Slurm's exit code is "code:signal" of the job's script, which exits as its aggregator did.
    const storeError = exitCode.split(':')[0] === String(STORAGE_EXIT_CODE) ? (reason ?? failed) : undefined;
    return { status: 'failed', reason: failed, ...(storeError ? { storeError } : {}) };
  }

  /** The job's token file (readable by its owner only) and batch script; returns the script. */
  private writeScript(a: Attempt): string {
    const { layout } = a;
    mkdirSync(dirname(layout.slurmScript), { recursive: true });
    writeFileSync(layout.tokenFile, `${a.token}\n`, { mode: 0o600 });
    chmodSync(layout.tokenFile, 0o600);
    const aggregatorHost = isLoopback(this.o.metaserverHost) ? 'loopback' : 'hostname';
    const script = batchScript({
      run: a.run,
      node: process.execPath,
      bin: FEDSLICE_BIN,
      configFile: layout.configFile,
      results: layout.results,
      logDir: layout.dir,
      metaserver: a.metaserver,
      tokenFile: layout.tokenFile,
      aggregatorHost,
      force: a.force,
    });
    writeFileSync(layout.slurmScript, script, { mode: 0o700 });
    return layout.slurmScript;
  }
}
