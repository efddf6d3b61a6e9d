// SyncLoop alone, on fake timers, with in-memory trainer connections: a round's tasks, a trainer
// that comes back mid-round, refused updates, what each round commits, and the overlap rule: round
// r is evaluated while round r+1 trains, and recorded before round r+1 is checkpointed.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SyncLoop } from '../aggregator/sync-loop.ts';
import { trainedFigures, type Evaluation, type TrainedRound } from '../aggregator/round-record.ts';
import { runKeyFields } from '../core/results/schema.ts';
import { FedAvgRule, SliceRule } from '../core/aggregation/rules.ts';
import { taskWeightsPerPlan } from '../aggregator/tasks.ts';
import { parseExperiment } from '../core/config.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { cloneWeights, type Weights } from '../core/model/tensor.ts';
import { sameBits } from './helpers/bits.ts';
import type { MessageOf } from '../core/wire/schema.ts';
import { testConfig } from './helpers/experiment.ts';
import { fakeLoop, type FakeConn } from './helpers/fake-loop.ts';

type Task = MessageOf<'task'>;

const JOB = 'sync-unit';

function setup(o: { evaluate?: (w: Weights) => Promise<Evaluation>; unrecorded?: TrainedRound; mode?: 'slice' | 'fedavg' } = {}) {
  const mode = o.mode ?? 'slice';
  const config = parseExperiment(testConfig({ dataDir: 'unused', name: JOB, worldSize: 2, mode, swap: mode === 'slice', rounds: 2, roundTimeoutS: 5 }));
  const layers = alexnetLayers(config.model);
  const f = fakeLoop(config, o.evaluate);
  const start = {
    weights: initialWeights(layers, config.seed),
    firstRound: o.unrecorded ? o.unrecorded.round + 1 : 0,
    totals: { elapsedSeconds: 0, samplesSeen: 0, updatesApplied: 0, version: 0 },
    unrecorded: o.unrecorded ?? null,
  };
  const rule = mode === 'slice' ? new SliceRule(layers, config.federation) : new FedAvgRule(layers);
  const loop = new SyncLoop(f.ctx, rule, start);
  return { loop, config, ...f };
}

