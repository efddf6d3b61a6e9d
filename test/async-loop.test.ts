// AsyncLoop alone, on fake timers, with in-memory trainer connections: which task each trainer
// holds, how updates are checked and applied, what each evaluation records, timeouts and Ctrl-C.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AsyncLoop } from '../aggregator/async-loop.ts';
import { FedAvgRule } from '../core/aggregation/rules.ts';
import { parseExperiment } from '../core/config.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import type { Weights } from '../core/model/tensor.ts';
import type { MessageOf } from '../core/wire/schema.ts';
import { testConfig } from './helpers/experiment.ts';
import { fakeLoop, type FakeConn } from './helpers/fake-loop.ts';

type TaskMessage = MessageOf<'task'>;
type UpdateMessage = MessageOf<'update'>;

const JOB = 'async-unit';

function setup(o: { evalEvery?: number; roundTimeoutS?: number; rounds?: number } = {}) {
  const config = parseExperiment(
    testConfig({
      dataDir: 'unused',
      name: JOB,
      worldSize: 2,
      mode: 'async',
      rounds: o.rounds ?? 2,
      roundTimeoutS: o.roundTimeoutS ?? 5,
      async: { mixing: 0.5, staleness: { fn: 'polynomial', a: 1 }, evalEvery: o.evalEvery ?? 1 },
    }),
  );
  const layers = alexnetLayers(config.model);
  const start = initialWeights(layers, config.seed);
  const f = fakeLoop(config);
  const loop = new AsyncLoop(f.ctx, new FedAvgRule(layers), { weights: start, firstRound: 0, totals: { elapsedSeconds: 0, samplesSeen: 0, updatesApplied: 0, version: 0 }, unrecorded: null });
  return { loop, ...f, start };
}

function lastTask(c: FakeConn): TaskMessage {
  const tasks = c.inbox.filter((m): m is TaskMessage => m.type === 'task');
  const t = tasks.at(-1);
  if (!t) throw new Error('no task sent');
  return t;
}

/** An update answering `task` whose delta is `value` everywhere. */
function update(task: TaskMessage, value: number, change: Partial<UpdateMessage> = {}): UpdateMessage {
  return {
    type: 'update',
    job: JOB,
    round: task.round,
    ...(task.seq !== undefined ? { seq: task.seq } : {}),
    ...(task.version !== undefined ? { version: task.version } : {}),
    rank: task.rank,
    numSamples: 100,
    metrics: { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 100, steps: 1 },
    delta: task.weights.map((w) => ({ ...w, data: new Float32Array(w.data.length).fill(value) })),
    ...change,
  };
}

