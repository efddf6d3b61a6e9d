// A results disk that fills up, for real: a small tmpfs mounted by the test (root only; skipped
// with a note otherwise) and a ballast file that fills it. Appends and checkpoint writes leave
// nothing half-written and say so in one line; a sweep stops starting runs, exits with one line,
// and the same command resumes every run from its checkpoint once the ballast is deleted.
import { execFileSync } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint, writeCheckpoint } from '../core/results/checkpoint.ts';
import { removeStaleTemps } from '../core/atomic-file.ts';
import { appendJsonLine, readJsonLines } from '../core/results/jsonl.ts';
import { StorageError } from '../core/results/storage-error.ts';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { initialWeights } from '../core/model/init.ts';
import { startRole, stopAll, tempDir, writeJson } from './helpers/roles.ts';
import { makeTestData } from './helpers/experiment.ts';

// Room for a width-1/8 run: its checkpoint (3.4 MB) and the next one's temp file, twice over.
const TMPFS_SIZE = '16m';
const mnt = tempDir('fedslice-diskfull-');

/** Mounts the tmpfs; the reason it cannot be, or null. */
function mount(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs', mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
    return null;
  } catch (e) {
    return `mount -t tmpfs failed (${(e as Error).message.split('\n')[0]})`;
  }
}

const skip = mount();
if (skip) console.warn(`disk-full.test.ts skipped: ${skip}; run as root to test a results disk that fills up`);

afterEach(() => stopAll());
afterAll(() => {
  if (!skip) execFileSync('umount', ['-l', mnt]);
});

const freeBytes = () => {
  const s = statfsSync(mnt);
  return s.bavail * s.bsize;
};

/** Fills the tmpfs with a ballast file until `leave` bytes are free; returns its path (delete it to free the space). */
function fillDisk(leave = 0): string {
  const path = join(mnt, `ballast-${Date.now()}`);
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20);
  try {
    for (let size = chunk.length; size >= 512; ) {
      const n = Math.min(size, freeBytes() - leave);
      if (n < 512) break;
      try {
        writeSync(fd, chunk, 0, n);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
        size >>= 1;
      }
    }
  } finally {
    closeSync(fd);
  }
  expect(Math.abs(freeBytes() - leave)).toBeLessThan(8192);
  return path;
}

/** A pid that was real and is now gone. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

/** Two runs of one trainer, 3 rounds, width 1/8: one checkpoint is 3.4 MB. */
function sweepConfig(dataDir: string) {
  return {
    name: 'diskfull',
    base: {
      dataset: { name: 'synthetic', dir: dataDir, fraction: 0.25 },
      model: { width: 0.125, numClasses: 10 },
      federation: { worldSize: 1, rounds: 3, roundTimeoutS: 120 },
      train: { learningRate: 0.001, epochs: 1, maxStepsPerEpoch: 6 },
      eval: { batchSize: 500 },
    },
    grid: { seed: [1, 2] },
  };
}

const fullLine = (dir: string) => `results disk full at ${dir}: free space and rerun the same command to resume`;

