// planRun and RunRecorder on a temporary results store: fresh, resumed and completed runs, the
// checkpoint written before its round record, and a checkpointed round whose record a crash lost
// planned for evaluation again.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStore } from '../analysis/load.ts';
import { checkpointPath, planRun, type RunPlan, type RunStart } from '../aggregator/plan.ts';
import type { DataStatistics } from '../core/data/statistics.ts';
import { RunRecorder, type RunStatus } from '../aggregator/recorder.ts';
import { initialDraft, secondsNow, type RoundDraft, type TimedUpdate } from '../aggregator/round-record.ts';
import type { Weights } from '../core/model/tensor.ts';
import { parseExperiment, type Experiment } from '../core/config.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { readCheckpoint } from '../core/results/checkpoint.ts';
import { ResultsStore, ROUNDS_FILE } from '../core/results/store.ts';
import { runKey } from '../core/results/schema.ts';
import type { RunEnvironment } from '../core/results/types.ts';
import { testConfig } from './helpers/experiment.ts';
import { tempDir } from './helpers/roles.ts';

const ENV: RunEnvironment = { backend: 'cpu', node: 'v0', tfjs: '0', fedslice: '0', host: 'h', platform: 'linux' };
const DATA: DataStatistics = { dataset: 'synthetic', fraction: 1, partition: 'contiguous', numClasses: 10, trainImages: 8, testImages: 2, testPerClass: [2], shards: [{ shard: 0, images: 8, perClass: [8] }] };
const EV = { loss: 2, accuracy: 0.25, seconds: 0.5 };
let dir: string;

