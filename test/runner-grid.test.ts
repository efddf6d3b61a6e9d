// The sweep grid (product order, skip rules, validation, the shipped configs), the scheduler
// that decides how many runs go at once, and --dry-run over the real CLI.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSweep, readJsonFile, type SweepFile } from '../core/config.ts';
import { expandSweep } from '../runner/grid.ts';
import { runPool } from '../runner/pool.ts';
import { scheduleFor } from '../runner/local-executor.ts';
import { describeBudget, threadBudget } from '../runner/thread-budget.ts';
import { REPO, startRole, tempDir, writeJson } from './helpers/roles.ts';

const base = { dataset: { name: 'synthetic' }, model: { width: 0.125, numClasses: 10 }, federation: { rounds: 2 } };
const sweepOf = (grid: Record<string, unknown[]>, skip: Record<string, unknown>[] = []): SweepFile => parseSweep({ name: 't', base, grid, skip });
const shipped = (name: string) => expandSweep(parseSweep(readJsonFile(join(REPO, 'configs', name)), name), name);

describe('expandSweep', () => {
  it('takes the cartesian product in the grid key order and leaves out runs matching a skip entry', () => {
    const runs = expandSweep(
      sweepOf({ 'federation.worldSize': [1, 2], 'federation.swap': [false, true], seed: [7, 8] }, [{ 'federation.worldSize': 1, 'federation.swap': true }]),
    );
    expect(runs.map((r) => [r.config.federation.worldSize, r.config.federation.swap, r.config.seed])).toEqual([
      [1, false, 7],
      [1, false, 8],
      [2, false, 7],
      [2, false, 8],
      [2, true, 7],
      [2, true, 8],
    ]);
    expect(runs.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Set(runs.map((r) => r.key)).size).toBe(6);
    expect(runs[4].point).toEqual({ 'federation.worldSize': 2, 'federation.swap': true, seed: 7 });
    // The rest of the base stays as given; defaults fill what neither sets.
    expect(runs.every((r) => r.config.model.width === 0.125 && r.config.federation.rounds === 2 && r.config.dataset.name === 'synthetic')).toBe(true);
  });

  it('matches skip entries against base values too, and needs every pair of an entry to match', () => {
    const runs = expandSweep(sweepOf({ 'federation.worldSize': [1, 2], seed: [1, 2] }, [{ 'federation.rounds': 2, seed: 2 }, { 'federation.worldSize': 2, 'federation.rounds': 99 }]));
    expect(runs.map((r) => [r.config.federation.worldSize, r.config.seed])).toEqual([
      [1, 1],
      [2, 1],
    ]);
  });

  it('does not let one run change another (the base is copied per run)', () => {
    const runs = expandSweep(sweepOf({ 'train.learningRate': [0.1, 0.2] }));
    expect(runs.map((r) => r.config.train.learningRate)).toEqual([0.1, 0.2]);
  });

  it('names the run and every bad field of an invalid point', () => {
    expect(() => expandSweep(sweepOf({ 'federation.worldSize': [0], 'train.learningRate': [-1] }), 'my.json')).toThrow(
      /^my.json run worldSize=0 learningRate=-1: invalid config: federation.worldSize: Too small.*; train.learningRate: Too small/,
    );
    expect(() => expandSweep(sweepOf({ 'federation.worldSize': [2, 0], 'train.learningRate': [-1] }), 'my.json')).toThrow(
      /^2 runs are invalid; first: my.json run worldSize=2 learningRate=-1: invalid config: train.learningRate/,
    );
    expect(() => expandSweep(sweepOf({ 'federation.nope': [1] }), 'my.json')).toThrow(/^my.json run nope=1: invalid config: federation: Unrecognized key: "nope"/);
  });

  it('refuses, before anything runs, a world size that does not divide every layer', () => {
    expect(() => expandSweep(sweepOf({ 'federation.worldSize': [2, 3] }), 'my.json')).toThrow(/^my.json run worldSize=3: federation.worldSize 3 does not divide conv5/);
    expect(expandSweep(sweepOf({ 'federation.worldSize': [3], 'federation.mode': ['fedavg'] }))).toHaveLength(1); // fedavg does not slice
  });

  it('refuses a grid path through a value that is not an object', () => {
    expect(() => expandSweep(sweepOf({ 'model.width.x': [1] }), 'my.json')).toThrow(/sweep grid path model.width.x: width is not an object/);
  });

  it('refuses two grid points that are the same experiment', () => {
    expect(() => expandSweep(sweepOf({ seed: [3, 3] }), 'my.json')).toThrow(/runs 0 and 1 are the same experiment/);
  });
});

