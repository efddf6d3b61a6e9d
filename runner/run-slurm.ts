/**
 * One run of a sweep as one Slurm job: its batch script and token file go to <results>/slurm/,
 * its logs to <results>/logs/<key>/ as with the local executor. Progress comes from the
 * aggregator's status through the metaserver; the end from squeue, then scontrol or sacct for
 * Slurm's state and exit code, and the results store for whether the run completed.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MetaClient } from '../metaserver/client.ts';
import { FEDSLICE_BIN, tail } from './processes.ts';
import { logDir, recordEnd, watchRun, writeRunConfig, type RunOneOptions, type RunOutcome } from './run-one.ts';
import { batchScript, sbatchArgs } from './slurm-script.ts';
import { cancelAndWait, forget, jobEnd, sbatch, watchJob } from './slurm.ts';
import { ResultsStore } from '../core/results/store.ts';

export interface SlurmRunOptions extends RunOneOptions {
  slurmArgs: string[];
  aggregatorHost: 'loopback' | 'hostname';
  pollMs?: number;
  /** Slurm's view of the job: PENDING, RUNNING, ... */
  onJobState: (jobId: string, state: string) => void;
}

export async function runSlurm(o: SlurmRunOptions): Promise<RunOutcome> {
  const { run } = o;
  // Jobs may start in another folder on another node: every path they get is absolute.
  const results = resolve(o.results);
  const dir = logDir(results, run.key);
  const configFile = writeRunConfig(results, run);
  const slurmDir = join(results, 'slurm');
  mkdirSync(slurmDir, { recursive: true });
  const tokenFile = join(slurmDir, `${run.key}.token`);
  writeFileSync(tokenFile, `${o.token}\n`, { mode: 0o600 });
  chmodSync(tokenFile, 0o600);
  const script = join(slurmDir, `${run.key}.sh`);
  writeFileSync(
    script,
    batchScript({ run, node: process.execPath, bin: FEDSLICE_BIN, configFile, results, logDir: dir, metaserver: o.metaserver, tokenFile, aggregatorHost: o.aggregatorHost, force: o.force }),
    { mode: 0o700 },
  );
  const attemptStart = new Date().toISOString();
  const logs = [
    { name: 'aggregator', logFile: join(dir, 'aggregator.log') },
    ...Array.from({ length: run.config.federation.worldSize }, (_, i) => ({ name: `trainer ${i}`, logFile: join(dir, `trainer-${i}.log`) })),
    { name: 'slurm', logFile: join(dir, 'slurm.log') },
  ];

  let observer: MetaClient;
  try {
    observer = await watchRun(o);
  } catch (e) {
    return { status: 'failed', reason: `cannot watch the run: ${(e as Error).message}` };
  }
  let jobId: string;
  try {
    jobId = await sbatch(sbatchArgs(run, join(dir, 'slurm.log'), o.slurmArgs), script);
  } catch (e) {
    observer.close();
    return recordEnd(o, { status: 'failed', reason: (e as Error).message }, logs, attemptStart);
  }
  o.onEvent(`slurm ${run.key}: job ${jobId}`);

  // Ends when the job leaves the queue, the sweep is stopped, or --timeout passes.
  const why = await new Promise<'left' | 'aborted' | 'timeout'>((resolve) => {
    let lastState = '';
    const done = (w: 'left' | 'aborted' | 'timeout') => {
      unwatch();
      if (timer) clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort);
      resolve(w);
    };
    const unwatch = watchJob(
      jobId,
      (state) => {
        if (!state) return done('left');
        if (state !== lastState) o.onJobState(jobId, (lastState = state));
      },
      o.pollMs,
    );
    const timer = o.timeoutS > 0 ? setTimeout(() => done('timeout'), o.timeoutS * 1000) : null;
    const onAbort = () => done('aborted');
    if (o.signal.aborted) onAbort();
    else o.signal.addEventListener('abort', onAbort, { once: true });
  });
  const timedOut = why === 'timeout';

  let outcome: RunOutcome;
  if (why !== 'left') {
    const gone = await cancelAndWait(jobId);
    if (!gone) o.onEvent(`slurm ${run.key}: job ${jobId} still listed by squeue after scancel`);
    outcome = timedOut ? { status: 'failed', reason: `timed out after ${o.timeoutS} s (--timeout); slurm job ${jobId} cancelled` } : { status: 'interrupted' };
  } else {
    forget(jobId);
    const end = await jobEnd(jobId);
    const store = new ResultsStore(results);
    const mine = store.latestForKey(run.key, (r) => r.startedAt >= attemptStart);
    if (mine?.status === 'completed') outcome = { status: 'completed' };
    else {
      const errLine = tail(logs[0].logFile, 50).reverse().find((l) => l.startsWith('fedslice: error:') || l.startsWith('fedslice: internal error'));
      const detail = errLine ? `: ${errLine.replace(/^fedslice: (internal )?error: /, '')}` : '';
      outcome = { status: 'failed', reason: `slurm job ${jobId} ended ${end.state} with exit code ${end.exitCode}${detail}` };
    }
  }
  observer.close();
  return recordEnd(o, outcome, logs, attemptStart);
}