describe.skipIf(skip)('a results disk that fills up', () => {
  it('an append leaves the file exactly as it was, says so in one line, and works once space is freed', () => {
    const dir = join(mnt, 'append');
    mkdirSync(dir);
    const file = join(dir, 'rounds.jsonl');
    appendJsonLine(file, { round: 0 });
    const before = readFileSync(file);
    const ballast = fillDisk();
    // Bigger than the room left in the file's last page: a plain write would leave part of it.
    const big = { round: 1, pad: 'x'.repeat(20_000) };
    let thrown: unknown;
    try {
      appendJsonLine(file, big);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(StorageError);
    expect((thrown as StorageError).message).toBe(fullLine(dir));
    expect(readFileSync(file)).toEqual(before);
    expect(readdirSync(dir)).toEqual(['rounds.jsonl']); // no lock left behind

    rmSync(ballast);
    appendJsonLine(file, big);
    const read = readJsonLines<{ round: number }>(file);
    expect(read.records.map((r) => r.round)).toEqual([0, 1]);
    expect(read.torn).toEqual([]);
  });

  it('a checkpoint write removes its temp file and keeps the last checkpoint; temp files of dead processes are removed', async () => {
    const dir = join(mnt, 'checkpoints');
    const path = join(dir, 'run.safetensors');
    const layers = alexnetLayers({ width: 0.125, numClasses: 10 });
    await writeCheckpoint(path, layers, initialWeights(layers, 1), { round: '1' });
    const ballast = fillDisk();
    await expect(writeCheckpoint(path, layers, initialWeights(layers, 2), { round: '2' })).rejects.toThrow(fullLine(dir));
    expect(readdirSync(dir)).toEqual(['run.safetensors']);
    rmSync(ballast);
    expect((await readCheckpoint(path, layers)).metadata.round).toBe('1');

    const dead = [`run.safetensors.tmp-${hostname()}-${deadPid()}-0a1b2c3d`, `run.safetensors.tmp-${deadPid()}`]; // the second as older versions named them
    const kept = [`run.safetensors.tmp-${hostname()}-${process.pid}-0a1b2c3d`, 'run.safetensors.tmp-otherhost-1-0a1b2c3d'];
    for (const name of [...dead, ...kept]) writeFileSync(join(dir, name), 'partial');
    expect(removeStaleTemps(path).sort()).toEqual([...dead].sort());
    expect(readdirSync(dir).sort()).toEqual(['run.safetensors', ...kept].sort());
  });

  describe('a sweep', () => {
    let sweepFile = '';
    let checkpointBytes = 0;
    beforeAll(async () => {
      const work = tempDir('fedslice-diskfull-data-');
      const layers = alexnetLayers({ width: 0.125, numClasses: 10 });
      const probe = join(work, 'probe.safetensors');
      await writeCheckpoint(probe, layers, initialWeights(layers, 1), {});
      checkpointBytes = statSync(probe).size;
      sweepFile = writeJson(join(work, 'sweep.json'), sweepConfig(makeTestData(work)));
    });

    const sweep = (results: string) => startRole('runner', ['runner', 'sweep', '--config', sweepFile, '--results', results, '--parallel', '1'], { CI: 'true' });
    const errorLines = (out: string) => out.split('\n').filter((l) => l.startsWith('fedslice: '));

    it('on a disk full before it starts: runs nothing, leaves no lock, and says so in one line', async () => {
      const results = join(mnt, 'full-from-start');
      mkdirSync(results);
      writeFileSync(join(results, 'runs.jsonl'), '{"kind":"run","runId":"cut sh'); // an older version died mid-append
      const ballast = fillDisk();
      try {
        const r = sweep(results);
        expect((await r.exited).code).toBe(74);
        expect(errorLines(r.output())).toEqual([`fedslice: error: ${fullLine(results)}`]);
        expect(r.output()).toMatch(/not started: store unwritable\s+2/);
        expect(r.output()).toContain(`note  ${join(results, 'runs.jsonl')}: skipped a torn last line`);
        expect(readdirSync(join(results, 'locks'))).toEqual([]);
      } finally {
        rmSync(ballast);
      }
    });

    it('filling up mid-run: stops starting runs, records what it can, and the same command resumes without losing or repeating a round', async () => {
      const results = join(mnt, 'sweep');
      // Room for round 0's checkpoint and the logs, not for round 1's beside it.
      const ballast = fillDisk(checkpointBytes + (1 << 20));
      const first = sweep(results);
      expect((await first.exited).code).toBe(74);
      const out = first.output();
      expect(out).not.toContain('internal error');
      expect(errorLines(out)).toEqual([`fedslice: error: ${fullLine(results)}`]);
      expect(out).toContain(`stop: ${fullLine(results)}; starting no more runs`);
      expect(out).toMatch(/not started: store unwritable\s+1/);

      const runs = readJsonLines<RunRecord>(join(results, 'runs.jsonl'));
      const rounds = readJsonLines<RoundRecord>(join(results, 'rounds.jsonl'));
      expect([runs.torn, rounds.torn]).toEqual([[], []]);
      expect(new Set(runs.records.map((r) => r.key)).size).toBe(1); // the second run never started
      // The aggregator recorded the failure, then the runner with the logs' tail.
      expect(runs.records.map((r) => r.status)).toEqual(['started', 'failed', 'failed']);
      const stopped = runs.records[1];
      expect(stopped.error).toBe(fullLine(results));
      expect(rounds.records.map((r) => [r.runId, r.round])).toEqual([[stopped.runId, 0]]);
      const checkpoints = join(results, 'checkpoints');
      expect(readdirSync(checkpoints)).toEqual([`${stopped.key}.safetensors`]);
      expect(readdirSync(join(results, 'locks'))).toEqual([]);

      rmSync(ballast);
      const leftover = `${stopped.key}.safetensors.tmp-${hostname()}-${deadPid()}-0a1b2c3d`; // as a killed aggregator leaves it
      writeFileSync(join(checkpoints, leftover), 'partial');
      const second = sweep(results);
      expect((await second.exited).code).toBe(0);
      expect(second.output()).toMatch(/completed now\s+2/);
      const log = readFileSync(join(results, 'logs', stopped.key, 'aggregator.log'), 'utf8');
      expect(log).toContain(`resuming run ${stopped.runId} after round 0`);
      expect(log).toContain(`removed ${leftover}`);
      expect(readdirSync(checkpoints).filter((n) => n.includes('.tmp-'))).toEqual([]);

      const after = readJsonLines<RunRecord>(join(results, 'runs.jsonl')).records;
      const completed = after.filter((r) => r.status === 'completed');
      expect(completed.map((r) => r.key).sort()).toEqual([...new Set(after.map((r) => r.key))].sort());
      expect(completed.find((r) => r.key === stopped.key)!.runId).toBe(stopped.runId);
      const allRounds = readJsonLines<RoundRecord>(join(results, 'rounds.jsonl'));
      expect(allRounds.torn).toEqual([]);
      for (const r of completed) expect(allRounds.records.filter((x) => x.runId === r.runId).map((x) => x.round)).toEqual([0, 1, 2, 3]);
    }, 400_000);
  });
});
