// Asynchronous federation end to end: a metaserver, an aggregator and three trainers as separate
// processes over real sockets, one of them a simulated straggler.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/results/types.ts';
import { jsonl, startRole, stopAll, type Role } from './helpers/roles.ts';
import { startTestBed, writeConfig, type TestConfigOptions } from './helpers/experiment.ts';
import { runJob as runJobOf } from './helpers/job.ts';

let dir: string;
let dataDir: string;
let metaUrl: string;
let metaserver: Role;

beforeAll(async () => {
  ({ dir, dataDir, metaserver, metaUrl } = await startTestBed('fedslice-async-'));
});
afterAll(() => stopAll());

const runJob = (name: string, o: Omit<TestConfigOptions, 'dataDir' | 'name'>) => runJobOf({ dir, dataDir, metaUrl }, name, o, true);

describe('async federation over real processes', () => {
  it('3 trainers, one 4x slower: every update applied once, the straggler staler and weighted less', async () => {
    const rounds = 4;
    const r = await runJob('async', {
      worldSize: 3,
      mode: 'async',
      rounds,
      steps: 3,
      learningRate: 1e-3,
      async: { mixing: 0.8, staleness: { fn: 'polynomial', a: 1 }, evalEvery: 3 },
      stragglers: [{ slot: 2, slowdown: 4 }],
    });
    expect(r.codes).toEqual([0, 0, 0, 0]);
    const budget = rounds * 3;
    // one evaluation per 3 updates, the model version advancing once per applied update
    expect(r.rounds.map((x) => x.round)).toEqual([0, 1, 2, 3, 4]);
    expect(r.rounds.map((x) => x.version)).toEqual([0, 3, 6, 9, 12]);
    expect(r.rounds.map((x) => x.updatesApplied)).toEqual([0, 3, 6, 9, 12]);
    for (const x of r.rounds.slice(1)) {
      expect(x.mode).toBe('async');
      expect(x.staleness).toBeGreaterThanOrEqual(0);
      expect(x.maxStaleness).toBeGreaterThanOrEqual(x.staleness!);
      expect(x.elapsedSeconds).toBeGreaterThan(0);
      expect(x.samplesSeen).toBeGreaterThan(0);
    }
    const elapsed = r.rounds.map((x) => x.elapsedSeconds!);
    expect([...elapsed].sort((a, b) => a - b)).toEqual(elapsed);

    const end = r.runs.at(-1)!;
    expect(end.status).toBe('completed');
    const s = end.summary!;
    // counted: nothing applied twice, nothing lost
    expect(s.updatesApplied).toBe(budget);
    expect(s.updatesReceived).toBe(budget);
    expect(s.updatesRefused).toBe(0);
    expect(s.finalVersion).toBe(budget);
    expect(s['updates.slot0'] + s['updates.slot1'] + s['updates.slot2']).toBe(budget);
    // the straggler finished fewer tasks, each one staler and so weighted less
    expect(s['updates.slot2']).toBeGreaterThanOrEqual(1);
    expect(s['updates.slot2']).toBeLessThan(s['updates.slot0']);
    for (const fast of [0, 1]) {
      expect(s[`meanStaleness.slot2`]).toBeGreaterThan(s[`meanStaleness.slot${fast}`]);
      expect(s[`meanWeight.slot2`]).toBeLessThan(s[`meanWeight.slot${fast}`]);
    }
    expect(s.updatesPerSecond).toBeGreaterThan(0);
    // per-task training time over trainers: the straggler's tasks are the slowest
    expect(s.taskSecondsMax).toBeGreaterThan(2 * s.taskSecondsMin!);
    expect(r.agg.output()).toMatch(/async: \d+ updates to apply \(mixing 0\.8, staleness polynomial, buffer 1, evaluation every 3\)/);
  });

  it('a Ctrl-C while waiting for updates stops the aggregator at once, recording the run as interrupted', async () => {
    // roundTimeoutS far beyond the test's limit: an aggregator still holding its wait timer would not exit in time
    const cfg = writeConfig(dir, 'async-stop.json', { dataDir, name: 'async-stop', worldSize: 1, mode: 'async', rounds: 50, steps: 200, roundTimeoutS: 3600 });
    const results = join(dir, 'results-async-stop');
    const env = { FEDSLICE_TOKEN: 'token-async-stop' };
    const agg = startRole('aggregator', ['aggregator', '--config', cfg, '--metaserver', metaUrl, '--results', results], env);
    const trainer = startRole('trainer', ['trainer', '--config', cfg, '--metaserver', metaUrl, '--id', 'async-stop-t0'], env);
    await agg.waitFor(/async: 50 updates to apply/);
    agg.child.kill('SIGINT');
    expect((await agg.exited).code).toBe(130);
    expect(jsonl<RunRecord>(join(results, 'runs.jsonl')).at(-1)!.status).toBe('interrupted');
    trainer.child.kill('SIGINT');
    await trainer.exited;
  });

  it('buffered (FedBuff): the version advances once per 2 updates', async () => {
    const r = await runJob('buffered', {
      worldSize: 2,
      mode: 'async',
      rounds: 2,
      steps: 2,
      learningRate: 1e-3,
      async: { bufferSize: 2, staleness: { fn: 'constant' } },
    });
    expect(r.codes).toEqual([0, 0, 0]);
    expect(r.rounds.map((x) => x.updatesApplied)).toEqual([0, 2, 4]);
    expect(r.rounds.map((x) => x.version)).toEqual([0, 1, 2]);
    const s = r.runs.at(-1)!.summary!;
    expect(s.updatesApplied).toBe(4);
    expect(s.finalVersion).toBe(2);
  });
});
