// The sweep runner over real processes: completes and resumes, survives Ctrl-C with nothing left
// running, records a crashed run and carries on, and shares a results directory safely.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { startRole, stopAll, tempDir, writeJson, jsonl } from './helpers/roles.ts';
import { makeTestData, writeSweep } from './helpers/experiment.ts';
import { parseSweep, readJsonFile } from '../core/config.ts';
import { expandSweep } from '../runner/grid.ts';
import { scheduleFor } from '../runner/local-executor.ts';
import { describeBudget } from '../runner/thread-budget.ts';

let dir: string;
let dataDir: string;

beforeAll(() => {
  dir = tempDir('fedslice-runner-');
  dataDir = makeTestData(dir);
});
afterEach(() => stopAll());

/** A tiny sweep over the test data; `steps` caps each epoch (0: leave it to the grid). */
function sweepFile(name: string, grid: Record<string, unknown[]>, steps = 3, rounds = 2): string {
  return writeSweep(dir, { dataDir, name, grid, steps, rounds, skip: [{ 'federation.worldSize': 1, 'federation.swap': true }] });
}

function sweep(file: string, results: string, extra: string[] = []) {
  return startRole('runner', ['runner', 'sweep', '--config', file, '--results', results, ...extra], { CI: 'true' });
}

/** Processes whose command line mentions `marker` (our temp dir): what a sweep left behind. */
function processesMentioning(marker: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return ps.split('\n').filter((l) => l.includes(marker) && !l.includes(' ps -eo'));
}

/** Rounds per key across all its runs: each round exactly once, and all of them. */
function checkRoundsOnce(results: string, rounds: number): void {
  const runs = jsonl<RunRecord>(join(results, 'runs.jsonl'));
  const records = jsonl<RoundRecord>(join(results, 'rounds.jsonl'));
  const completed = new Map<string, string>();
  for (const r of runs) if (r.status === 'completed') {
    expect(completed.has(r.key), `${r.key} completed twice`).toBe(false);
    completed.set(r.key, r.runId);
  }
  for (const runId of completed.values()) {
    expect(records.filter((r) => r.runId === runId).map((r) => r.round)).toEqual(Array.from({ length: rounds + 1 }, (_, i) => i));
  }
}

