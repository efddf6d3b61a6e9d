// Update flow control alone: the credit rule (UpdateCredits), the trainer's gate (UpdateGate), and
// the rule inside SyncLoop on fake timers: a grant per free credit, the next grant as an update is
// accepted (before it merges), a credit freed by a departure and by the round timeout.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UpdateCredits } from '../aggregator/update-credits.ts';
import { SyncLoop } from '../aggregator/sync-loop.ts';
import { FedAvgRule, type Assignment, type RoundMerge } from '../core/aggregation/rules.ts';
import type { Weights } from '../core/model/tensor.ts';
import { parseExperiment } from '../core/config.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import type { MessageOf, TrainerToAggregator } from '../core/wire/schema.ts';
import { UpdateGate } from '../core/wire/update-gate.ts';
import { testConfig } from './helpers/experiment.ts';
import { fakeLoop, type FakeConn } from './helpers/fake-loop.ts';

type Task = MessageOf<'task'>;

describe('UpdateCredits', () => {
  it('grants up to its limit in the order announced; a release passes the credit on', () => {
    const sent: number[] = [];
    const c = new UpdateCredits((s) => (sent.push(s), true), 2);
    for (const s of [3, 1, 0, 2]) c.ready(s);
    expect(sent).toEqual([3, 1]);
    expect(c.queued()).toEqual([0, 2]);
    c.ready(3); // already holds a grant: no second one
    c.ready(0); // already waiting: keeps its place
    expect(sent).toEqual([3, 1]);
    c.release(1);
    expect(sent).toEqual([3, 1, 0]);
    expect(c.granted()).toEqual([3, 0]);
    c.release(2); // leaves the line without a grant
    c.release(3);
    c.release(0);
    expect(sent).toEqual([3, 1, 0]);
    expect([c.granted(), c.queued()]).toEqual([[], []]);
  });

  it('a slot that can no longer be granted gives its credit to the next one', () => {
    const sent: number[] = [];
    const gone = new Set([1]);
    const c = new UpdateCredits((s) => !gone.has(s) && (sent.push(s), true), 1);
    c.ready(0);
    c.ready(1);
    c.ready(2);
    c.release(0);
    expect(sent).toEqual([0, 2]);
    expect(c.granted()).toEqual([2]);
  });
});

describe('UpdateGate', () => {
  const update = (round: number, seq?: number): MessageOf<'update'> => ({
    type: 'update', job: 'j', round, rank: 1, ...(seq !== undefined ? { seq, version: 7 } : {}),
    numSamples: 1, metrics: { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 1, steps: 1 }, delta: [],
  });

  it('announces an update and writes it only for the grant that names its task', () => {
    const out: TrainerToAggregator[] = [];
    const written: string[] = [];
    const gate = new UpdateGate((m, onWritten) => (out.push(m), onWritten?.()));
    gate.offer(update(4, 2), () => written.push('u'));
    expect(out).toEqual([{ type: 'ready', job: 'j', round: 4, seq: 2, version: 7, rank: 1 }]);
    expect(gate.granted({ type: 'grant', job: 'j', round: 4, seq: 3 })).toBe(false);
    expect(gate.granted({ type: 'grant', job: 'j', round: 3, seq: 2 })).toBe(false);
    expect(gate.granted({ type: 'grant', job: 'j', round: 4, seq: 2 })).toBe(true);
    expect(out.map((m) => m.type)).toEqual(['ready', 'update']);
    expect(written).toEqual(['u']);
    expect(gate.granted({ type: 'grant', job: 'j', round: 4, seq: 2 })).toBe(false); // written once
  });

  it('drops a waiting update when its ready is refused or a new task arrives', () => {
    const out: TrainerToAggregator[] = [];
    const gate = new UpdateGate((m) => out.push(m));
    gate.offer(update(1));
    gate.refused(2);
    expect(gate.holds()).toBe(true);
    gate.refused(1);
    expect(gate.holds()).toBe(false);
    gate.offer(update(2));
    gate.drop();
    expect(gate.granted({ type: 'grant', job: 'j', round: 2 })).toBe(false);
    expect(out.map((m) => m.type)).toEqual(['ready', 'ready']);
  });
});

