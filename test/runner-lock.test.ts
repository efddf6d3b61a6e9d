// Run locks shared by sweeps on one results directory: exclusive across real processes, taken
// over when their owner is dead, respected while it lives.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tryLock } from '../runner/lock.ts';
import { REPO, tempDir } from './helpers/roles.ts';

const KEY = 'ws1_lr0.001_seed1_abc';

describe('tryLock', () => {
  it('gives a key to one holder at a time and frees it on release', () => {
    const results = tempDir('fedslice-lock-');
    const a = tryLock(results, KEY);
    expect(a).not.toBeNull();
    expect(tryLock(results, KEY)).toBeNull();
    expect(tryLock(results, `${KEY}-other`)).not.toBeNull();
    a!.release();
    a!.release(); // twice is harmless
    expect(existsSync(join(results, 'locks', `${KEY}.lock`))).toBe(false);
    expect(tryLock(results, KEY)).not.toBeNull();
  });

  it('takes over a lock whose process is gone, and respects one whose process lives', async () => {
    const results = tempDir('fedslice-lock-');
    mkdirSync(join(results, 'locks'));
    const lockFile = join(results, 'locks', `${KEY}.lock`);
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(lockFile, JSON.stringify({ pid: dead, host: hostname(), at: new Date().toISOString() }));
    const taken = tryLock(results, KEY);
    expect(taken).not.toBeNull();
    taken!.release();

    const alive = spawn(process.execPath, ['-e', 'process.stdin.resume()'], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      writeFileSync(lockFile, JSON.stringify({ pid: alive.pid, host: hostname(), at: new Date().toISOString() }));
      expect(tryLock(results, KEY)).toBeNull();
    } finally {
      const exited = new Promise((r) => alive.once('exit', r));
      alive.stdin!.end();
      await exited;
    }
    expect(tryLock(results, KEY)).not.toBeNull(); // its owner has now gone
  });

  it('lets exactly one of several processes racing for a key win', async () => {
    const results = tempDir('fedslice-lock-');
    const script = `import { tryLock } from ${JSON.stringify(join(REPO, 'runner/lock.ts'))};
      process.stdin.once('data', () => {
        const l = tryLock(${JSON.stringify(results)}, ${JSON.stringify(KEY)});
        process.stdout.write(l ? 'won' : 'lost');
        process.stdin.once('data', () => process.exit(0)); // hold it until told to go
      });
      process.stdout.write('ready\\n');`;
    const racers = Array.from({ length: 3 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      const ready = new Promise<void>((resolve) =>
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        }),
      );
      const answered = () => new Promise<void>((resolve) => child.stdout!.on('data', () => /won|lost/.test(out) && resolve()));
      const exited = new Promise((r) => child.once('exit', r));
      return { child, ready, answered, exited, out: () => out };
    });
    await Promise.all(racers.map((r) => r.ready));
    const answers = racers.map((r) => r.answered());
    for (const r of racers) r.child.stdin!.write('go\n'); // as close to at once as we can
    await Promise.all(answers);
    expect(racers.map((r) => (r.out().includes('won') ? 1 : 0)).reduce<number>((a, b) => a + b, 0)).toBe(1);
    for (const r of racers) r.child.stdin!.write('bye\n');
    await Promise.all(racers.map((r) => r.exited));
  });
});
