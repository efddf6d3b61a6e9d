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
import { cancelAndWait, forget, jobEnd, queueStates, sbatch } from './slurm.ts';
import { ResultsStore } from '../core/results-store.ts';

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

  let timedOut = false;
  let lastState = '';
  const deadline = o.timeoutS > 0 ? Date.now() + o.timeoutS * 1000 : Infinity;
  let wake = () => {};
  const onAbort = () => wake();
  o.signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (o.signal.aborted) break;
      if (Date.now() > deadline) {
        timedOut = true;
        break;
      }
      const state = (await queueStates([jobId]).catch(() => new Map<string, string>([[jobId, lastState || 'UNKNOWN']]))).get(jobId);
      if (!state) break;
      if (state !== lastState) o.onJobState(jobId, (lastState = state));
      await new Promise<void>((r) => {
        const t = setTimeout(r, o.pollMs ?? 1000);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  } finally {
    o.signal.removeEventListener('abort', onAbort);
  }

  let outcome: RunOutcome;
  if (o.signal.aborted || timedOut) {
    const gone = await cancelAndWait(jobId);
    if (!gone) o.onEvent(`slurm ${run.key}: job ${jobId} still listed by squeue after scancel`);
    outcome = timedOut ? { status: 'failed', reason: `timed out after ${o.timeoutS} s (--timeout); slurm job ${jobId} cancelled` } : { status: 'interrupted' };
  } else {
    forget(jobId);
    const end = await jobEnd(jobId);
    const store = new ResultsStore(o.results);
    const mine = [...store.latestRuns().values()].filter((r) => r.key === run.key && r.startedAt >= attemptStart).at(-1);
    if (mine?.status === 'completed') outcome = { status: 'completed' };
    else {
      const errLine = tail(logs[0].logFile, 50).reverse().find((l) => l.startsWith('fedslice: error:') || l.startsWith('fedslice: internal error'));
      const why = errLine ? `: ${errLine.replace(/^fedslice: (internal )?error: /, '')}` : '';
      outcome = { status: 'failed', reason: `slurm job ${jobId} ended ${end.state} with exit code ${end.exitCode}${why}` };
    }
  }
  observer.close();
  return recordEnd(o, outcome, logs, attemptStart);
}
