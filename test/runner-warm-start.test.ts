// Warm start over real processes: the next run's roles start ahead, held, and the sweep starts
// them with a word. A warm sweep computes what a cold one does, and no held spare outlives the
// sweep however it ends (normal end, Ctrl-C, a SIGKILLed runner).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { readGo } from '../core/warm-start.ts';
import { makeTestData, writeSweep } from './helpers/experiment.ts';
import { jsonl, startRole, stopAll, tempDir } from './helpers/roles.ts';

let dir: string;
let dataDir: string;

beforeAll(() => {
  dir = tempDir('fedslice-warm-');
  dataDir = makeTestData(dir);
});
afterEach(() => stopAll());

function sweepFile(name: string, grid: Record<string, unknown[]>, steps: number, rounds: number): string {
  return writeSweep(dir, { dataDir, name, grid, steps, rounds });
}

function sweep(file: string, results: string, extra: string[] = []) {
  return startRole('runner', ['runner', 'sweep', '--config', file, '--results', results, '--parallel', '1', ...extra], { CI: 'true' });
}

function processesMentioning(marker: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return ps.split('\n').filter((l) => l.includes(marker) && !l.includes(' ps -eo'));
}

const logOf = (results: string, key: string, role = 'aggregator') => {
  try {
    return readFileSync(join(results, 'logs', key, `${role}.log`), 'utf8');
  } catch {
    return '';
  }
};

/** Polls (the spare's log is a file the runner does not watch) until `ok` holds, for at most `ms`. */
async function until(ok: () => boolean, ms = 60_000): Promise<void> {
  for (let waited = 0; !ok() && waited < ms; waited += 100) await new Promise((r) => setTimeout(r, 100));
}

/** Each key's round figures, in round order: what a run computed. */
function figures(results: string): Map<string, number[][]> {
  const runs = jsonl<RunRecord>(join(results, 'runs.jsonl')).filter((r) => r.status === 'completed');
  const rounds = jsonl<RoundRecord>(join(results, 'rounds.jsonl'));
  return new Map(runs.map((r) => [r.key, rounds.filter((x) => x.runId === r.runId).map((x) => [x.round, x.testAccuracy, x.testLoss, x.trainLoss ?? NaN])]));
}

describe('readGo', () => {
  it('is true at a line "go", however the bytes arrive, and false when the stream ends first', async () => {
    const a = new PassThrough();
    const go = readGo(a);
    a.write('g');
    a.write('o\n');
    expect(await go).toBe(true);
    const b = new PassThrough();
    const closed = readGo(b);
    b.end('go'); // no newline: not a whole line
    expect(await closed).toBe(false);
  });
});

describe('runner sweep, warm start', () => {
  it('starts every later run from held roles, computes what a cold sweep does, and leaves no process behind', async () => {
    const file = sweepFile('warm', { 'federation.worldSize': [1, 2], seed: [1, 2] }, 3, 2);
    const warm = join(dir, 'results-warm');
    const cold = join(dir, 'results-cold');
    const w = sweep(file, warm);
    expect((await w.exited).code).toBe(0);
    expect(processesMentioning(warm)).toEqual([]);
    const c = sweep(file, cold, ['--no-warm-start']);
    expect((await c.exited).code).toBe(0);
    expect(processesMentioning(cold)).toEqual([]);

    const started = [...w.output().matchAll(/^\S+ start (\S+)/gm)].map((m) => m[1]);
    expect(started).toHaveLength(4);
    // every run but the first was started ahead (one spare set, warmed during its predecessor's last round)
    expect([...w.output().matchAll(/^\S+ warm {2}(\S+):/gm)].map((m) => m[1])).toEqual(started.slice(1));
    for (const key of started.slice(1)) {
      for (const role of ['aggregator', 'trainer-0']) expect(logOf(warm, key, role)).toMatch(/^fedslice: started ahead of the run[^\n]*\nfedslice: go$/m);
    }
    expect(c.output()).not.toMatch(/ warm /);
    for (const key of started) expect(logOf(cold, key)).not.toMatch(/fedslice: go/);

    const [a, b] = [figures(warm), figures(cold)];
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [key, rounds] of a) expect(rounds, key).toEqual(b.get(key));
  });

  it('on Ctrl-C ends the held roles of the next run, which never touch the store', async () => {
    const file = sweepFile('warm-ctrlc', { seed: [1, 2] }, 40, 1);
    const results = join(dir, 'results-warm-ctrlc');
    const s = sweep(file, results);
    const [, next] = await s.waitFor(/ warm {2}(\S+):/);
    await until(() => /started ahead/.test(logOf(results, next)));
    expect(logOf(results, next)).toMatch(/started ahead/);
    s.child.kill('SIGINT');
    expect((await s.exited).code).toBe(130);
    expect(processesMentioning(results)).toEqual([]);
    expect(jsonl<RunRecord>(join(results, 'runs.jsonl')).filter((r) => r.key === next)).toEqual([]);
  });

  it('held roles whose runner is SIGKILLed exit on their own', async () => {
    const file = sweepFile('warm-killed', { seed: [1, 2] }, 40, 1);
    const results = join(dir, 'results-warm-killed');
    const s = sweep(file, results);
    const [, next] = await s.waitFor(/ warm {2}(\S+):/);
    await until(() => /started ahead/.test(logOf(results, next)));
    s.child.kill('SIGKILL');
    await s.exited;
    await until(() => processesMentioning(results).length === 0);
    expect(processesMentioning(results)).toEqual([]);
    expect(jsonl<RunRecord>(join(results, 'runs.jsonl')).filter((r) => r.key === next)).toEqual([]);
  });
});
