// The rules of one attempt at a run, without processes: which end comes first (fake timers, ms),
// which run record is this attempt's, why it failed (the aggregator's record before its log),
// what the runner records when the aggregator could not, where its files go, how its roles are
// started, and how many runs each executor lets go at once.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseSweep } from '../core/config.ts';
import { ResultsStore } from '../core/results/store.ts';
import { runKeyFields } from '../core/results/schema.ts';
import type { RunRecord, RunStatus } from '../core/results/types.ts';
import { firstEnd } from '../runner/attempt-end.ts';
import { attemptRecord, failureReason, recordEnd } from '../runner/attempt-record.ts';
import type { Attempt } from '../runner/executor.ts';
import { expandSweep } from '../runner/grid.ts';
import { launchOf, trainerSlot } from '../runner/launch.ts';
import { belowQuorum } from '../runner/local-executor.ts';
import { roleLogs, runLayout, trainerLogIn } from '../runner/run-layout.ts';
import { slurmSchedule } from '../runner/slurm-executor.ts';
import { tempDir } from './helpers/roles.ts';

const [run, otherRun] = expandSweep(parseSweep({ name: 't', base: { model: { width: 0.125, numClasses: 10 } }, grid: { seed: [1, 2] } }));

function record(status: RunStatus, startedAt: string, extra: Partial<RunRecord> = {}, r = run): RunRecord {
  return { kind: 'run', runId: `${r.key}-${startedAt}`, key: r.key, keyFields: runKeyFields(r.config), status, config: r.config, startedAt, environment: { backend: 'cpu', node: '', tfjs: '', fedslice: '', host: '', platform: '' }, ...extra };
}

const T0 = '2026-01-01T00:00:00.000Z';
const T1 = '2026-01-01T01:00:00.000Z';
const T2 = '2026-01-01T02:00:00.000Z';

function attempt(results: string, startedAt = T1): Attempt {
  const hooks = { onStatus: () => {}, onTrainers: () => {}, onEvent: () => {}, onDetail: () => {}, onQueued: () => {} };
  return { run, layout: runLayout(results, run.key), metaserver: 'ws://127.0.0.1:1', token: 't', timeoutS: 0, force: false, number: 1, startedAt, signal: new AbortController().signal, hooks };
}

