/**
 * One run of a sweep: its aggregator and trainers as child processes, watched through the
 * metaserver (status = which round it is in) and their exits. A run ends completed, failed
 * (with the reason and its log tail recorded), or interrupted. Never by sleeping.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { minTrainersOf } from '../core/config.ts';
import { ResultsStore, runKeyFields } from '../core/results/store.ts';
import type { RunRecord } from '../core/results/types.ts';
import { connectMetaserver, type MetaClient } from '../metaserver/client.ts';
import type { StatusMessage } from '../core/wire/messages.ts';
import type { PlannedRun } from './grid.ts';
import { endRole, spawnRole, tail, type RoleProcess } from './processes.ts';
import { STORAGE_EXIT_CODE, storageErrorOf, withStorageErrors } from '../core/results/storage-error.ts';

/**
 * How a run ended. `storeError`: the results store could not be written (a full disk, ...): the
 * run is resumable, and the sweep must not start new runs.
 */
export type RunOutcome = { status: 'completed' } | { status: 'failed'; reason: string; storeError?: string } | { status: 'interrupted'; storeError?: string };

export interface RunOneOptions {
  run: PlannedRun;
  metaserver: string;
  results: string;
  /** One token per run, the same for every attempt (the metaserver fixes a job's token at its first hello). */
  token: string;
  timeoutS: number; // 0 = none
  force: boolean;
  attempt: number;
  signal: AbortSignal;
  onStatus: (s: StatusMessage) => void;
  /** Trainers present in the job, as the metaserver reports joins and leaves. */
  onTrainers: (present: number) => void;
  onEvent: (line: string) => void;
}

/** How long a trainer's exit waits for the aggregator's own before it counts as a crash. */
const AGGREGATOR_EXIT_GRACE_MS = 3000;

export function logDir(results: string, key: string): string {
  return join(results, 'logs', key);
}

/** An observer in the run's job: hears the aggregator's status and trainers joining and leaving. */
export async function watchRun(o: RunOneOptions): Promise<MetaClient> {
  let observer: MetaClient | null = null;
  const countTrainers = () => observer && o.onTrainers(observer.peers().filter((p) => p.role === 'trainer').length);
  observer = await connectMetaserver({
    url: o.metaserver,
    job: o.run.key,
    role: 'observer',
    id: `runner-${process.pid}-${o.attempt}`,
    token: o.token,
    onStatus: o.onStatus,
    onPeerJoined: countTrainers,
    onPeerLeft: countTrainers,
  });
  return observer;
}

/** Writes the run's config where its roles read it; returns the file. */
export function writeRunConfig(results: string, run: PlannedRun): string {
  const dir = logDir(results, run.key);
  const configFile = join(dir, 'config.json');
  withStorageErrors(configFile, () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(configFile, JSON.stringify(run.config, null, 2));
  });
  return configFile;
}

