/** The build in dist/: when bin/fedslice.js may run it instead of the sources, and that the bundle finds the package's own files. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, buildIsCurrent } from '../bin/build.js';

const REPO = join(import.meta.dirname, '..');

describe('buildIsCurrent', () => {
  const root = mkdtempSync(join(tmpdir(), 'fedslice-build-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const out = join(root, 'dist');
  const stamp = (startedAt: number, inputs: string[]) => {
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'build.json'), JSON.stringify({ startedAt, inputs }));
  };
  const at = (file: string, ms: number) => utimesSync(join(root, file), ms / 1000, ms / 1000);

  it('holds while every input is older than the build, and not once one changes, goes missing, or the stamp does', () => {
    mkdirSync(join(root, 'core'), { recursive: true });
    writeFileSync(join(root, 'cli.ts'), '');
    writeFileSync(join(root, 'core', 'a.ts'), '');
    at('cli.ts', 1_000_000);
    at('core/a.ts', 1_000_000);
    expect(buildIsCurrent(root, out)).toBe(false); // no build yet
    stamp(2_000_000, ['cli.ts', 'core/a.ts']);
    expect(buildIsCurrent(root, out)).toBe(true);
    at('core/a.ts', 2_000_001); // edited after the build started
    expect(buildIsCurrent(root, out)).toBe(false);
    at('core/a.ts', 1_000_000);
    stamp(2_000_000, ['cli.ts', 'core/a.ts', 'core/gone.ts']);
    expect(buildIsCurrent(root, out)).toBe(false);
    writeFileSync(join(out, 'build.json'), '{"startedAt": 2000');
    expect(buildIsCurrent(root, out)).toBe(false);
  });
});

describe('the bundle', () => {
  // one folder below the package root, like dist/
  const out = join(REPO, `dist-test-${process.pid}`);
  let sources = 0;
  beforeAll(async () => {
    sources = await build(out);
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs the CLI and finds the package files from its own folder', () => {
    const stamped = JSON.parse(readFileSync(join(out, 'build.json'), 'utf8')) as { inputs: string[] };
    expect(stamped.inputs).toEqual(expect.arrayContaining(['cli.ts', 'core/package-root.ts', 'bin/build.js']));
    expect(stamped.inputs).toHaveLength(sources);
    expect(buildIsCurrent(REPO, out)).toBe(true);
    const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(execFileSync(process.execPath, [join(out, 'cli.js'), '--version'], { encoding: 'utf8' }).trim()).toBe(version);
    const help = (...entry: string[]) => execFileSync(process.execPath, [...entry, 'runner', 'sweep', '--help'], { encoding: 'utf8', cwd: REPO });
    expect(help(join(out, 'cli.js'))).toBe(help('--import', 'tsx', join(REPO, 'cli.ts')));
  });

  it("registers tfjs-core's gradients itself, without loading the @tensorflow/tfjs union package", () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslice-bundle-tf-'));
    try {
      // On exit (here: the trainer stops at the missing data, after its backend is up), whether the union was loaded and a gradient is registered.
      const probe = join(dir, 'probe.cjs');
      writeFileSync(
        probe,
        `process.on('exit', () => process.stdout.write(JSON.stringify({
  union: Object.keys(require.cache).some((f) => f.includes('/node_modules/@tensorflow/tfjs/')),
  conv2dGradient: globalThis._tfGlobals?.get('gradRegistry')?.has('Conv2D') ?? false,
})));`,
      );
      const config = join(dir, 'config.json');
      writeFileSync(config, JSON.stringify({ name: 'bundle', dataset: { name: 'cifar100', dir: join(dir, 'no-data') }, model: { width: 0.0625 }, backend: 'cpu' }));
      const r = spawnSync(process.execPath, ['--require', probe, join(out, 'cli.js'), 'trainer', '--config', config, '--metaserver', 'ws://127.0.0.1:9'], {
        encoding: 'utf8',
        env: { ...process.env, FEDSLICE_TOKEN: 'bundle-test' },
      });
      expect(r.stderr).toContain('fedslice: backend cpu');
      expect(r.stderr).toContain('CIFAR-100 is not in');
      expect(JSON.parse(r.stdout)).toEqual({ union: false, conv2dGradient: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bundles the packages of many small files a role loads, and loads the other CommonJS packages with require', () => {
    const code = readdirSync(out).filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(out, f), 'utf8')).join('\n');
    const loaded = (pkg: string) => new RegExp(`(require\\(|from |import\\()"${pkg}"`).test(code);
    for (const pkg of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', 'bufferutil', 'msgpackr-extract']) {
      expect(code).toContain(`require("${pkg}")`);
      expect(code).not.toMatch(new RegExp(`(from|import\\(?) ?"${pkg}"`));
    }
    for (const pkg of ['zod', 'msgpackr', 'ws', 'commander']) expect(loaded(pkg), pkg).toBe(false);
    expect(code).toMatch(/from "arquero"/); // analysis only: Node loads it as it is
    // zod's translations are left out, its English messages (fedslice's config errors) are in
    expect(code).toContain('// node_modules/zod/v4/locales/en.js');
    expect(code).not.toContain('// node_modules/zod/v4/locales/fr.js');
  });
});