/** Evaluations the test ends by hand: `end(seconds)` resolves the oldest one still running. */
function heldEvaluations() {
  const running: ((ev: Evaluation) => void)[] = [];
  return {
    evaluate: () => new Promise<Evaluation>((resolve) => running.push(resolve)),
    running: () => running.length,
    end: (seconds: number) => running.shift()!({ loss: 1, accuracy: 0.5, seconds }),
  };
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

  it('round r+1 trains while round r is evaluated; round r is recorded before round r+1 is checkpointed; no second counted twice', async () => {
    const held = heldEvaluations();
    const { loop, registry, conns, events, records } = setup({ evaluate: held.evaluate });
    const answer = async () => {
      for (const [s, c] of conns.entries()) expect(loop.onUpdate(registry.bySlot(s)!, update(tasksOf(c).at(-1)!))).toBeNull();
      await settle();
    };
    const run = loop.run(new AbortController().signal);
    await settle();
    // round 0 is checkpointed, round 1's tasks go out, and only then round 0's evaluation starts
    expect(events).toEqual(['checkpoint 0', 'task 1 to rank 0', 'task 1 to rank 1', 'evaluate']);

    // round 0's evaluation ends while round 1 trains: recorded at once, all of it overlapped
    await vi.advanceTimersByTimeAsync(3000);
    held.end(3);
    await settle();
    expect(events.at(-1)).toBe('record 0');
    expect(records[0]).toMatchObject({ round: 0, evalSeconds: 3, evalOverlapSeconds: 3, roundSeconds: 0 });

    await answer(); // round 1 merged at t=3 s: checkpointed, round 2 out, round 1 evaluated
    expect(events.slice(5)).toEqual(['checkpoint 1', 'task 2 to rank 1', 'task 2 to rank 0', 'evaluate']);

    // round 2 is merged at t=5 s while round 1's evaluation still runs: its checkpoint waits
    await vi.advanceTimersByTimeAsync(2000);
    await answer();
    expect(events.at(-1)).toBe('evaluate');
    await vi.advanceTimersByTimeAsync(1000);
    held.end(3); // 2 s of it overlapped round 2, 1 s held the loop
    await settle();
    expect(events.slice(9)).toEqual(['record 1', 'checkpoint 2', 'evaluate']);
    // the last round has nothing to overlap with
    await vi.advanceTimersByTimeAsync(500);
    held.end(0.5);
    await run;
    expect(events.slice(12)).toEqual(['record 2']);
    expect(records.map((r) => [r.round, r.evalSeconds, r.evalOverlapSeconds])).toEqual([[0, 3, 3], [1, 3, 2], [2, 0.5, 0]]);
    // round 1: tasks out at 0 s, checkpointed at 3 s, plus the 1 s of evaluation nothing overlapped;
    // round 2: out at 3 s, checkpointed at 6 s less the 1 s it waited (round 1's), plus 0.5 s
    expect(records.map((r) => r.roundSeconds)).toEqual([0, 4, 2.5]);
    // the rounds' seconds add up to the loop's wall clock: 6.5 s
    expect(records.reduce((t, r) => t + r.roundSeconds, 0)).toBe(6.5);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a resumed run evaluates its checkpointed-but-unrecorded round while the next one trains, without training it again', async () => {
    const held = heldEvaluations();
    const config = parseExperiment(testConfig({ dataDir: 'unused', name: JOB, worldSize: 2, rounds: 2 }));
    const draft = { round: 1, startedAt: 0, updates: [], mergeSeconds: 0, bytesSent: 0, bytesReceived: 0 };
    const unrecorded: TrainedRound = { kind: 'round', runId: 'r', ...runKeyFields(config), ...trainedFigures(draft, 4), samplesSeen: 200 };
    const { loop, registry, conns, events, records, drafts } = setup({ evaluate: held.evaluate, unrecorded });
    const run = loop.run(new AbortController().signal);
    await settle();
    expect(events).toEqual(['task 2 to rank 1', 'task 2 to rank 0', 'evaluate']);
    await vi.advanceTimersByTimeAsync(1000);
    held.end(1);
    await settle();
    expect(records).toMatchObject([{ round: 1, samplesSeen: 200, evalOverlapSeconds: 1, roundSeconds: 4 }]);
    for (const [s, c] of conns.entries()) loop.onUpdate(registry.bySlot(s)!, update(tasksOf(c).at(-1)!));
    await settle();
    held.end(1);
    await run;
    expect(drafts.map((d) => d.round)).toEqual([2]);
    expect(records.map((r) => r.round)).toEqual([1, 2]);
  });

  it('an evaluation reads its round\'s model to its end: the next round\'s merge, written over the same arrays, waits for it', async () => {
    // an evaluation that reads the weights only as it ends, as one reading layer by layer reads its last layer
    const held = heldEvaluations();
    const read: Weights[] = [];
    const evaluate = (w: Weights) => held.evaluate().then((ev) => (read.push(cloneWeights(w)), ev));
    const { loop, registry, conns, ctx, events } = setup({ evaluate, mode: 'fedavg' });
    const checkpointed: Weights[] = [];
    const checkpoint = ctx.checkpoint;
    ctx.checkpoint = (w, draft) => (checkpointed.push(cloneWeights(w)), checkpoint(w, draft));
    const answer = async (value: number) => {
      for (const [s, c] of conns.entries()) {
        const task = tasksOf(c).at(-1)!;
        const delta = task.weights.map((w) => ({ ...w, data: new Float32Array(w.data.length).fill(value * (s + 1)) }));
        expect(loop.onUpdate(registry.bySlot(s)!, update(task, { delta }))).toBeNull();
      }
      await settle();
    };
    const run = loop.run(new AbortController().signal);
    await settle();
    held.end(1);
    await answer(0.5); // round 1 merged and checkpointed; its evaluation starts as round 2's tasks go out
    await answer(0.25); // round 2's updates arrive while round 1 is still evaluated
    expect(events.at(-1)).toBe('evaluate');
    held.end(1);
    await settle();
    held.end(1);
    await run;
    expect(checkpointed.map((w) => w[0].data[0])).toEqual(read.map((w) => w[0].data[0]));
    expect(checkpointed[1][0].data[0]).not.toBe(checkpointed[2][0].data[0]);
    read.forEach((w, i) => w.forEach((t, k) => expect(sameBits(t.data, checkpointed[i][k].data), `round ${i} ${t.name}`).toBe(true)));
  });

  it('a signal while round r+1 trains: round r\'s running evaluation still appends its record', async () => {
    const held = heldEvaluations();
    const { loop, registry, conns, events } = setup({ evaluate: held.evaluate });
    const ac = new AbortController();
    const run = loop.run(ac.signal);
    await settle();
    held.end(1);
    for (const [s, c] of conns.entries()) loop.onUpdate(registry.bySlot(s)!, update(tasksOf(c).at(-1)!));
    await settle();
    expect(events.at(-1)).toBe('evaluate'); // round 1's, while round 2 trains
    ac.abort('SIGTERM');
    await settle();
    expect(held.running()).toBe(1);
    held.end(1);
    await expect(run).rejects.toMatchObject({ code: 'FEDSLICE_ERR_INTERRUPTED' });
    expect(events.filter((e) => e.startsWith('record'))).toEqual(['record 0', 'record 1']);
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