describe('shipped sweep files', () => {
  it('reference.json is the reference grid: 63 runs, full width CIFAR-100, no W=1 swap', () => {
    const runs = shipped('reference.json');
    expect(runs).toHaveLength(63);
    expect(new Set(runs.map((r) => r.key)).size).toBe(63);
    expect(runs.some((r) => r.config.federation.worldSize === 1 && r.config.federation.swap)).toBe(false);
    expect(new Set(runs.map((r) => r.config.federation.worldSize))).toEqual(new Set([1, 2, 4, 8]));
    expect(runs.every((r) => r.config.model.width === 1 && r.config.dataset.name === 'cifar100' && r.config.federation.rounds === 10 && r.config.train.epochs === 3)).toBe(true);
  });

  it('smoke.json is a small synthetic grid: W 1-2, two learning rates, swap on/off, 3 rounds of whole epochs, 2 seeds', () => {
    const runs = shipped('smoke.json');
    expect(runs).toHaveLength(12);
    expect(new Set(runs.map((r) => r.config.federation.worldSize))).toEqual(new Set([1, 2]));
    expect(new Set(runs.map((r) => r.config.train.learningRate)).size).toBe(2);
    expect(new Set(runs.map((r) => r.config.seed)).size).toBe(2);
    expect(runs.every((r) => r.config.dataset.name === 'synthetic' && r.config.model.width === 0.0625 && r.config.model.numClasses === 10 && r.config.federation.rounds === 3)).toBe(true);
    expect(runs.every((r) => r.config.model.init === 'kaiming' && r.config.train.maxStepsPerEpoch === undefined && !r.config.train.augment)).toBe(true);
  });

  it('sync-vs-async.json is W 1, 2, 4, 8 in fedavg and async mode with one simulated straggler', () => {
    const runs = shipped('sync-vs-async.json');
    expect(runs).toHaveLength(8);
    expect(runs.map((r) => `${r.config.federation.worldSize}/${r.config.federation.mode}`).sort()).toEqual(
      ['1/async', '1/fedavg', '2/async', '2/fedavg', '4/async', '4/fedavg', '8/async', '8/fedavg'],
    );
    expect(runs.every((r) => r.config.dataset.name === 'synthetic' && r.config.federation.stragglers?.[0]?.slot === 0)).toBe(true);
  });

  it('cifar100-cpu.json is CIFAR-100 at width 1/8 on a fraction of the data, W dividing every layer', () => {
    const runs = shipped('cifar100-cpu.json');
    expect(runs.length).toBeGreaterThan(0);
    expect(runs.every((r) => r.config.dataset.name === 'cifar100' && r.config.model.width === 0.125 && r.config.dataset.fraction < 1)).toBe(true);
    expect(runs.every((r) => [1, 2, 4].includes(r.config.federation.worldSize))).toBe(true);
  });

  it('--dry-run lists the 63 reference runs and runs nothing', async () => {
    const results = join(tempDir('fedslice-dry-'), 'results');
    const s = startRole('dry', ['runner', 'sweep', '--config', 'configs/reference.json', '--results', results, '--dry-run'], { CI: 'true' });
    expect((await s.exited).code).toBe(0);
    const out = s.output();
    expect(out).toMatch(/^sweep reference: 63 runs, 0 already completed in .*, 63 to run$/m);
    expect(out.match(/^\d+ +pending +worldSize=/gm)).toHaveLength(63);
    expect(out).toMatch(/^63 +pending +worldSize=8 learningRate=0.001 swap=true rounds=10 seed=77 +ws8_lr0.001_swap1_/m);
  });

  it('a bad --parallel gets one clear line', async () => {
    const s = startRole('bad', ['runner', 'sweep', '--config', 'configs/smoke.json', '--parallel', '0', '--dry-run']);
    expect((await s.exited).code).not.toBe(0);
    expect(s.output()).toMatch(/--parallel must be an integer >= 1, got "0"/);
  });

  it('an unreadable sweep file gets one clear line', async () => {
    const missing = join(tempDir('fedslice-dry-'), 'nope.json');
    const s = startRole('missing', ['runner', 'sweep', '--config', missing, '--dry-run']);
    expect((await s.exited).code).toBe(1);
    expect(s.output().trim()).toMatch(/^fedslice: error: cannot read .*nope.json: ENOENT; check the path$/);
  });

  it('a sweep file with an unknown top-level field is refused', async () => {
    const file = writeJson(join(tempDir('fedslice-dry-'), 'x.json'), { name: 'x', base: {}, grid: {}, extra: 1 });
    const s = startRole('extra', ['runner', 'sweep', '--config', file, '--dry-run']);
    expect((await s.exited).code).toBe(1);
    expect(s.output()).toMatch(/x.json: invalid config: .*extra/);
  });
});