describe('SyncLoop flow control (fake timers)', () => {
  const JOB = 'credits-unit';
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  const settle = () => vi.advanceTimersByTimeAsync(0);

  function setup(worldSize: number, minTrainers: number) {
    const config = parseExperiment(testConfig({ dataDir: 'unused', name: JOB, worldSize, mode: 'fedavg', rounds: 2, roundTimeoutS: 5 }));
    const fed = { ...config.federation, minTrainers };
    const layers = alexnetLayers(config.model);
    const f = fakeLoop({ ...config, federation: fed });
    const start = { weights: initialWeights(layers, config.seed), firstRound: 1, totals: { elapsedSeconds: 0, samplesSeen: 0, updatesApplied: 0, version: 0 }, unrecorded: null };
    const grants = () => f.conns.map((c) => c.inbox.filter((m) => m.type === 'grant').map((m) => m.round));
    // the grants each update found already sent when its merge began
    const atMerge: number[][][] = [];
    class WatchedRule extends FedAvgRule {
      override startMerge(global: Weights, assignments: readonly Assignment[]): RoundMerge {
        const m = super.startMerge(global, assignments);
        return { add: (u) => (atMerge.push(grants()), m.add(u)), result: (o) => m.result(o) };
      }
    }
    const loop = new SyncLoop(f.ctx, new WatchedRule(layers), start);
    const slot = (s: number) => f.registry.bySlot(s)!;
    const task = (c: FakeConn) => c.inbox.filter((m): m is Task => m.type === 'task').at(-1)!;
    const ready = (s: number) => {
      const t = task(f.conns[s]);
      return loop.onReady(slot(s), { type: 'ready', job: JOB, round: t.round, rank: t.rank });
    };
    const answer = (s: number) => {
      const t = task(f.conns[s]);
      return loop.onUpdate(slot(s), {
        type: 'update', job: JOB, round: t.round, rank: t.rank, numSamples: 10,
        metrics: { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 10, steps: 1 },
        delta: t.weights.map((w) => ({ ...w, data: new Float32Array(w.data.length) })),
      });
    };
    return { loop, ...f, slot, grants, atMerge, ready, answer };
  }

  it('grants one at a time, the next as an update is accepted and before it merges; refuses a ready for no task', async () => {
    const t = setup(4, 4);
    const run = t.loop.run(new AbortController().signal);
    await settle();
    for (const s of [2, 0, 3, 1]) expect(t.ready(s)).toBeNull();
    expect(t.grants()).toEqual([[], [], [1], []]);
    expect(t.answer(2)).toBeNull();
    expect(t.atMerge).toEqual([[[1], [], [1], []]]); // slot 0 was granted before slot 2's update merged
    expect(t.ready(2)).toBe('slot 2 holds no task (a duplicate or late update)');
    expect(t.loop.onReady(t.slot(1), { type: 'ready', job: JOB, round: 2, rank: 1 })).toBe("round 2 is not the round 1 of this trainer's task");
    expect(t.answer(0)).toBeNull();
    expect(t.grants()).toEqual([[1], [], [1], [1]]);
    expect(t.answer(3)).toBeNull();
    expect(t.grants()).toEqual([[1], [1], [1], [1]]);
    expect(t.answer(1)).toBeNull();
    await settle(); // round 2: fresh credits
    for (const s of [0, 1, 2, 3]) t.ready(s);
    expect(t.grants()).toEqual([[1, 2], [1], [1], [1]]);
    for (const s of [0, 1, 2, 3]) t.answer(s);
    expect(t.grants()).toEqual([[1, 2], [1, 2], [1, 2], [1, 2]]);
    await run;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a grant holder that leaves frees its credit at once', async () => {
    const t = setup(3, 2);
    const run = t.loop.run(new AbortController().signal);
    await settle();
    for (const s of [0, 1, 2]) t.ready(s);
    expect(t.grants()).toEqual([[1], [], []]);
    t.registry.leave(t.conns[0]);
    t.loop.onLeave(t.slot(0));
    expect(t.grants()).toEqual([[1], [1], []]);
    t.answer(1);
    expect(t.grants()).toEqual([[1], [1], [1]]);
    t.answer(2);
    await settle(); // round 1 proceeds with 2 of 3 (minTrainers 2, slot 0 gone)
    expect(t.drafts.at(-1)?.updates.map((u) => u.slot)).toEqual([1, 2]);
    t.loop.onJoin(t.registry.join('t0', t.conns[0]).holder);
    for (const s of [0, 1, 2]) t.ready(s);
    for (const s of [0, 1, 2]) t.answer(s);
    await run;
  });

  it('a grant holder that hangs: the round timeout ends the round and its credits with it', async () => {
    const t = setup(3, 1);
    const run = t.loop.run(new AbortController().signal);
    await settle();
    for (const s of [0, 1, 2]) t.ready(s);
    t.answer(1);
    // slot 0 holds the grant and never sends; slot 2 waits behind it
    expect(t.grants()).toEqual([[1], [], []]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(t.drafts.at(-1)).toMatchObject({ round: 1, updates: [{ slot: 1 }] });
    // round 2 grants afresh although round 1's holder never sent
    for (const s of [1, 2]) t.ready(s);
    expect(t.grants()).toEqual([[1], [2], []]);
    for (const s of [0, 1, 2]) {
      t.ready(s);
      t.answer(s);
    }
    await run;
    expect(vi.getTimerCount()).toBe(0);
  });
});
