// Faults over real processes and sockets: a scripted trainer drives a real aggregator with known
// deltas and bad frames; real trainers are killed mid-round; a killed aggregator resumes.
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startMetaserver, type Metaserver } from '../metaserver/server.ts';
import { connectMetaserver } from '../metaserver/client.ts';
import { decode, encode } from '../core/wire/codec.ts';
import { aggregatorToTrainer, type AggregatorToTrainer, type MessageOf, type TrainerToAggregator } from '../core/wire/schema.ts';
import { readCheckpoint } from '../core/results/checkpoint.ts';
import { alexnetLayers, inAxis, outAxis } from '../core/model/spec.ts';
import { initialWeights } from '../core/model/init.ts';
import { parseExperiment } from '../core/config.ts';
import { runKey } from '../core/results/schema.ts';
import { checkpointPath } from '../aggregator/run.ts';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { credentialHeaders } from '../core/wire/token.ts';
import { startRole, stopAll, tempDir, jsonl } from './helpers/roles.ts';
import { upgradeStatus } from './helpers/wire-client.ts';
import { makeTestData, testConfig, writeConfig } from './helpers/experiment.ts';

const TOKEN = 'fault-token';
const env = { FEDSLICE_TOKEN: TOKEN };
let dir: string;
let dataDir: string;
let meta: Metaserver;

beforeAll(async () => {
  dir = tempDir('fedslice-faults-');
  dataDir = makeTestData(dir);
  meta = await startMetaserver({ port: 0, log: () => {} });
});
afterAll(() => meta.close());
afterEach(() => stopAll());

function aggregator(config: string, job: string, results: string, extra: string[] = []) {
  return startRole(`aggregator ${job}`, ['aggregator', '--config', config, '--metaserver', meta.url, '--job', job, '--results', results, ...extra], env);
}
function trainer(config: string, job: string, id: string) {
  return startRole(`trainer ${id}`, ['trainer', '--config', config, '--metaserver', meta.url, '--job', job, '--id', id], env);
}

async function aggregatorAddress(job: string, id: string): Promise<string> {
  const mc = await connectMetaserver({ url: meta.url, job, role: 'trainer', id, token: TOKEN });
  const address = await mc.waitForAggregator(30_000);
  mc.close();
  return address;
}

/** A hand-driven trainer: connects like a real one, then does exactly what the test says. */
async function scriptedTrainer(job: string, id: string) {
  const address = await aggregatorAddress(job, id);
  const ws = new WebSocket(address, { headers: credentialHeaders(job, TOKEN) });
  type Received = AggregatorToTrainer | { closed: number };
  const inbox: Received[] = [];
  const waiters: ((m: Received) => void)[] = [];
  const push = (m: Received) => (waiters.length ? waiters.shift()!(m) : inbox.push(m));
  ws.on('message', (d) => {
    const r = decode(aggregatorToTrainer, d as Buffer);
    if (r.ok) push(r.msg);
  });
  ws.on('close', (code) => push({ closed: code }));
  await new Promise((r) => ws.once('open', r));
  ws.send(encode({ type: 'join', job, id }));
  const next = () => (inbox.length ? Promise.resolve(inbox.shift()!) : new Promise<Received>((r) => waiters.push(r)));
  return { ws, next, send: (m: TrainerToAggregator | Uint8Array) => ws.send(m instanceof Uint8Array ? m : encode(m)) };
}

