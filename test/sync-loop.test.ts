// SyncLoop alone, on fake timers, with in-memory trainer connections: a round's tasks, a trainer
// that comes back mid-round, refused updates, and what each round commits.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SyncLoop } from '../aggregator/sync-loop.ts';
import type { LoopContext } from '../aggregator/federation-loop.ts';
import type { Outbox } from '../aggregator/outbox.ts';
import { TrainerRegistry } from '../aggregator/registry.ts';
import { roundFigures, type RoundDraft } from '../aggregator/round-record.ts';
import { FedAvgRule, SliceRule } from '../core/aggregation/rules.ts';
import { taskWeightsPerPlan } from '../aggregator/tasks.ts';
import { parseExperiment } from '../core/config.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { runKeyFields } from '../core/results/schema.ts';
import type { AggregatorToTrainer, MessageOf } from '../core/wire/schema.ts';
import { testConfig } from './helpers/experiment.ts';

interface FakeConn {
  inbox: AggregatorToTrainer[];
}
type Task = MessageOf<'task'>;

const JOB = 'sync-unit';

function setup() {
  const config = parseExperiment(testConfig({ dataDir: 'unused', name: JOB, worldSize: 2, mode: 'slice', swap: true, rounds: 2, roundTimeoutS: 5 }));
  const layers = alexnetLayers(config.model);
  const registry = new TrainerRegistry<FakeConn>(2);
  let sent = 0;
  const outbox: Outbox<FakeConn> = {
    send: (conn, msg) => {
      conn.inbox.push(msg);
      sent++;
      return 1;
    },
    traffic: () => ({ sent, received: 0 }),
  };
  const drafts: RoundDraft[] = [];
  const ctx: LoopContext<FakeConn> = {
    config,
    job: JOB,
    registry,
    outbox,
    log: () => {},
    evaluate: async () => ({ loss: 1, accuracy: 0.5, seconds: 0 }),
    commit: async (_w, draft, ev) => {
      drafts.push(draft);
      return { kind: 'round', runId: 'r', ...runKeyFields(config), ...roundFigures(draft, ev, draft.startedAt), time: '' };
    },
  };
  const start = { weights: initialWeights(layers, config.seed), firstRound: 0, totals: { elapsedSeconds: 0, samplesSeen: 0, updatesApplied: 0, version: 0 } };
  const loop = new SyncLoop(ctx, new SliceRule(layers, config.federation), start);
  const conns: FakeConn[] = [{ inbox: [] }, { inbox: [] }];
  registry.join('t0', conns[0]);
  registry.join('t1', conns[1]);
  return { loop, registry, conns, drafts };
}

const tasksOf = (c: FakeConn) => c.inbox.filter((m): m is Task => m.type === 'task');

function update(task: Task, change: Partial<MessageOf<'update'>> = {}): MessageOf<'update'> {
  return {
    type: 'update',
    job: JOB,
    round: task.round,
    rank: task.rank,
    numSamples: 100,
    metrics: { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 100, steps: 1 },
    delta: task.weights.map((w) => ({ ...w, data: new Float32Array(w.data.length) })),
    ...change,
  };
}

const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('SyncLoop', () => {
  it('sends each round its tasks, refuses what does not answer them, and resends to a trainer that returns', async () => {
    const { loop, registry, conns, drafts } = setup();
    const slot = (s: number) => registry.bySlot(s)!;
    const run = loop.run(new AbortController().signal);
    await settle();
    const [a, b] = conns.map((c) => tasksOf(c).at(-1)!);
    expect([a, b].map((t) => [t.round, t.rank, t.seq, t.version, t.mode])).toEqual([[1, 0, undefined, undefined, 'slice'], [1, 1, undefined, undefined, 'slice']]);

    expect(loop.onUpdate(slot(0), update(a, { round: 2 }))).toBe("round 2 is not the round 1 of this trainer's task");
    expect(loop.onUpdate(slot(0), update(a, { rank: 1 }))).toBe('rank 1 is not the rank 0 this trainer was given');
    expect(loop.onUpdate(slot(0), update(a, { seq: 3 }))).toBe('task 3 is not the task (none) this trainer holds');
    expect(loop.onUpdate(slot(0), update(a, { delta: [] }))).toMatch(/^expected \d+ tensors, got 0$/);
    expect(loop.onUpdate(slot(0), update(a))).toBeNull();
    expect(loop.onUpdate(slot(0), update(a))).toBe('slot 0 holds no task (a duplicate or late update)');

    // slot 1 drops out and comes back: the same task again; slot 0, done, gets nothing new
    registry.leave(conns[1]);
    loop.onLeave(slot(1));
    const back = registry.join('t1', conns[1]).holder;
    loop.onJoin(back);
    loop.onJoin(slot(0));
    expect(tasksOf(conns[1]).map((t) => t.round)).toEqual([1, 1]);
    expect(tasksOf(conns[0]).length).toBe(1);
    expect(loop.onUpdate(back, update(b))).toBeNull();
    await settle();

    // round 2 (swap: the ranks trade places)
    const round2 = conns.map((c) => tasksOf(c).at(-1)!);
    expect(round2.map((t) => [t.round, t.rank])).toEqual([[2, 1], [2, 0]]);
    expect(loop.onUpdate(slot(1), update(b))).toBe("round 1 is not the round 2 of this trainer's task");
    for (const s of [0, 1]) expect(loop.onUpdate(slot(s), update(round2[s]))).toBeNull();
    await run;
    expect(drafts.map((d) => [d.round, d.updates.map((u) => u.slot), d.version])).toEqual([[0, [], undefined], [1, [0, 1], undefined], [2, [0, 1], undefined]]);
    expect(loop.summary()).toMatchObject({ taskSecondsMean: 1 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a signal during a round cancels its collection and leaves no timer', async () => {
    const { loop } = setup();
    const ac = new AbortController();
    const run = loop.run(ac.signal);
    await settle();
    ac.abort('SIGTERM');
    await expect(run).rejects.toMatchObject({ code: 'FEDSLICE_ERR_INTERRUPTED', message: 'interrupted by SIGTERM' });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('task weights per plan', () => {
  it('fedavg slots share one copy of the task weights; slice ranks each get their own cut', () => {
    const config = parseExperiment(testConfig({ dataDir: 'unused', name: JOB, worldSize: 3, mode: 'fedavg' }));
    const layers = alexnetLayers(config.model);
    const global = initialWeights(layers, 1);
    const fedavg = new FedAvgRule(layers);
    const forFedavg = taskWeightsPerPlan(fedavg, global);
    const [a, b, c] = [0, 1, 2].map((slot) => forFedavg(fedavg.assign(slot, 1)));
    expect(b).toBe(a);
    expect(c).toBe(a);
    a.forEach((t, i) => expect(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(global[i].data.buffer))).toBe(true));

    const slice = new SliceRule(layers, { worldSize: 2, swap: false, layerwiseSwap: false });
    const forSlice = taskWeightsPerPlan(slice, global);
    const [r0, r1] = [0, 1].map((slot) => forSlice(slice.assign(slot, 1)));
    expect(r1).not.toBe(r0);
    expect(r0.map((t) => t.shape)).toEqual(slice.taskWeights(global, slice.assign(0, 1)).map((t) => t.shape));
  });
});