describe('scheduling', () => {
  const run = (worldSize: number) => expandSweep(sweepOf({ 'federation.worldSize': [worldSize] }))[0];

  it('by default fits runs to the cores at one core per trainer; --parallel N counts runs', () => {
    const d = scheduleFor(undefined, [run(1)], 2, {});
    expect(d.capacity).toBe(2);
    expect([1, 2, 4].map((w) => d.cost(run(w)))).toEqual([1, 2, 4]);
    const n = scheduleFor(3, [run(1)], 2, {});
    expect(n.capacity).toBe(3);
    expect(n.cost(run(4))).toBe(1);
  });

  it('shares the cores among the trainers at once, leaving the aggregators what is free, unless FEDSLICE_WASM_THREADS fixes them', () => {
    const threads = (parallel: number | undefined, widths: number[], cores: number) => scheduleFor(parallel, widths.map(run), cores, {}).threads;
    // one run alone on the machine: its trainers split every core
    expect(threads(undefined, [1], 2)).toMatchObject({ trainer: 2, aggregator: 1, trainersAtOnce: 1 });
    expect(threads(undefined, [2], 8)).toMatchObject({ trainer: 4, aggregator: 1 });
    expect(threadBudget(8, 8, [{ trainers: 3, cost: 3 }])).toMatchObject({ trainer: 2, aggregator: 2 });
    expect(threadBudget(64, 64, [{ trainers: 1, cost: 1 }])).toMatchObject({ trainer: 8, aggregator: 8 });
    // the smoke sweep's shape on 2 cores: two W=1 runs or one W=2 run at a time, one core per trainer
    expect(threads(undefined, [1, 1, 2, 2, 2, 2], 2)).toMatchObject({ trainer: 1, aggregator: 1, trainersAtOnce: 2 });
    // --parallel 2 with W=1 and W=2 runs: two W=2 runs can go together
    expect(threads(2, [1, 2, 1, 2], 8)).toMatchObject({ trainer: 2, aggregator: 1, trainersAtOnce: 4, runsAtOnce: 2 });
    expect(threads(1, [1, 1], 8)).toMatchObject({ trainer: 8, aggregator: 1 });
    // wider than the machine: one thread each, never none
    expect(threads(undefined, [4], 2)).toMatchObject({ trainer: 1, aggregator: 1, trainersAtOnce: 4 });
    const fixed = scheduleFor(undefined, [run(1)], 2, { FEDSLICE_WASM_THREADS: '1' });
    expect(fixed.threads).toBeUndefined();
    expect(fixed.describe).toMatch(/FEDSLICE_WASM_THREADS=1 for every role/);
  });

  it('runs an aggregator at a low priority when its trainers take every core, unless FEDSLICE_AGGREGATOR_NICE fixes it', () => {
    const nice = (parallel: number | undefined, widths: number[], cores: number, env: NodeJS.ProcessEnv = {}) => scheduleFor(parallel, widths.map(run), cores, env).threads?.aggregatorNice;
    // a W=1 run alone on 2 cores: the trainer has both, the aggregator evaluates in what it leaves idle
    expect(nice(undefined, [1], 2)).toBe(10);
    expect(nice(1, [1, 1], 8)).toBe(10);
    expect(nice(undefined, [1, 1, 2, 2, 2, 2], 2)).toBe(10);
    // a core left over for the aggregator: its own priority
    expect(threadBudget(8, 8, [{ trainers: 3, cost: 3 }]).aggregatorNice).toBe(0);
    expect(threadBudget(64, 64, [{ trainers: 1, cost: 1 }]).aggregatorNice).toBe(0);
    // two runs at once on 8 cores with 6 trainers: 2 free cores, one per aggregator
    expect(threadBudget(8, 8, [{ trainers: 3, cost: 3 }, { trainers: 3, cost: 3 }])).toMatchObject({ trainer: 1, aggregatorNice: 0 });
    // the sweep's own value goes to the aggregators as it is (0 turns the lever off)
    expect(nice(undefined, [1], 2, { FEDSLICE_AGGREGATOR_NICE: '0' })).toBe(0);
    expect(describeBudget(scheduleFor(undefined, [run(1)], 2, {}).threads!)).toMatch(/1 per aggregator at nice 10/);
  });

  /** Jobs that finish when the test says so; records what ran at once. */
  function controlled() {
    const started: string[] = [];
    const finishers = new Map<string, () => void>();
    let inFlight = 0;
    let peak = 0;
    const work = (item: { id: string }) =>
      new Promise<void>((resolve) => {
        started.push(item.id);
        inFlight++;
        peak = Math.max(peak, inFlight);
        finishers.set(item.id, () => {
          inFlight--;
          resolve();
        });
      });
    const settle = () => new Promise<void>((r) => setImmediate(r));
    return { started, finish: async (id: string) => (finishers.get(id)!(), settle()), work, peak: () => peak, settle };
  }

  it('starts jobs in queue order while their cost fits, and a wide job waits at the head until it fits', async () => {
    const c = controlled();
    const items = [
      { id: 'a', cost: 1 },
      { id: 'b', cost: 2 },
      { id: 'c', cost: 1 },
      { id: 'd', cost: 5 },
    ];
    const done = runPool(items, { capacity: 2, cost: (i) => i.cost }, c.work);
    await c.settle();
    expect(c.started).toEqual(['a']); // b needs 2 cores; c must not overtake it
    await c.finish('a');
    expect(c.started).toEqual(['a', 'b']);
    await c.finish('b');
    expect(c.started).toEqual(['a', 'b', 'c']);
    await c.finish('c');
    expect(c.started).toEqual(['a', 'b', 'c', 'd']); // wider than the machine: runs alone
    await c.finish('d');
    await done;
    expect(c.peak()).toBe(1);
  });

  it('runs up to capacity at once and starts nothing new once aborted', async () => {
    const c = controlled();
    const ac = new AbortController();
    const items = ['a', 'b', 'c', 'd'].map((id) => ({ id }));
    const done = runPool(items, { capacity: 2, cost: () => 1, signal: ac.signal }, c.work);
    await c.settle();
    expect(c.started).toEqual(['a', 'b']);
    ac.abort();
    await c.finish('a');
    await c.finish('b');
    await done;
    expect(c.started).toEqual(['a', 'b']);
    expect(c.peak()).toBe(2);
  });

  it('rethrows a job that throws, after the others end, and starts no more', async () => {
    const started: string[] = [];
    const p = runPool([{ id: 'a' }, { id: 'b' }, { id: 'c' }], { capacity: 1, cost: () => 1 }, async (i) => {
      started.push(i.id);
      if (i.id === 'a') throw new Error('boom');
    });
    await expect(p).rejects.toThrow('boom');
    expect(started).toEqual(['a']);
  });
});
