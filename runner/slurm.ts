/**
 * The Slurm commands a sweep uses: sbatch to submit, squeue to watch, scontrol (then sacct) for
 * how a job ended, scancel to stop. Every job submitted is cancelled if the sweep process exits
 * while it is still queued or running, whatever way it exits.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { FedsliceError } from '../core/errors.ts';

const run = promisify(execFile);

export interface JobEnd {
  state: string; // COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, ... or UNKNOWN
  exitCode: string; // Slurm's "code:signal"
}

const submitted = new Set<string>();
let exitHookInstalled = false;
function cancelAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    if (submitted.size) spawnSync('scancel', [...submitted], { stdio: 'ignore', timeout: 10_000 });
  });
}

/** One clear error now rather than a failed run per job later. */
export function checkSlurm(): void {
  const r = spawnSync('sbatch', ['--version'], { encoding: 'utf8' });
  if (r.error) throw new FedsliceError('FEDSLICE_ERR_SLURM', '--executor slurm needs sbatch on PATH (run the sweep on a Slurm login node, or use --executor local)');
}

/** Submits a batch script; returns the job id or throws sbatch's own complaint as one line. */
export async function sbatch(args: string[], script: string): Promise<string> {
  cancelAllOnExit();
  try {
    const { stdout } = await run('sbatch', ['--parsable', ...args, script], { encoding: 'utf8' });
    const id = stdout.trim().split(';')[0]; // "id" or "id;cluster"
    if (!/^\d+$/.test(id)) throw new FedsliceError('FEDSLICE_ERR_SLURM', `sbatch printed no job id (got "${stdout.trim()}")`);
    submitted.add(id);
    return id;
  } catch (e) {
    if (e instanceof FedsliceError) throw e;
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new FedsliceError('FEDSLICE_ERR_SLURM', '--executor slurm needs sbatch on PATH');
    const lines = (err.stderr ?? '').split('\n').filter((l) => l.trim()).map((l) => l.replace(/^sbatch: error: /, ''));
    throw new FedsliceError('FEDSLICE_ERR_SLURM', `sbatch rejected the job: ${lines.join('; ') || err.message} (check --slurm-args)`);
  }
}

/** States of those jobs squeue still lists; a job missing from the map has left the queue. */
export async function queueStates(ids: string[]): Promise<Map<string, string>> {
  const states = new Map<string, string>();
  if (!ids.length) return states;
  try {
    const { stdout } = await run('squeue', ['-h', '-o', '%i %T', '-j', ids.join(',')], { encoding: 'utf8' });
    for (const line of stdout.split('\n')) {
      const [id, state] = line.trim().split(/\s+/);
      if (id && state) states.set(id, state);
    }
  } catch (e) {
    // squeue refuses ids it no longer knows ("Invalid job id specified"): those jobs are gone.
    if (!/Invalid job id/i.test((e as { stderr?: string }).stderr ?? '')) throw e;
    if (ids.length > 1) for (const id of ids) for (const [k, v] of await queueStates([id])) states.set(k, v);
  }
  return states;
}

/**
 * Watches jobs through one `squeue` call per interval for all of them, however many runs are
 * queued: `onState` gets the job's state at each poll, and undefined once it has left the queue.
 * Returns the function that stops watching.
 */
export function watchJob(id: string, onState: (state: string | undefined) => void, pollMs = 1000): () => void {
  watched.set(id, onState);
  if (!polling) schedulePoll(pollMs);
  return () => watched.delete(id);
}

const watched = new Map<string, (state: string | undefined) => void>();
let polling: NodeJS.Timeout | null = null;
function schedulePoll(pollMs: number): void {
  polling = setTimeout(async () => {
    const ids = [...watched.keys()];
    // A failed squeue (slurmctld busy or restarting) says nothing: the next poll asks again.
    const states = await queueStates(ids).catch(() => null);
    if (states) for (const id of ids) watched.get(id)?.(states.get(id));
    polling = null;
    if (watched.size) schedulePoll(pollMs);
  }, pollMs);
}

/**
 * How a job that left the queue ended: scontrol while slurmctld still remembers it (MinJobAge),
 * else sacct where accounting is set up, else UNKNOWN.
 */
export async function jobEnd(id: string): Promise<JobEnd> {
  try {
    const { stdout } = await run('scontrol', ['show', 'job', '-o', id], { encoding: 'utf8' });
    const state = /JobState=(\S+)/.exec(stdout)?.[1];
    const exitCode = /\bExitCode=(\S+)/.exec(stdout)?.[1];
    if (state) return { state, exitCode: exitCode ?? '?' };
  } catch {
    /* purged from slurmctld's memory: ask accounting */
  }
  try {
    const { stdout } = await run('sacct', ['-n', '-X', '-P', '-j', id, '-o', 'State,ExitCode'], { encoding: 'utf8' });
    const [state, exitCode] = stdout.trim().split('\n')[0]?.split('|') ?? [];
    if (state) return { state: state.split(' ')[0], exitCode: exitCode ?? '?' };
  } catch {
    /* no accounting storage */
  }
  return { state: 'UNKNOWN', exitCode: '?' };
}

export async function scancel(ids: string[]): Promise<void> {
  if (!ids.length) return;
  try {
    await run('scancel', ids, { encoding: 'utf8' });
  } catch {
    /* already gone */
  }
}

/** Cancels a job and waits (bounded) until squeue no longer lists it. */
export async function cancelAndWait(id: string, timeoutMs = 60_000, pollMs = 500): Promise<boolean> {
  await scancel([id]);
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!(await queueStates([id]).catch(() => new Map())).has(id)) {
      forget(id);
      return true;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return false;
}

/** A job that has ended needs no cancelling on exit. */
export function forget(id: string): void {
  submitted.delete(id);
}

/** Cancels every job this process submitted that has not ended yet. */
export async function cancelAll(): Promise<void> {
  const ids = [...submitted];
  await scancel(ids);
  for (const id of ids) forget(id);
}
