import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSynthetic } from '../core/data/synthetic.ts';
import { encodeRecords } from '../core/data/records.ts';

const root = mkdtempSync(join(tmpdir(), 'fedslice-data-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function fedslice(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/fedslice.js', ...args], { cwd: join(import.meta.dirname, '..') }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('fedslice data (real CLI)', () => {
  it('synth writes the same bytes as the library, even with two writers at once; info summarises it', async () => {
    const dir = join(root, 'syn');
    const args = ['data', 'synth', '--dir', dir, '--classes', '4', '--train', '120', '--test', '40', '--seed', '9'];
    const [a, b] = await Promise.all([fedslice(...args), fedslice(...args)]);
    expect([a.code, a.stderr, b.code]).toEqual([0, '', 0]);
    expect(a.stdout).toContain(`synthetic set in ${dir}: 4 classes, 120 train, 40 test, seed 9`);
    const expected = generateSynthetic({ numClasses: 4, trainCount: 120, testCount: 40, seed: 9 });
    expect(readFileSync(join(dir, 'train.bin')).equals(Buffer.from(encodeRecords(expected.train)))).toBe(true);
    expect(readFileSync(join(dir, 'test.bin')).equals(Buffer.from(encodeRecords(expected.test)))).toBe(true);

    const info = await fedslice('data', 'info', '--dir', dir);
    expect(info.code).toBe(0);
    const lines = info.stdout.split('\n');
    expect(lines).toContain('records: 120 train, 40 test');
    expect(lines).toContain('classes: 4 (1 coarse)');
    expect(lines).toContain('0 class_0     30    10');
    expect(lines).toContain('3 class_3     30    10');
    expect(info.stdout).toMatch(/train\.bin\s+368,880/);
    expect(info.stdout).toMatch(/test\.bin\s+122,960/);
  });

  it('bad input gives one error line and exit 1', async () => {
    const notArchive = join(root, 'fake.tar.gz');
    writeFileSync(notArchive, 'not an archive');
    const [missing, badOpt, dl, noDir, unknown] = await Promise.all([
      fedslice('data', 'info', '--dir', join(root, 'nothing')),
      fedslice('data', 'synth', '--dir', join(root, 'x'), '--classes', 'ten'),
      fedslice('data', 'download', '--dir', join(root, 'c100'), '--archive', notArchive),
      fedslice('data', 'info'),
      fedslice('data', 'info', '--dir', root, '--colour'),
    ]);
    // commander's own errors use the same one line
    expect(noDir.code).toBe(1);
    expect(noDir.stderr).toBe("fedslice: error: required option '--dir <dir>' not specified (run with --help for usage)\n");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("fedslice: error: unknown option '--colour' (run with --help for usage)\n");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`fedslice: error: data folder ${join(root, 'nothing')} does not exist; run \`fedslice data download --dir ${join(root, 'nothing')}\` (or \`fedslice data synth --dir ${join(root, 'nothing')}\` for the synthetic set)\n`);
    expect(badOpt.code).toBe(1);
    expect(badOpt.stderr).toBe("fedslice: error: --classes must be an integer >= 2, got 'ten'\n");
    expect(dl.code).toBe(1);
    expect(dl.stderr.trim().split('\n')).toHaveLength(1);
    expect(dl.stderr).toMatch(/fake\.tar\.gz has MD5 [0-9a-f]{32} but CIFAR-100 binary has 03b5dce01913d631647c71ecec9e9cb8/);
  });

  it('--help works for each sub-command', async () => {
    const subs = ['download', 'synth', 'info'];
    const runs = await Promise.all(subs.map((sub) => fedslice('data', sub, '--help')));
    for (const [k, sub] of subs.entries()) {
      const r = runs[k];
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: fedslice data ${sub}`);
    }
  });
});