describe('firstEnd', () => {
  afterEach(() => vi.useRealTimers());

  it('ends at the timeout, and stops watching', async () => {
    vi.useFakeTimers();
    const unwatch = vi.fn();
    const end = firstEnd({ signal: new AbortController().signal, timeoutS: 2 }, () => unwatch);
    await vi.advanceTimersByTimeAsync(1999);
    expect(unwatch).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(await end).toEqual({ by: 'timeout' });
    expect(unwatch).toHaveBeenCalledOnce();
  });

  it('ends on what the watch reports, clearing the timer; later reports and aborts change nothing', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    let report: (v: string) => void = () => {};
    const end = firstEnd<string>({ signal: ac.signal, timeoutS: 60 }, (r) => {
      report = r;
      return () => {};
    });
    report('left');
    report('again');
    ac.abort();
    expect(await end).toEqual({ by: 'event', value: 'left' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends on abort, also when the sweep was stopped before the attempt began', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    const end = firstEnd({ signal: ac.signal, timeoutS: 60 }, () => () => {});
    ac.abort();
    expect(await end).toEqual({ by: 'abort' });
    expect(vi.getTimerCount()).toBe(0);
    expect(await firstEnd({ signal: ac.signal, timeoutS: 0 }, () => () => {})).toEqual({ by: 'abort' });
  });

  it('stops watching even when the watch reports before it returns', async () => {
    const unwatch = vi.fn();
    const end = firstEnd<number>({ signal: new AbortController().signal, timeoutS: 0 }, (report) => {
      report(1);
      return unwatch;
    });
    expect(await end).toEqual({ by: 'event', value: 1 });
    expect(unwatch).toHaveBeenCalledOnce();
  });
});

describe("an attempt's record and failure reason", () => {
  it("is the key's latest record if it started during this attempt, never an older run or another key", () => {
    const results = tempDir('fedslice-attempt-');
    const store = new ResultsStore(results);
    store.appendRun(record('failed', T0, { error: 'an older attempt' }));
    expect(attemptRecord(attempt(results))).toBeUndefined();
    store.appendRun(record('started', T2, {}, otherRun));
    expect(attemptRecord(attempt(results))).toBeUndefined();
    store.appendRun(record('started', T2));
    store.appendRun(record('failed', T2, { error: 'mine' }));
    expect(attemptRecord(attempt(results))).toMatchObject({ status: 'failed', error: 'mine' });
  });

  it("takes the aggregator's recorded error over its log, and the log's last error line when there is no record", () => {
    const log = ['aggregator: waiting for 2 trainers', 'fedslice: error: first', 'fedslice: error: dataset.dir: /x does not exist', 'bye'];
    expect(failureReason(record('failed', T1, { error: 'only 1 of 2 trainers joined' }), log)).toBe('only 1 of 2 trainers joined');
    expect(failureReason(undefined, log)).toBe('dataset.dir: /x does not exist');
    expect(failureReason(record('started', T1), log)).toBe('dataset.dir: /x does not exist');
    expect(failureReason(undefined, ['fedslice: internal error: TypeError: x is undefined', '    at f (a.ts:1)'])).toBe('TypeError: x is undefined');
    expect(failureReason(record('failed', T1), ['no error here'])).toBeNull();
    expect(failureReason(undefined, [])).toBeNull();
  });
});

describe('recordEnd', () => {
  const runsOf = (results: string) => new ResultsStore(results).readRuns().records;

  it("records a failure the aggregator could not, with the reason and every role's log tail", () => {
    const results = tempDir('fedslice-end-');
    const a = attempt(results);
    mkdirSync(a.layout.dir, { recursive: true });
    writeFileSync(a.layout.aggregatorLog, 'agg line\n');
    writeFileSync(a.layout.trainerLog(0), 'trainer line\n');
    expect(recordEnd(a, { status: 'failed', reason: 'trainer 0 exited with SIGKILL' }, roleLogs(a.layout, 1))).toEqual({ status: 'failed', reason: 'trainer 0 exited with SIGKILL' });
    expect(runsOf(results)).toEqual([expect.objectContaining({ key: run.key, status: 'failed', error: 'trainer 0 exited with SIGKILL', logTail: ['aggregator: agg line', 'trainer 0: trainer line'] })]);
  });

  it("believes the store: the attempt's completed record makes it completed; an interruption before any record writes nothing", () => {
    const results = tempDir('fedslice-end-');
    expect(recordEnd(attempt(results), { status: 'interrupted' }, [])).toEqual({ status: 'interrupted' });
    expect(runsOf(results)).toEqual([]);
    new ResultsStore(results).appendRun(record('completed', T2));
    expect(recordEnd(attempt(results), { status: 'failed', reason: 'timed out' }, [])).toEqual({ status: 'completed' });
    expect(runsOf(results)).toHaveLength(1);
  });

  it('ends the attempt\'s own "started" record as interrupted', () => {
    const results = tempDir('fedslice-end-');
    new ResultsStore(results).appendRun(record('started', T2));
    expect(recordEnd(attempt(results), { status: 'interrupted' }, [])).toEqual({ status: 'interrupted' });
    expect(runsOf(results).at(-1)).toMatchObject({ runId: `${run.key}-${T2}`, status: 'interrupted', error: 'interrupted by the sweep runner' });
  });
});

describe('run layout and launch', () => {
  it('names every file of a run under one absolute folder', () => {
    const l = runLayout('rel/results', 'k');
    expect(l.dir).toBe(join(process.cwd(), 'rel/results/logs/k'));
    expect([l.configFile, l.aggregatorLog, l.trainerLog(3), l.slurmLog].map((p) => p.slice(l.dir.length + 1))).toEqual(['config.json', 'aggregator.log', 'trainer-3.log', 'slurm.log']);
    expect([l.slurmScript, l.tokenFile]).toEqual([join(process.cwd(), 'rel/results/slurm/k.sh'), join(process.cwd(), 'rel/results/slurm/k.token')]);
    expect(trainerLogIn(l.dir, '%t')).toBe(join(l.dir, 'trainer-%t.log'));
    expect(roleLogs(l, 2).map((r) => r.name)).toEqual(['aggregator', 'trainer 0', 'trainer 1']);
  });

  it('gives the token in the environment or as a file, never both, and the same arguments otherwise', () => {
    const o = { run, configFile: '/c.json', results: '/r', metaserver: 'ws://h:1', force: true };
    const byEnv = launchOf({ ...o, token: { value: 'secret' } });
    const byFile = launchOf({ ...o, token: { file: '/t' } });
    expect(byEnv.env).toEqual({ FEDSLICE_TOKEN: 'secret' });
    expect(byFile.env).toEqual({});
    expect(byEnv.aggregator).toEqual(['aggregator', '--config', '/c.json', '--metaserver', 'ws://h:1', '--job', run.key, '--results', '/r', '--resume', '--force']);
    expect(byFile.trainer).toEqual(['trainer', '--config', '/c.json', '--metaserver', 'ws://h:1', '--job', run.key, '--token-file', '/t']);
    expect(JSON.stringify(byEnv)).not.toContain('--token-file');
    expect(trainerSlot(run.key, 2)).toEqual(['--id', `${run.key}-t2`, '--shard', '2']);
  });

  it('tells each role its threads when given a budget, and nothing otherwise', () => {
    const o = { run, configFile: '/c.json', results: '/r', metaserver: 'ws://h:1', force: false, token: { value: 's' } };
    expect(launchOf(o).roleEnv).toEqual({ aggregator: {}, trainer: {} });
    const threads = { trainer: 3, aggregator: 2, aggregatorNice: 0, cores: 8, trainersAtOnce: 2, runsAtOnce: 1 };
    expect(launchOf({ ...o, threads }).roleEnv).toEqual({ aggregator: { FEDSLICE_WASM_THREADS: '2' }, trainer: { FEDSLICE_WASM_THREADS: '3' } });
    // an aggregator on a core its trainers use yields to them
    const borrowed = { ...threads, trainer: 4, aggregator: 1, aggregatorNice: 10 };
    expect(launchOf({ ...o, threads: borrowed }).roleEnv).toEqual({ aggregator: { FEDSLICE_WASM_THREADS: '1', FEDSLICE_AGGREGATOR_NICE: '10' }, trainer: { FEDSLICE_WASM_THREADS: '4' } });
  });
});

describe('executor rules', () => {
  it('Slurm submits every pending run unless --parallel caps the jobs in the queue', () => {
    expect(slurmSchedule(undefined, 7)).toMatchObject({ capacity: 7, describe: 'one Slurm job per run, all submitted at once' });
    expect(slurmSchedule(undefined, 7).cost(run)).toBe(1);
    expect(slurmSchedule(2, 7)).toMatchObject({ capacity: 2, describe: '2 Slurm jobs at a time' });
  });

  it('a local run fails once too few trainers are left for its quorum', () => {
    expect(belowQuorum(4, 1, 3)).toBe(false);
    expect(belowQuorum(4, 2, 3)).toBe(true);
    expect(belowQuorum(1, 1, 1)).toBe(true);
  });
});
