/**
 * One run of a sweep: its aggregator and trainers as child processes, watched through the
 * metaserver (status = which round it is in) and their exits. A run ends completed, failed
 * (with the reason and its log tail recorded), or interrupted. Never by sleeping.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { minTrainersOf } from '../core/config.ts';
import { ResultsStore } from '../core/results/store.ts';
import { runKeyFields } from '../core/results/schema.ts';
import type { RunRecord } from '../core/results/types.ts';
import { connectMetaserver, type MetaClient } from '../metaserver/client.ts';
import type { StatusMessage } from '../core/wire/messages.ts';
import type { PlannedRun } from './grid.ts';
import { endRole, spawnRole, tail, type RoleProcess } from './processes.ts';

export type RunOutcome = { status: 'completed' } | { status: 'failed'; reason: string } | { status: 'interrupted' };

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
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(run.config, null, 2));
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

  // The observer joins first so it hears every status of this job.
  let observer: MetaClient;
  try {
    observer = await watchRun(o);
  } catch (e) {
    return { status: 'failed', reason: `cannot watch the run: ${(e as Error).message}` };
  }

  const aggregator = spawnRole('aggregator', ['aggregator', ...common, '--results', o.results, '--resume', ...(o.force ? ['--force'] : [])], env, join(dir, 'aggregator.log'));
  const trainers: RoleProcess[] = Array.from({ length: W }, (_, i) =>
    spawnRole(`trainer ${i}`, ['trainer', ...common, '--id', `${job}-t${i}`, '--shard', String(i)], env, join(dir, `trainer-${i}.log`)),
  );
  const all = [aggregator, ...trainers];
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
    trainers.forEach((t, i) =>
      t.exited.then(({ code, signal }) => {
        if (code === 0 || settled || !aggregator.running()) return; // exits we caused are not news
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
    if (code === 0) outcome = { status: 'completed' };
    else if (o.signal.aborted) outcome = { status: 'interrupted' };
    else {
      const errLine = tail(aggregator.logFile, 50).reverse().find((l) => l.startsWith('fedslice: error:') || l.startsWith('fedslice: internal error'));
      outcome = { status: 'failed', reason: errLine?.replace(/^fedslice: (internal )?error: /, '') ?? `aggregator exited with ${code ?? signal}` };
    }
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
  const store = new ResultsStore(o.results);
  // Only this attempt's own record counts: an older one of the same key is another run.
  const latest = store.latestForKey(o.run.key, (r) => r.startedAt >= attemptStart);
  if (latest?.status === 'completed') return { status: 'completed' };
  if (outcome.status === 'interrupted' && (!latest || latest.status !== 'started')) return outcome; // never started, or the aggregator said so itself
  const base: RunRecord = latest ?? {
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
