// What a sweep hands Slurm: sbatch options per run (tasks, GPUs for tensorflow-gpu, the user's
// --slurm-args last), a batch script bash accepts whatever the paths, and --slurm-args splitting.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSweep } from '../core/config.ts';
import { splitArgs } from '../runner/command.ts';
import { expandSweep } from '../runner/grid.ts';
import { batchScript, sbatchArgs } from '../runner/slurm-script.ts';
import { tempDir } from './helpers/roles.ts';

const runsOf = (backend: string) =>
  expandSweep(parseSweep({ name: 't', base: { backend, model: { width: 0.125, numClasses: 10 } }, grid: { 'federation.worldSize': [1, 4] } }));

describe('slurm job of a run', () => {
  it('asks for 1 + worldSize tasks, one GPU per trainer only on tensorflow-gpu, and puts --slurm-args last', () => {
    const [cpu1, cpu4] = runsOf('wasm');
    expect(sbatchArgs(cpu1, '/r/logs/k/slurm.log', [])).toEqual([`--job-name=fedslice-${cpu1.key}`, '--ntasks=2', '--output=/r/logs/k/slurm.log', '--open-mode=append']);
    expect(sbatchArgs(cpu4, 'l', ['--partition=gpu']).slice(1)).toEqual(['--ntasks=5', '--output=l', '--open-mode=append', '--partition=gpu']);
    const [, gpu4] = runsOf('tensorflow-gpu');
    expect(sbatchArgs(gpu4, 'l', [])).toContain('--gpus=4');
    const script = (run: typeof gpu4) =>
      batchScript({ run, node: '/usr/bin/node', bin: '/b/fedslice.js', configFile: '/r/c.json', results: '/r', logDir: '/r/logs/k', metaserver: 'ws://h:1', tokenFile: '/r/t', aggregatorHost: 'hostname', force: false });
    expect(script(gpu4)).toMatch(/srun --ntasks=4 --exact --gpus-per-task=1 /);
    expect(script(cpu4)).not.toMatch(/gpus/);
    expect(script(cpu4)).toMatch(/--host "\$\(hostname\)"/);
  });

  it('writes a script bash parses even with spaces and quotes in its paths', () => {
    const dir = tempDir('fedslice-script-');
    const [run] = runsOf('wasm');
    const odd = join(dir, "it's a dir");
    const file = join(dir, 'job.sh');
    writeFileSync(file, batchScript({ run, node: `${odd}/node`, bin: `${odd}/fedslice.js`, configFile: `${odd}/c.json`, results: odd, logDir: `${odd}/logs`, metaserver: 'ws://127.0.0.1:1', tokenFile: `${odd}/t`, aggregatorHost: 'loopback', force: true }));
    expect(() => execFileSync('bash', ['-n', file])).not.toThrow();
    expect(readFileSync(file, 'utf8')).toContain(`'${dir}/it'\\''s a dir/node'`);
    rmSync(dir, { recursive: true });
  });
});

describe('--slurm-args', () => {
  it('splits like a shell: spaces separate, quotes group', () => {
    expect(splitArgs('')).toEqual([]);
    expect(splitArgs(' --partition=gpu   --time=01:00:00 ')).toEqual(['--partition=gpu', '--time=01:00:00']);
    expect(splitArgs(`--comment="two words" -A 'proj x'`)).toEqual(['--comment=two words', '-A', 'proj x']);
    expect(() => splitArgs('--comment="open')).toThrow(/unclosed "/);
  });
});
