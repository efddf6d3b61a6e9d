// `runner sweep --executor slurm` on a real one-node Slurm cluster (slurmctld + slurmd + munged
// started here as root): every run is a Slurm job whose tasks srun places; Ctrl-C leaves no job
// in the queue and no role running; the next sweep finishes only what is missing.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { startRole, stopAll, tempDir, writeJson, jsonl } from './helpers/roles.ts';
import { makeTestData, writeSweep } from './helpers/experiment.ts';
import { slurmUnavailable, startSlurm, type SlurmCluster } from './helpers/slurm.ts';

const unavailable = slurmUnavailable();
if (unavailable) console.warn(`test/slurm.test.ts: ${unavailable}`);

let dir: string;
let dataDir: string;
let cluster: SlurmCluster;

beforeAll(async () => {
  if (unavailable) return;
  dir = tempDir('fedslice-slurm-');
  dataDir = makeTestData(dir);
  cluster = await startSlurm(join(dir, 'cluster'));
});
afterEach(() => stopAll());
afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function sweepFile(name: string, grid: Record<string, unknown[]>, steps: number, rounds: number): string {
  return writeSweep(dir, { dataDir, name, grid, steps, rounds, width: 0.0625 });
}

function sweep(file: string, results: string, extra: string[] = []) {
  return startRole('runner', ['runner', 'sweep', '--config', file, '--results', results, '--executor', 'slurm', ...extra], { ...cluster.env, CI: 'true' });
}

function processesMentioning(marker: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return ps.split('\n').filter((l) => l.includes(marker) && !l.includes(' ps -eo'));
}

/** Every completed run has rounds 0..R exactly once, and no key completed twice. */
function checkRoundsOnce(results: string, rounds: number, keys: number): void {
  const runs = jsonl<RunRecord>(join(results, 'runs.jsonl'));
  const records = jsonl<RoundRecord>(join(results, 'rounds.jsonl'));
  const completed = new Map<string, string>();
  for (const r of runs)
    if (r.status === 'completed') {
      expect(completed.has(r.key), `${r.key} completed twice`).toBe(false);
      completed.set(r.key, r.runId);
    }
  expect(completed.size).toBe(keys);
  for (const [key, runId] of completed) {
    expect(records.filter((r) => r.runId === runId).map((r) => r.round), key).toEqual(Array.from({ length: rounds + 1 }, (_, i) => i));
  }
}