const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('AsyncLoop', () => {
  it('applies each update once, weighted by staleness; tasks carry seq, version and the open round', async () => {
    const { loop, registry, conns, drafts, start } = setup();
    const t = (slot: number) => registry.bySlot(slot)!;
    const run = loop.run(new AbortController().signal);
    await settle();
    expect(drafts.map((d) => [d.round, d.version, d.updates.length])).toEqual([[0, 0, 0]]);
    const first = conns.map(lastTask);
    expect(first.map((x) => [x.mode, x.round, x.seq, x.version])).toEqual([['async', 1, 1, 0], ['async', 1, 1, 0]]);

    expect(loop.onUpdate(t(0), update(first[0], 1))).toBeNull(); // staleness 0: + 0.5 x 1
    await settle();
    const second0 = lastTask(conns[0]);
    expect(second0).toMatchObject({ round: 2, seq: 2, version: 1 });
    // the same update again, an answer to a task it does not hold, another job's update
    expect(loop.onUpdate(t(0), update(first[0], 1))).toBe('version 0 is not the version 1 this trainer was given');
    expect(loop.onUpdate(t(0), update(second0, 1, { seq: 5 }))).toBe('task 5 is not the task 2 this trainer holds');
    expect(loop.onUpdate(t(0), update(second0, 1, { job: 'other' }))).toBe(`job other is not ${JOB}`);
    expect(loop.onUpdate(t(1), update(first[1], 2, { rank: 0 }))).toBe('rank 0 is not the rank 1 this trainer was given');

    expect(loop.onUpdate(t(1), update(first[1], 2))).toBeNull(); // staleness 1: + 0.5/2 x 2
    await settle();
    expect(loop.onUpdate(t(1), update(first[1], 2))).toMatch(/version 0 is not the version 2/);
    expect(loop.onUpdate(t(0), update(second0, 3))).toBeNull(); // staleness 1: + 0.25 x 3
    await settle();
    expect(loop.onUpdate(t(1), update(lastTask(conns[1]), 4))).toBeNull(); // staleness 1: + 0.25 x 4
    const final: Weights = await run;

    for (const [i, w] of final.entries()) {
      for (let j = 0; j < w.data.length; j += Math.max(1, Math.floor(w.data.length / 16))) expect(w.data[j] - start[i].data[j]).toBeCloseTo(2.75, 4);
    }
    expect(drafts.map((d) => [d.round, d.version, d.updates.map((u) => u.staleness)])).toEqual([[0, 0, []], [1, 1, [0]], [2, 2, [1]], [3, 3, [1]], [4, 4, [1]]]);
    // the budget is spent: nobody holds a task any more
    expect(conns.map((c) => c.inbox.filter((m) => m.type === 'task').length)).toEqual([2, 2]);
    expect(loop.summary()).toMatchObject({ updatesReceived: 4, updatesRefused: 5, tasksLost: 0, finalVersion: 4, 'updates.slot0': 2, 'updates.slot1': 2 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a trainer that leaves loses its task; when it returns it gets the next one', async () => {
    const { loop, registry, conns, drafts } = setup({ evalEvery: 2 });
    const run = loop.run(new AbortController().signal);
    await settle();
    const lost = lastTask(conns[1]);
    registry.leave(conns[1]);
    loop.onLeave(registry.bySlot(1)!);
    expect(loop.onUpdate(registry.bySlot(1)!, update(lost, 1))).toBe('slot 1 holds no task (a duplicate or late update)');
    const back = registry.join('t1', conns[1]).holder;
    loop.onJoin(back);
    expect(lastTask(conns[1])).toMatchObject({ seq: 2, version: 0 });
    for (let i = 0; i < 2; i++) {
      expect(loop.onUpdate(registry.bySlot(0)!, update(lastTask(conns[0]), 1))).toBeNull();
      expect(loop.onUpdate(back, update(lastTask(conns[1]), 1))).toBeNull();
      await settle();
    }
    await run;
    expect(drafts.map((d) => [d.round, d.updates.length])).toEqual([[0, 0], [1, 2], [2, 2]]);
    expect(loop.summary()).toMatchObject({ tasksLost: 1, updatesReceived: 4 });
  });

  it('fails with one clear line when no update arrives within roundTimeoutS', async () => {
    const { loop } = setup({ roundTimeoutS: 5 });
    const run = loop.run(new AbortController().signal);
    const failed = expect(run).rejects.toMatchObject({ code: 'FEDSLICE_ERR_ROUND_TIMEOUT', message: expect.stringMatching(/no update arrived within roundTimeoutS=5s \(0 of 4 applied, 0 trainers disconnected\)/) });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await failed;
  });

  it('a signal stops the wait at once and leaves no timer', async () => {
    const { loop } = setup({ roundTimeoutS: 3600 });
    const ac = new AbortController();
    const run = loop.run(ac.signal);
    await settle();
    ac.abort('SIGINT');
    await expect(run).rejects.toMatchObject({ code: 'FEDSLICE_ERR_INTERRUPTED', message: 'interrupted by SIGINT' });
    expect(vi.getTimerCount()).toBe(0);
  });
});