beforeAll(() => {
  dir = tempDir('fedslice-plan-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fixture(name: string, o: { mode?: 'slice' | 'async'; rounds?: number } = {}) {
  const config = parseExperiment(testConfig({ dataDir: 'unused', name, worldSize: 2, rounds: o.rounds ?? 3, mode: o.mode ?? 'slice', ...(o.mode === 'async' ? { async: { evalEvery: 3 } } : {}) }));
  const layers = alexnetLayers(config.model);
  const store = new ResultsStore(join(dir, name));
  const logs: string[] = [];
  const plan = (flags: { resume?: boolean; force?: boolean } = {}) =>
    planRun({ config, layers, store, resume: flags.resume ?? false, force: flags.force ?? false, log: (l) => logs.push(l) });
  return { config, layers, store, logs, plan };
}

function started(p: RunPlan): RunStart {
  if (p.kind === 'already-completed') throw new Error('expected a run to start');
  return p;
}

function recorder(f: ReturnType<typeof fixture>, start: RunStart, statuses: RunStatus[] = []) {
  const r = new RunRecorder({ store: f.store, config: f.config, layers: f.layers, start, environment: ENV, data: DATA, slots: () => ({ t0: 0, t1: 1 }), log: () => {} });
  r.start((s) => statuses.push(s));
  return r;
}

/** Checkpoints a round, then records it with EV, nothing overlapped. */
async function commit(r: RunRecorder, weights: Weights, draft: RoundDraft) {
  return r.record(await r.checkpoint(weights, draft), EV, 0);
}

const update = (slot: number, numSamples: number): TimedUpdate => ({ slot, numSamples, trainLoss: 1.5, trainSeconds: 1, sentAt: 0, receivedAt: 1.25 });

describe('planRun and RunRecorder', () => {
  it('a fresh run starts at round 0 from the initial weights and records its planned rounds', async () => {
    const f = fixture('fresh');
    const p = started(await f.plan());
    expect(p).toMatchObject({ kind: 'fresh', key: runKey(f.config), firstRound: 0, plannedRounds: 3, slots: {}, unrecorded: null });
    expect(p.runId.startsWith(`${p.key}-`)).toBe(true);
    expect(p.weights[0].data).toEqual(initialWeights(f.layers, f.config.seed)[0].data);

    const statuses: RunStatus[] = [];
    const r = recorder(f, p, statuses);
    expect(f.store.readRuns().records).toMatchObject([{ status: 'started', runId: p.runId, plannedRounds: 3 }]);
    const r0 = await commit(r, p.weights, initialDraft());
    const draft = { round: 1, startedAt: secondsNow() - 2, updates: [update(0, 100), update(1, 300)], mergeSeconds: 0.1, bytesSent: 10, bytesReceived: 20 };
    const r1 = await commit(r, p.weights, draft);
    expect(r0).toMatchObject({ round: 0, samplesSeen: 0, updatesApplied: 0, trainLoss: null, samplesPerSecond: 0, transferSeconds: 0 });
    expect(r1).toMatchObject({ round: 1, samplesSeen: 400, updatesApplied: 2, trainersReporting: 2, trainLoss: 1.5, transferSeconds: 0.25, bytesSent: 10 });
    // samples per second of the round's wall clock, the same definition in every mode
    expect(r1.samplesPerSecond).toBeCloseTo(400 / r1.roundSeconds, 9);
    expect(r1.roundSeconds).toBeGreaterThanOrEqual(2);
    expect(r1).toMatchObject({ evalSeconds: 0.5, evalOverlapSeconds: 0 });
    // the checkpoint holds the weights and the round's record as far as it was known: no evaluation
    const ckpt = await readCheckpoint(checkpointPath(f.store.dir, p.key), f.layers);
    const { testLoss: _l, testAccuracy: _a, evalSeconds: _e, evalOverlapSeconds: _o, samplesPerSecond: _s, roundSeconds: _r, time: _t, aggregatorPeakRssBytes: _m, ...trained } = r1;
    expect(JSON.parse(ckpt.metadata.record)).toMatchObject({ ...trained, samples: 400 });
    expect(JSON.parse(ckpt.metadata.record)).not.toHaveProperty('testAccuracy');
    expect(JSON.parse(ckpt.metadata.slots)).toEqual({ t0: 0, t1: 1 });
    r.finish('interrupted', 'interrupted by SIGINT', { taskSecondsMean: 1 });
    const end = f.store.readRuns().records.at(-1)!;
    expect(end).toMatchObject({ status: 'interrupted', error: 'interrupted by SIGINT', plannedRounds: 3, summary: { updatesApplied: 2, taskSecondsMean: 1 } });
    expect(statuses.map((s) => [s.state, s.round, s.rounds])).toEqual([['waiting', 0, 3], ['training', 0, 3], ['training', 1, 3], ['failed', 1, 3]]);
  });

  it('--resume continues from the checkpoint; a checkpointed round the store lacks is planned for evaluation, not training', async () => {
    const f = fixture('fresh'); // the interrupted run of the test above
    const p = started(await f.plan({ resume: true }));
    expect(p).toMatchObject({ kind: 'resume', firstRound: 2, plannedRounds: 3, slots: { t0: 0, t1: 1 }, totals: { samplesSeen: 400, updatesApplied: 2, version: 0 }, unrecorded: null });
    expect(f.logs.at(-1)).toMatch(/resuming run \S+ after round 1$/);

    // a crash between checkpoint and record: the store lacks round 1, the checkpoint has it
    const path = join(f.store.dir, ROUNDS_FILE);
    writeFileSync(path, readFileSync(path, 'utf8').split('\n').filter((l) => l && JSON.parse(l).round !== 1).join('\n') + '\n');
    expect(f.store.roundsOf(p.runId).map((r) => r.round)).toEqual([0]);
    const q = started(await f.plan({ resume: true }));
    expect(q).toMatchObject({ kind: 'resume', firstRound: 2, unrecorded: { round: 1, samples: 400, samplesSeen: 400, trainersReporting: 2 } });
    expect(f.logs.at(-1)).toMatch(/resuming run \S+ after round 1, whose evaluation is not recorded: evaluating it again/);
    const statuses: RunStatus[] = [];
    const r = recorder(f, q, statuses);
    expect(f.store.roundsOf(q.runId).map((x) => x.round)).toEqual([0]);
    const r1 = r.record(q.unrecorded!, EV, 0.2);
    expect(r1).toMatchObject({ round: 1, testAccuracy: 0.25, evalSeconds: 0.5, evalOverlapSeconds: 0.2, samplesSeen: 400 });
    expect(r1.roundSeconds).toBeCloseTo(q.unrecorded!.roundSeconds + 0.3, 9);
    expect(f.store.roundsOf(q.runId).map((x) => x.round)).toEqual([0, 1]);
    const r2 = await commit(r, q.weights, { round: 2, startedAt: secondsNow(), updates: [update(0, 50)], mergeSeconds: 0, bytesSent: 0, bytesReceived: 0 });
    expect(r2).toMatchObject({ samplesSeen: 450, updatesApplied: 3 });
    expect(r2.elapsedSeconds).toBeGreaterThanOrEqual(q.totals.elapsedSeconds);
    expect(statuses[0]).toEqual({ state: 'waiting', round: 1, rounds: 3 });
  });

  it('a completed key: refused without a flag, nothing to do with --resume, run again with --force', async () => {
    const f = fixture('done', { rounds: 1 });
    const p = started(await f.plan());
    const r = recorder(f, p);
    await commit(r, p.weights, initialDraft());
    r.finish('completed', undefined, {});
    await expect(f.plan()).rejects.toMatchObject({ code: 'FEDSLICE_ERR_COMPLETED', message: expect.stringMatching(/already completed in .*; pass --force to run it again/) });
    expect(await f.plan({ resume: true })).toEqual({ kind: 'already-completed' });
    const again = started(await f.plan({ force: true }));
    expect(again.kind).toBe('fresh');
  });

  it('starts afresh when the checkpoint belongs to another run, or there is none', async () => {
    const f = fixture('other');
    const first = started(await f.plan());
    await commit(recorder(f, first), first.weights, initialDraft());
    // a second unfinished run of the same key, whose process died before its first checkpoint
    const second = started(await f.plan({ force: true }));
    recorder(f, second);
    const p = started(await f.plan({ resume: true }));
    expect(p).toMatchObject({ kind: 'fresh', firstRound: 0 });
    expect(f.logs.at(-1)).toMatch(/belongs to run .*, not .*; starting afresh/);
    rmSync(checkpointPath(f.store.dir, p.key));
    expect(started(await f.plan({ resume: true })).kind).toBe('fresh');
    expect(f.logs.at(-1)).toMatch(/nothing to resume for \S+; starting afresh/);
  });

  it('async: the planned rounds count evaluations; analysis takes them from the run record', async () => {
    const f = fixture('async', { mode: 'async', rounds: 4 });
    const p = started(await f.plan());
    expect(p.plannedRounds).toBe(3); // 4 rounds x 2 trainers = 8 updates, one evaluation per 3
    const r = recorder(f, p);
    await commit(r, p.weights, initialDraft(0));
    for (let round = 1; round <= 3; round++) {
      await commit(r, p.weights, { round, startedAt: secondsNow(), updates: [update(0, 10)], mergeSeconds: 0, bytesSent: 0, bytesReceived: 0, version: round * 3 });
    }
    r.finish('completed', undefined, {});
    // a later default must not move an old run's last round: analysis reads it from the record
    const withOtherDefault: Experiment = { ...f.config, federation: { ...f.config.federation, async: { evalEvery: 8 } } };
    const runs = f.store.readRuns().records.map((x) => ({ ...x, config: withOtherDefault }));
    writeFileSync(join(f.store.dir, 'runs.jsonl'), runs.map((x) => JSON.stringify(x)).join('\n') + '\n');
    const rounds = loadStore(f.store.dir).rounds.objects() as { round: number; finalRound: number }[];
    expect(rounds.map((x) => [x.round, x.finalRound])).toEqual([[0, 3], [1, 3], [2, 3], [3, 3]]);
    expect(existsSync(checkpointPath(f.store.dir, p.key))).toBe(true);
  });
});