describe('aggregator with scripted trainers', () => {
  it('puts every layerwise-swapped slice back where it was cut from, and survives bad frames', async () => {
    const W = 4;
    const rounds = 2;
    const cfgPath = writeConfig(dir, 'scripted.json', { dataDir, worldSize: W, layerwiseSwap: true, rounds, name: 'scripted' });
    const results = join(dir, 'results-scripted');
    const agg = aggregator(cfgPath, 'scripted', results);

    // A wrong token is refused at the upgrade (HTTP 401, before any frame); the aggregator keeps serving.
    expect(await upgradeStatus(await aggregatorAddress('scripted', 'intruder'), credentialHeaders('scripted', 'wrong-token'))).toBe(401);

    const trainers = await Promise.all(Array.from({ length: W }, (_, s) => scriptedTrainer('scripted', `s${s}`)));
    const slots = await Promise.all(trainers.map(async (t) => ((await t.next()) as MessageOf<'joined'>).shard));
    for (let round = 1; round <= rounds; round++) {
      for (const [i, t] of trainers.entries()) {
        const task = (await t.next()) as MessageOf<'task'>;
        expect(task).toMatchObject({ type: 'task', round, worldSize: W });
        if (round === 1 && i === 0) {
          // garbage, a NaN delta, a wrong shape: each answered with an error, none fatal
          t.send(new Uint8Array([0xc1, 0xc1]));
          expect(await t.next()).toMatchObject({ type: 'error', code: 'FEDSLICE_ERR_FRAME' });
          const nan = task.weights.map((w) => ({ ...w, data: new Float32Array(w.data.length).fill(NaN) }));
          t.send({ type: 'update', job: 'scripted', round, rank: task.rank, delta: nan, numSamples: 1, metrics: { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 1, steps: 1 } });
          expect(await t.next()).toMatchObject({ type: 'error', code: 'FEDSLICE_ERR_NONFINITE' });
          const wrong = task.weights.map((w) => ({ ...w, shape: [w.data.length], data: new Float32Array(w.data.length) }));
          t.send({ type: 'update', job: 'scripted', round, rank: task.rank, delta: wrong, numSamples: 1, metrics: { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 1, steps: 1 } });
          expect(await t.next()).toMatchObject({ type: 'error', code: 'FEDSLICE_ERR_UPDATE', message: expect.stringMatching(/has shape/) });
        }
        // every value of this trainer's delta is its slot + 1: the merge must put it back in place
        const delta = task.weights.map((w) => ({ ...w, data: new Float32Array(w.data.length).fill(slots[i] + 1) }));
        t.send({ type: 'update', job: 'scripted', round, rank: task.rank, delta, numSamples: 100, metrics: { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 100, steps: 1 } });
      }
    }
    for (const t of trainers) expect(await t.next()).toMatchObject({ type: 'done', reason: 'completed' });
    expect((await agg.exited).code).toBe(0);

    // Independent expectation: rank = slot (no swap); input rank = (slot + round - 1) mod W.
    const config = parseExperiment(testConfig({ dataDir, worldSize: W, layerwiseSwap: true, rounds, name: 'scripted' }));
    const layers = alexnetLayers(config.model);
    const start = initialWeights(layers, config.seed);
    const { weights } = await readCheckpoint(checkpointPath(results, runKey(config)), layers);
    for (const layer of layers) {
      const w = weights.find((t) => t.name === `${layer.name}.weight`)!;
      const w0 = start.find((t) => t.name === `${layer.name}.weight`)!;
      const axis = layer.split === 'out' ? outAxis(layer) : inAxis(layer);
      const inner = w.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      const units = w.shape[axis];
      for (let unit = 0; unit < units; unit += Math.max(1, Math.floor(units / 8))) {
        let expected = 0;
        for (let round = 1; round <= rounds; round++) {
          const block = Math.floor(unit / (units / W));
          // which slot's cut covered this block in this round
          const slot = layer.split === 'out' ? block : (block - (round - 1) + W * 4) % W;
          expected += slot + 1;
        }
        const at = unit * inner; // first element of this unit (outer index 0)
        expect(w.data[at] - w0.data[at]).toBeCloseTo(expected, 4);
      }
      const b = weights.find((t) => t.name === `${layer.name}.bias`)!;
      const b0 = start.find((t) => t.name === `${layer.name}.bias`)!;
      const biasExpected = layer.split === 'in' ? rounds * ((W + 1) / 2) : rounds * (Math.floor(0 / (b.shape[0] / W)) + 1);
      expect(b.data[0] - b0.data[0]).toBeCloseTo(biasExpected, 4);
    }
    expect(agg.output()).toMatch(/aggregator: refused a connection from 127\.0\.0\.1:\d+: wrong job token/);
  });

  it('async: applies each update once, weighted by staleness; a duplicate is refused', async () => {
    const o = { dataDir, worldSize: 2, mode: 'async' as const, rounds: 2, name: 'async-scripted', async: { mixing: 0.5, staleness: { fn: 'polynomial', a: 1 }, evalEvery: 1 } };
    const cfgPath = writeConfig(dir, 'async-scripted.json', o);
    const results = join(dir, 'results-async-scripted');
    const agg = aggregator(cfgPath, 'async-scripted', results);
    const [t0, t1] = await Promise.all(['a0', 'a1'].map((id) => scriptedTrainer('async-scripted', id)));
    for (const t of [t0, t1]) expect(await t.next()).toMatchObject({ type: 'joined' });
    const metrics = { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 100, steps: 1 };
    const update = (task: MessageOf<'task'>, value: number) => ({
      type: 'update' as const, job: 'async-scripted', round: task.round, seq: task.seq, version: task.version, rank: task.rank, numSamples: 100, metrics,
      delta: task.weights.map((w) => ({ ...w, data: new Float32Array(w.data.length).fill(value) })),
    });
    const first = await Promise.all([t0, t1].map(async (t) => (await t.next()) as MessageOf<'task'>));
    expect(first.map((t) => [t.mode, t.version, t.round, t.seq])).toEqual([['async', 0, 1, 1], ['async', 0, 1, 1]]);

    t0.send(update(first[0], 1)); // staleness 0: + 0.5 x 1
    const second0 = (await t0.next()) as MessageOf<'task'>;
    expect(second0).toMatchObject({ type: 'task', version: 1, round: 2, seq: 2 });
    t0.send(update(first[0], 1)); // the same update again
    expect(await t0.next()).toMatchObject({ type: 'error', code: 'FEDSLICE_ERR_UPDATE', message: expect.stringMatching(/version 0 is not the version 1/) });
    t1.send(update(first[1], 2)); // staleness 1: + 0.5/2 x 2
    const second1 = (await t1.next()) as MessageOf<'task'>;
    // seq counts this trainer's tasks; round is the evaluation window open when it was sent
    expect(second1).toMatchObject({ type: 'task', version: 2, seq: 2, round: 3 });
    t0.send(update(second0, 3)); // staleness 1: + 0.25 x 3
    await agg.waitFor(/async: version 3,/);
    t1.send(update(second1, 4)); // staleness 1: + 0.25 x 4
    for (const t of [t0, t1]) expect(await t.next()).toMatchObject({ type: 'done', reason: 'completed' });
    expect((await agg.exited).code).toBe(0);

    const config = parseExperiment(testConfig(o));
    const layers = alexnetLayers(config.model);
    const start = initialWeights(layers, config.seed);
    const { weights } = await readCheckpoint(checkpointPath(results, runKey(config)), layers);
    for (const [i, w] of weights.entries()) {
      for (let j = 0; j < w.data.length; j += Math.max(1, Math.floor(w.data.length / 16))) expect(w.data[j] - start[i].data[j]).toBeCloseTo(2.75, 4);
    }
    const rounds = jsonl<RoundRecord>(join(results, 'rounds.jsonl'));
    expect(rounds.map((r) => [r.round, r.version, r.staleness])).toEqual([[0, 0, undefined], [1, 1, 0], [2, 2, 1], [3, 3, 1], [4, 4, 1]]);
    const summary = jsonl<RunRecord>(join(results, 'runs.jsonl')).at(-1)!.summary!;
    expect(summary).toMatchObject({ updatesApplied: 4, updatesReceived: 4, updatesRefused: 1, finalVersion: 4, maxStaleness: 1, 'updates.slot0': 2, 'updates.slot1': 2 });
  });

  it('closes a connection that sends an oversized frame, and goes on', async () => {
    const cfgPath = writeConfig(dir, 'big.json', { dataDir, worldSize: 1, rounds: 1, name: 'big' });
    const agg = aggregator(cfgPath, 'big', join(dir, 'results-big'));
    const t = await scriptedTrainer('big', 'greedy');
    expect(await t.next()).toMatchObject({ type: 'joined' });
    await t.next(); // task
    t.send(new Uint8Array(64 << 20)); // far above the limit for a width-1/8 model
    expect(await t.next()).toMatchObject({ closed: 1009 });
    const real = trainer(cfgPath, 'big', 'greedy'); // same id: gets its slot and the task again
    expect((await real.exited).code).toBe(0);
    expect((await agg.exited).code).toBe(0);
    expect(agg.output()).toMatch(/trainer greedy rejoined as slot 0/);
  });
});