export async function runOne(o: RunOneOptions): Promise<RunOutcome> {
  const { run } = o;
  const dir = logDir(o.results, run.key);
  const configFile = writeRunConfig(o.results, run);
  const job = run.key;
  const W = run.config.federation.worldSize;
  const env = { FEDSLICE_TOKEN: o.token };
  const attemptStart = new Date().toISOString();
  const common = ['--config', configFile, '--metaserver', o.metaserver, '--job', job];

  // The observer joins first so it hears every status of this job; the aggregator's last words
  // come through it too, even when its log is on a disk that is full.
  let observer: MetaClient;
  let failedStatus: string | null = null;
  try {
    observer = await watchRun({
      ...o,
      onStatus: (s) => {
        if (s.state === 'failed') failedStatus = s.message ?? 'failed';
        o.onStatus(s);
      },
    });
  } catch (e) {
    return { status: 'failed', reason: `cannot watch the run: ${(e as Error).message}` };
  }

  const all: RoleProcess[] = [];
  try {
    all.push(spawnRole('aggregator', ['aggregator', ...common, '--results', o.results, '--resume', ...(o.force ? ['--force'] : [])], env, join(dir, 'aggregator.log')));
    for (let i = 0; i < W; i++) all.push(spawnRole(`trainer ${i}`, ['trainer', ...common, '--id', `${job}-t${i}`, '--shard', String(i)], env, join(dir, `trainer-${i}.log`)));
  } catch (e) {
    await Promise.all(all.map((p) => endRole(p)));
    observer.close();
    throw e;
  }
  const [aggregator, ...trainers] = all;
  const minTrainers = minTrainersOf(run.config);

  let timer: NodeJS.Timeout | null = null;
  let onAbort = () => {};
  let settled = false;
  const verdict = await new Promise<RunOutcome | 'aggregator-exited'>((settle) => {
    const resolve = (v: RunOutcome | 'aggregator-exited') => {
      settled = true;
      settle(v);
    };
    let crashed = 0;
    aggregator.exited.then(() => resolve('aggregator-exited'));
    // Exits we caused are not news, nor are trainers leaving a run the aggregator ended: a trainer
    // told the run failed exits before the aggregator does, whose exit then says why (and whether
    // the store can be written). Its status may not reach us (a busy aggregator misses pings), so
    // a trainer's exit counts as a crash only if the aggregator is still running a moment later.
    const ended = () => settled || !aggregator.running() || failedStatus !== null;
    trainers.forEach((t, i) =>
      t.exited.then(async ({ code, signal }) => {
        if (code === 0 || ended()) return;
        await Promise.race([aggregator.exited, new Promise((r) => setTimeout(r, AGGREGATOR_EXIT_GRACE_MS).unref())]);
        if (ended()) return;
        crashed++;
        o.onEvent(`exit  ${run.key}: trainer ${i} exited with ${code ?? signal}`);
        if (W - crashed < minTrainers) {
          const last = tail(t.logFile, 1)[0] ?? '';
          resolve({ status: 'failed', reason: `trainer ${i} exited with ${code !== null ? `code ${code}` : signal}${last ? `: ${last}` : ''}` });
        }
      }),
    );
    if (o.timeoutS > 0) timer = setTimeout(() => resolve({ status: 'failed', reason: `timed out after ${o.timeoutS} s (--timeout)` }), o.timeoutS * 1000);
    onAbort = () => resolve({ status: 'interrupted' });
    if (o.signal.aborted) onAbort();
    o.signal.addEventListener('abort', onAbort, { once: true });
  });
  if (timer) clearTimeout(timer);
  o.signal.removeEventListener('abort', onAbort);

  let outcome: RunOutcome;
  if (verdict === 'aggregator-exited') {
    const { code, signal } = await aggregator.exited;
    // Trainers leave on their own once told the run is done; a short grace, then they are ended.
    await Promise.race([Promise.all(trainers.map((t) => t.exited)), new Promise((r) => setTimeout(r, 10_000).unref())]);
    const errLine = tail(aggregator.logFile, 50).reverse().find((l) => l.startsWith('fedslice: error:') || l.startsWith('fedslice: internal error'));
    const reason = errLine?.replace(/^fedslice: (internal )?error: /, '') ?? failedStatus ?? `aggregator exited with ${code ?? signal}`;
    if (code === 0) outcome = { status: 'completed' };
    else if (code === STORAGE_EXIT_CODE) {
      const storeError = failedStatus ?? errLine?.replace(/^fedslice: error: /, '') ?? `the aggregator could not write the results store at ${o.results}: free space or fix its permissions and rerun the same command to resume`;
      outcome = { status: 'failed', reason: storeError, storeError };
    } else if (o.signal.aborted) outcome = { status: 'interrupted' };
    else outcome = { status: 'failed', reason };
  } else {
    outcome = verdict;
  }
  await Promise.all(all.map((p) => endRole(p)));
  observer.close();
  return recordEnd(o, outcome, all, attemptStart);
}

/**
 * The aggregator records its own end when it can; this covers what it cannot: killed roles,
 * crashes before it registered, and the log tail a human needs to see why. The store has the
 * last word: a run the aggregator recorded as completed just before it was stopped is completed.
 */
export function recordEnd(o: RunOneOptions, outcome: RunOutcome, roles: Pick<RoleProcess, 'name' | 'logFile'>[], attemptStart: string): RunOutcome {
  if (outcome.status === 'completed') return outcome;
  try {
    return appendEnd(o, outcome, roles, attemptStart);
  } catch (e) {
    const se = storageErrorOf(e);
    if (!se) throw e;
    // The store cannot take the record: the run stays resumable from its checkpoint all the same.
    return { ...outcome, storeError: outcome.storeError ?? se.message };
  }
}

function appendEnd(o: RunOneOptions, outcome: Exclude<RunOutcome, { status: 'completed' }>, roles: Pick<RoleProcess, 'name' | 'logFile'>[], attemptStart: string): RunOutcome {
  const store = new ResultsStore(o.results);
  const ofKey = [...store.latestRuns().values()].filter((r) => r.key === o.run.key);
  // This attempt's own record; an older completed one of the same key is another run (--force).
  const latest = ofKey.filter((r) => r.startedAt >= attemptStart).at(-1);
  if (latest?.status === 'completed') return { status: 'completed' };
  if (outcome.status === 'interrupted' && (!latest || latest.status !== 'started')) return outcome; // never started, or the aggregator said so itself
  // An aggregator that could not even record its start was resuming the key's unfinished run:
  // record the end under that run's id, so the next attempt still resumes its checkpoint.
  const resumed = ofKey.filter((r) => r.status !== 'completed').at(-1);
  const base: RunRecord = latest ?? resumed ?? {
    kind: 'run',
    runId: `${o.run.key}-${Date.now().toString(36)}`,
    key: o.run.key,
    keyFields: runKeyFields(o.run.config),
    status: 'started',
    config: o.run.config,
    startedAt: new Date().toISOString(),
    environment: { backend: 'unknown', node: process.version, tfjs: 'unknown', fedslice: 'unknown', host: '', platform: process.platform },
  };
  store.appendRun({
    ...base,
    status: outcome.status,
    endedAt: new Date().toISOString(),
    error: outcome.status === 'failed' ? outcome.reason : 'interrupted by the sweep runner',
    logTail: roles.flatMap((r) => tail(r.logFile, 6).map((l) => `${r.name}: ${l}`)),
  });
  return outcome;
}