describe('runner sweep', () => {
  it('runs a 4-run sweep, writes every round, and does nothing the second time', async () => {
    const file = sweepFile('four', { 'federation.worldSize': [1, 2], seed: [1, 2] });
    const results = join(dir, 'results-four');
    const dry = sweep(file, results, ['--dry-run']);
    expect((await dry.exited).code).toBe(0);
    expect(dry.output()).toMatch(/sweep four: 4 runs, 0 already completed in .*, 4 to run/);

    const first = sweep(file, results, ['--parallel', '2']);
    expect((await first.exited).code).toBe(0);
    expect(first.output()).toMatch(/completed now\s+4/);
    // Readiness and progress come from the aggregator's status through the metaserver.
    expect(first.output().match(/ready \S+: aggregator waiting for (1 trainer|2 trainers)$/gm)).toHaveLength(4);
    expect(first.output().match(/round \S+: 2\/2 recorded/g)).toHaveLength(4);
    checkRoundsOnce(results, 2);
    // Each role computed with its share of the cores, as the runner's budget gives it (a role
    // started by hand would have taken every core).
    const budget = scheduleFor(2, expandSweep(parseSweep(readJsonFile(file), file), file), availableParallelism(), {}).threads!;
    expect(first.output()).toContain(describeBudget(budget));
    expect(new Set(jsonl<RunRecord>(join(results, 'runs.jsonl')).map((r) => r.environment.threads))).toEqual(new Set([budget.aggregator]));
    const trained = jsonl<RoundRecord>(join(results, 'rounds.jsonl')).flatMap((r) => r.trainers ?? []);
    expect(trained.length).toBeGreaterThan(0);
    expect(new Set(trained.map((t) => t.threads))).toEqual(new Set([budget.trainer]));
    for (const key of jsonl<RunRecord>(join(results, 'runs.jsonl')).map((r) => r.key)) {
      expect(readFileSync(join(results, 'logs', key, 'aggregator.log'), 'utf8')).toMatch(/completed/);
      expect(readFileSync(join(results, 'logs', key, 'trainer-0.log'), 'utf8')).toMatch(/run completed/);
    }

    const second = sweep(file, results);
    expect((await second.exited).code).toBe(0);
    expect(second.output()).toMatch(/all 4 runs are already completed .*; nothing to do/);
    expect(jsonl<RunRecord>(join(results, 'runs.jsonl'))).toHaveLength(8); // started + completed, 4 times
  });

  it('on SIGINT ends every child, records the run as interrupted, and the next sweep finishes only what is missing', async () => {
    const file = sweepFile('ctrlc', { 'federation.worldSize': [2], seed: [1, 2] }, 8, 2);
    const results = join(dir, 'results-ctrlc');
    const first = sweep(file, results, ['--parallel', '1']);
    await first.waitFor(/round \S+: 1\/2 recorded/);
    first.child.kill('SIGINT');
    const { code } = await first.exited;
    expect(code).toBe(130);
    expect(first.output()).toMatch(/interrupted: run it again to finish/);
    expect(processesMentioning(results)).toEqual([]);
    const runs = jsonl<RunRecord>(join(results, 'runs.jsonl'));
    expect(runs.at(-1)!.status).toBe('interrupted');

    const second = sweep(file, results, ['--parallel', '1']);
    expect((await second.exited).code).toBe(0);
    expect(second.output()).toMatch(/completed now\s+2/);
    expect(readFileSync(join(results, 'logs', runs[0].key, 'aggregator.log'), 'utf8')).toMatch(/resuming run \S+ after round [12]/);
    checkRoundsOnce(results, 2);
    expect(processesMentioning(results)).toEqual([]);
  });

  it('records a run whose trainer crashes as failed, with the reason, and finishes the others', async () => {
    // The victim trains long enough to be killed mid-round; the survivor is quick.
    const file = sweepFile('crash', { 'federation.worldSize': [1], 'train.maxStepsPerEpoch': [40, 2] }, 0, 1);
    const results = join(dir, 'results-crash');
    const s = sweep(file, results, ['--parallel', '1']);
    const [, key] = await s.waitFor(/start (\S+)/);
    await s.waitFor(new RegExp(`round ${key}: 0/1 recorded`));
    const victim = processesMentioning(`--id ${key}-t0`).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(victim).toHaveLength(1);
    process.kill(victim[0], 'SIGKILL');
    expect((await s.exited).code).toBe(1);
    expect(s.output()).toMatch(/completed now\s+1/);
    expect(s.output()).toMatch(new RegExp(`failed ${key}: trainer 0 exited with SIGKILL`));
    const failed = jsonl<RunRecord>(join(results, 'runs.jsonl')).filter((r) => r.key === key).at(-1)!;
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/trainer 0 exited with SIGKILL/);
    expect(failed.logTail!.some((l) => l.startsWith('aggregator: '))).toBe(true);
    expect(processesMentioning(results)).toEqual([]);
  });

  it('two sweeps on one results directory run each run once and keep every line whole', async () => {
    const file = sweepFile('twice', { 'federation.worldSize': [1], seed: [1, 2] }, 2, 1);
    const results = join(dir, 'results-twice');
    const a = sweep(file, results, ['--parallel', '1']);
    const b = sweep(file, results, ['--parallel', '1']);
    const codes = await Promise.all([a.exited, b.exited]);
    expect(codes.map((c) => c.code)).toEqual([0, 0]);
    for (const f of ['runs.jsonl', 'rounds.jsonl']) {
      const text = readFileSync(join(results, f), 'utf8');
      expect(text.endsWith('\n')).toBe(true);
      for (const line of text.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    }
    checkRoundsOnce(results, 1);
    expect(new Set(jsonl<RunRecord>(join(results, 'runs.jsonl')).filter((r) => r.status === 'completed').map((r) => r.key)).size).toBe(2);
    const ran = (o: string) => Number(o.match(/completed now\s+(\d+)/)![1]);
    const skipped = (o: string) => Number(o.match(/skipped: run by another sweep\s+(\d+)/)![1]);
    expect(ran(a.output()) + ran(b.output())).toBe(2);
    expect(ran(a.output()) + skipped(a.output())).toBe(2);
    expect(ran(b.output()) + skipped(b.output())).toBe(2);
    expect(readdirSync(join(results, 'locks'))).toEqual([]);
  });

  it('ends a run that exceeds --timeout, retries it, and records it as failed', async () => {
    const file = sweepFile('slow', { 'federation.worldSize': [2], seed: [1] }, 200, 1);
    const results = join(dir, 'results-slow');
    const s = sweep(file, results, ['--timeout', '1', '--retries', '1']);
    expect((await s.exited).code).toBe(1);
    expect(s.output()).toMatch(/start \S+ \(attempt 2\)/);
    expect(s.output()).toMatch(/failed ws2\S+: timed out after 1 s \(--timeout\)/);
    expect(processesMentioning(results)).toEqual([]);
  });

  it('a SIGKILLed runner leaves no role behind: the roles notice and stop, recording the run as interrupted', async () => {
    const file = sweepFile('killed', { 'federation.worldSize': [2] }, 50, 2);
    const results = join(dir, 'results-killed');
    const s = sweep(file, results);
    await s.waitFor(/round \S+: 0\/2 recorded/);
    expect(processesMentioning(results).length).toBeGreaterThan(0);
    s.child.kill('SIGKILL');
    await s.exited;
    for (let i = 0; i < 600 && processesMentioning(results).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(processesMentioning(results)).toEqual([]);
    expect(jsonl<RunRecord>(join(results, 'runs.jsonl')).at(-1)!.status).toBe('interrupted');
  });

  it('on a second Ctrl-C exits at once and still leaves no process behind', async () => {
    const file = sweepFile('impatient', { 'federation.worldSize': [2] }, 50, 1);
    const results = join(dir, 'results-impatient');
    const s = sweep(file, results);
    await s.waitFor(/ready \S+: aggregator waiting/);
    s.child.kill('SIGINT');
    await s.waitFor(/Ctrl-C again to kill them at once/);
    s.child.kill('SIGINT');
    expect((await s.exited).code).toBe(130);
    expect(processesMentioning(results)).toEqual([]);
  });

  it('says clearly what is wrong with a bad sweep file', async () => {
    const bad = writeJson(join(dir, 'bad.json'), { name: 'bad', base: {}, grid: { 'federation.worldSize': [0] } });
    const s = sweep(bad, join(dir, 'results-bad'));
    expect((await s.exited).code).toBe(1);
    expect(s.output().trim().split('\n')).toEqual([expect.stringMatching(/^fedslice: error: .*bad.json run worldSize=0: invalid config: federation.worldSize: Too small/)]);
  });

  it('makes a missing synthetic set once, in the runner, before any role starts', async () => {
    const data = join(dir, 'fresh-synthetic');
    const file = writeJson(join(dir, 'fresh.json'), {
      name: 'fresh',
      base: {
        dataset: { name: 'synthetic', dir: data, fraction: 0.02 },
        model: { width: 0.125, numClasses: 10 },
        federation: { rounds: 1, roundTimeoutS: 120 },
        train: { learningRate: 0.001, epochs: 1, maxStepsPerEpoch: 2 },
      },
      grid: { 'federation.worldSize': [2] },
    });
    const results = join(dir, 'results-fresh');
    const s = sweep(file, results);
    expect((await s.exited).code).toBe(0);
    expect(s.output().match(/no synthetic set in .*; generating the default one/g)).toHaveLength(1);
    const logs = readdirSync(join(results, 'logs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.log'));
    expect(logs.length).toBeGreaterThanOrEqual(3);
    for (const log of logs) expect(readFileSync(join(results, 'logs', log), 'utf8')).not.toMatch(/no synthetic set/);
  });

  it('stops before starting any run when CIFAR-100 is not downloaded', async () => {
    const missing = join(dir, 'no-cifar');
    const file = writeJson(join(dir, 'cifar.json'), { name: 'cifar', base: { dataset: { name: 'cifar100', dir: missing } }, grid: { seed: [1, 2] } });
    const results = join(dir, 'results-cifar');
    const s = sweep(file, results);
    expect((await s.exited).code).toBe(1);
    expect(s.output().trim().split('\n')).toEqual([`fedslice: error: CIFAR-100 is not in ${missing} (no train.bin / test.bin); run \`fedslice data download --dir ${missing}\` first`]);
    expect(existsSync(join(results, 'runs.jsonl'))).toBe(false);
  });
});