describe('trainers and aggregators that die', () => {
  it('a killed trainer: with minTrainers reached the run completes without it', async () => {
    const cfgPath = writeConfig(dir, 'kill-ok.json', { dataDir, worldSize: 2, rounds: 2, minTrainers: 1, steps: 30, name: 'killok' });
    const results = join(dir, 'results-kill-ok');
    const agg = aggregator(cfgPath, 'killok', results);
    const t0 = trainer(cfgPath, 'killok', 'k0');
    const t1 = trainer(cfgPath, 'killok', 'k1');
    await t1.waitFor(/round 1: training/);
    process.kill(-t1.child.pid!, 'SIGKILL');
    expect((await agg.exited).code).toBe(0);
    expect((await t0.exited).code).toBe(0);
    const rounds = jsonl<RoundRecord>(join(results, 'rounds.jsonl'));
    expect(rounds.map((r) => r.round)).toEqual([0, 1, 2]);
    expect(rounds[1].trainersReporting).toBe(1);
    expect(agg.output()).toMatch(/round 1: proceeding with 1\/2 updates/);
  });

  it('a killed trainer: below minTrainers the run fails within roundTimeoutS with one clear line', async () => {
    const cfgPath = writeConfig(dir, 'kill-fail.json', { dataDir, worldSize: 2, rounds: 2, roundTimeoutS: 6, steps: 30, name: 'killfail' });
    const results = join(dir, 'results-kill-fail');
    const agg = aggregator(cfgPath, 'killfail', results);
    const t0 = trainer(cfgPath, 'killfail', 'f0');
    const t1 = trainer(cfgPath, 'killfail', 'f1');
    await t1.waitFor(/round 1: training/);
    const killedAt = Date.now();
    process.kill(-t1.child.pid!, 'SIGKILL');
    expect((await agg.exited).code).toBe(1);
    // it gives up at the round timeout (6 s), not later; the slack covers a loaded machine
    expect(Date.now() - killedAt).toBeLessThan(30_000);
    expect(agg.output()).toMatch(/fedslice: error: round 1: only [01] of 2 trainers sent updates within roundTimeoutS=6s and minTrainers is 2; missing: .*slot \d \(f1, disconnected\)/);
    const runs = jsonl<RunRecord>(join(results, 'runs.jsonl'));
    expect(runs.map((r) => r.status)).toEqual(['started', 'failed']);
    expect(runs[1].error).toMatch(/only [01] of 2 trainers/);
    expect((await t0.exited).code).toBe(1); // told the run failed
    expect(t0.output()).toMatch(/the aggregator ended the run: round 1: only [01] of 2/);
  });

  it('a trainer killed while it holds a grant frees its credit: the trainer waiting behind it sends', async () => {
    // W = 3, one credit, a timeout no round reaches: a scripted trainer takes the grant and holds
    // it; the real trainer's update waits until the holder dies.
    const cfgPath = writeConfig(dir, 'grant-kill.json', { dataDir, worldSize: 3, mode: 'fedavg', minTrainers: 2, roundTimeoutS: 3600, rounds: 2, steps: 5, name: 'grantkill' });
    const results = join(dir, 'results-grant-kill');
    const agg = aggregator(cfgPath, 'grantkill', results);
    const [dies, stays] = await Promise.all(['g0', 'g1'].map((id) => scriptedTrainer('grantkill', id)));
    for (const t of [dies, stays]) expect(await t.next()).toMatchObject({ type: 'joined' });
    // g0 and g1 join at once, so either may get slot 0
    const [, slot] = await agg.waitFor(/trainer g0 joined as slot (\d)/);
    const real = trainer(cfgPath, 'grantkill', 'g2');
    const metrics = { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 100, steps: 1 };
    const takeTask = async (t: typeof dies) => {
      const task = (await t.next()) as MessageOf<'task'>;
      expect(task).toMatchObject({ type: 'task', mode: 'fedavg' });
      return task;
    };
    const holdGrant = async (t: typeof dies, task: MessageOf<'task'>) => {
      t.send({ type: 'ready', job: 'grantkill', round: task.round, rank: task.rank });
      expect(await t.next()).toEqual({ type: 'grant', job: 'grantkill', round: task.round });
    };
    await holdGrant(dies, await takeTask(dies));
    const held = await takeTask(stays); // announced only later: the real trainer is next in line
    await agg.waitFor(new RegExp(`round 1: g2 \\(slot 2\\) waits to send its update while slot ${slot} sends`));
    dies.ws.terminate(); // its connection drops as a killed process's does
    await agg.waitFor(/round 1: update from rank \d \(g2,/);
    const delta = held.weights.map((w) => ({ ...w, data: new Float32Array(w.data.length) }));
    await holdGrant(stays, held);
    stays.send({ type: 'update', job: 'grantkill', round: 1, rank: held.rank, delta, numSamples: 100, metrics });
    const task2 = await takeTask(stays);
    await holdGrant(stays, task2);
    stays.send({ type: 'update', job: 'grantkill', round: 2, rank: task2.rank, delta, numSamples: 100, metrics });
    expect((await agg.exited).code).toBe(0);
    expect((await real.exited).code).toBe(0);
    const rounds = jsonl<RoundRecord>(join(results, 'rounds.jsonl'));
    expect(rounds.filter((r) => r.round > 0).map((r) => [r.round, r.trainersReporting])).toEqual([[1, 2], [2, 2]]);
    expect(agg.output()).toContain(`round 1: proceeding with 2/3 updates; missing slots ${slot} keep their old values`);
  });

  it('a killed aggregator restarted with --resume finishes the run with no round lost or repeated', async () => {
    const cfgPath = writeConfig(dir, 'resume.json', { dataDir, worldSize: 1, rounds: 3, steps: 5, name: 'resume' });
    const results = join(dir, 'results-resume');
    const first = aggregator(cfgPath, 'resume', results);
    const t = trainer(cfgPath, 'resume', 'r0');
    await first.waitFor(/round 1: test accuracy/);
    process.kill(-first.child.pid!, 'SIGKILL');
    await first.exited;
    const second = aggregator(cfgPath, 'resume', results, ['--resume']);
    expect((await second.exited).code).toBe(0);
    expect((await t.exited).code).toBe(0);
    expect(second.output()).toMatch(/resuming run \S+ after round [12]/);
    expect(t.output()).toMatch(/lost the aggregator/);
    const rounds = jsonl<RoundRecord>(join(results, 'rounds.jsonl'));
    expect(new Set(rounds.map((r) => r.runId)).size).toBe(1);
    expect(rounds.map((r) => r.round)).toEqual([0, 1, 2, 3]);
    const runs = jsonl<RunRecord>(join(results, 'runs.jsonl'));
    expect(runs.at(-1)!.status).toBe('completed');
    // and once completed, --resume has nothing to do
    const third = aggregator(cfgPath, 'resume', results, ['--resume']);
    expect((await third.exited).code).toBe(0);
    expect(third.output()).toMatch(/already completed/);
  });
});