describe.skipIf(unavailable !== null)('runner sweep --executor slurm', () => {
  it('runs a 4-run sweep as Slurm jobs and records every round once', async () => {
    const file = sweepFile('slurm4', { 'federation.worldSize': [1, 2], seed: [1, 2] }, 2, 1);
    const results = join(dir, 'results-four');
    // As on a real cluster: the metaserver on every interface, jobs dial this machine's hostname.
    const s = sweep(file, results, ['--parallel', '2', '--metaserver-host', '0.0.0.0', '--slurm-args', '--time=10 --comment="fedslice test"']);
    expect((await s.exited).code, s.output()).toBe(0);
    expect(s.output()).toMatch(/completed now\s+4/);
    expect(s.output().match(/slurm \S+: job \d+$/gm)).toHaveLength(4);
    expect(s.output().match(/round \S+: 1\/1 recorded/g)).toHaveLength(4);
    expect(s.output().match(/ready \S+: aggregator waiting for (1 trainer|2 trainers)$/gm)).toHaveLength(4);
    checkRoundsOnce(results, 1, 4);
    for (const run of jsonl<RunRecord>(join(results, 'runs.jsonl')).filter((r) => r.status === 'completed')) {
      const key = run.key;
      const W = run.config.federation.worldSize;
      const logs = join(results, 'logs', key);
      expect(readFileSync(join(logs, 'aggregator.log'), 'utf8')).toMatch(/completed/);
      for (let i = 0; i < W; i++) expect(readFileSync(join(logs, `trainer-${i}.log`), 'utf8')).toMatch(/run completed/);
      expect(readFileSync(join(logs, 'slurm.log'), 'utf8')).toMatch(/slurm job \d+ on \S+: aggregator \+ \d trainer/);
      expect(statSync(join(results, 'slurm', `${key}.token`)).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(results, 'slurm', `${key}.sh`), 'utf8')).toContain(`'ws://${hostname()}:`);
    }
    expect(cluster.jobs('fedslice-')).toEqual([]);
    expect(processesMentioning(results)).toEqual([]);
  });

  it('on SIGINT cancels its jobs, leaves nothing running, and the next sweep finishes only what is missing', async () => {
    const file = sweepFile('slurmint', { 'federation.worldSize': [2], seed: [1, 2, 3] }, 4, 2);
    const results = join(dir, 'results-int');
    const first = sweep(file, results, ['--parallel', '2']);
    await first.waitFor(/round \S+: 1\/2 recorded/, 150_000);
    first.child.kill('SIGINT');
    expect((await first.exited).code, first.output()).toBe(130);
    expect(first.output()).toMatch(/cancelling \d Slurm jobs/);
    expect(first.output()).toMatch(/interrupted: run it again to finish/);
    expect(cluster.jobs('fedslice-')).toEqual([]);
    expect(processesMentioning(results)).toEqual([]);

    const before = jsonl<RunRecord>(join(results, 'runs.jsonl'));
    const doneBefore = new Set(before.filter((r) => r.status === 'completed').map((r) => r.key));
    expect(before.some((r) => r.status === 'interrupted')).toBe(true);

    const second = sweep(file, results, ['--parallel', '2']);
    expect((await second.exited).code, second.output()).toBe(0);
    expect(second.output()).toMatch(new RegExp(`completed now\\s+${3 - doneBefore.size}`));
    const after = jsonl<RunRecord>(join(results, 'runs.jsonl')).slice(before.length);
    // The second sweep started only the keys the first did not complete, each once.
    const startedAgain = after.filter((r) => r.status === 'started').map((r) => r.key);
    expect(new Set(startedAgain).size).toBe(startedAgain.length);
    for (const key of startedAgain) expect(doneBefore.has(key)).toBe(false);
    expect(startedAgain.length).toBe(3 - doneBefore.size);
    const resumed = before.find((r) => r.status === 'interrupted')!.key;
    expect(readFileSync(join(results, 'logs', resumed, 'aggregator.log'), 'utf8')).toMatch(/resuming run \S+ after round \d/);
    checkRoundsOnce(results, 2, 3);
    expect(cluster.jobs('fedslice-')).toEqual([]);
    expect(processesMentioning(results)).toEqual([]);
  });

  it("records a run whose aggregator fails with Slurm's state and exit code and the aggregator's error", async () => {
    const file = writeJson(join(dir, 'slurmfail.json'), {
      name: 'slurmfail',
      base: { dataset: { name: 'cifar100', dir: join(dir, 'no-such-data') }, model: { width: 0.0625, numClasses: 10 }, federation: { rounds: 1 }, train: { maxStepsPerEpoch: 1 } },
      grid: { seed: [1] },
    });
    const results = join(dir, 'results-fail');
    const s = sweep(file, results);
    expect((await s.exited).code, s.output()).toBe(1);
    expect(s.output()).toMatch(/failed \S+: slurm job \d+ ended FAILED with exit code 1:0: .*no-such-data/);
    const last = jsonl<RunRecord>(join(results, 'runs.jsonl')).at(-1)!;
    expect(last.status).toBe('failed');
    expect(last.error).toMatch(/slurm job \d+ ended FAILED with exit code 1:0/);
    expect(cluster.jobs('fedslice-')).toEqual([]);
    expect(processesMentioning(results)).toEqual([]);
  });

  it('on a second Ctrl-C exits at once and still cancels its jobs', async () => {
    const file = sweepFile('slurmimpatient', { 'federation.worldSize': [2] }, 50, 1);
    const results = join(dir, 'results-impatient');
    const s = sweep(file, results);
    await s.waitFor(/ready \S+: aggregator waiting/);
    s.child.kill('SIGINT');
    await s.waitFor(/Ctrl-C again to exit at once/);
    s.child.kill('SIGINT');
    expect((await s.exited).code).toBe(130);
    // scancel has been sent; Slurm ends the job's steps in its own time (KillWait).
    const end = Date.now() + 30_000;
    while (Date.now() < end && (cluster.jobs('fedslice-').length || processesMentioning(results).length)) await new Promise((r) => setTimeout(r, 300));
    expect(cluster.jobs('fedslice-')).toEqual([]);
    expect(processesMentioning(results)).toEqual([]);
  });

  it('cancels a job that exceeds --timeout and records the run as failed', async () => {
    const file = sweepFile('slurmslow', { 'federation.worldSize': [1] }, 400, 1);
    const results = join(dir, 'results-slow');
    const s = sweep(file, results, ['--timeout', '3']);
    expect((await s.exited).code, s.output()).toBe(1);
    expect(s.output()).toMatch(/failed \S+: timed out after 3 s \(--timeout\); slurm job \d+ cancelled/);
    expect(cluster.jobs('fedslice-')).toEqual([]);
    expect(processesMentioning(results)).toEqual([]);
  });

  it('says in one line why sbatch refused a job', async () => {
    const file = sweepFile('slurmbad', { seed: [1] }, 1, 1);
    const results = join(dir, 'results-bad');
    const s = sweep(file, results, ['--slurm-args', '--partition=nosuchpartition']);
    expect((await s.exited).code).toBe(1);
    expect(s.output()).toMatch(/failed \S+: sbatch rejected the job: invalid partition specified: nosuchpartition; .*\(check --slurm-args\)$/m);
    expect(existsSync(join(results, 'runs.jsonl'))).toBe(true);
    expect(jsonl<RunRecord>(join(results, 'runs.jsonl')).at(-1)!.error).toMatch(/sbatch rejected the job/);
  });
});

describe('runner sweep --executor slurm without Slurm', () => {
  it('stops at once with one line when sbatch is not on PATH', async () => {
    const d = tempDir('fedslice-nosbatch-');
    const file = writeJson(join(d, 'one.json'), { name: 'one', base: { model: { width: 0.0625, numClasses: 10 } }, grid: { seed: [1] } });
    const s = startRole('runner', ['runner', 'sweep', '--config', file, '--results', join(d, 'results'), '--executor', 'slurm'], { PATH: join(d, 'empty') });
    expect((await s.exited).code).toBe(1);
    expect(s.output().trim()).toBe('fedslice: error: --executor slurm needs sbatch on PATH (run the sweep on a Slurm login node, or use --executor local)');
    rmSync(d, { recursive: true });
  });
});
