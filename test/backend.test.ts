/** Backend choice: auto order, forced backends, the one stderr line per process. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '../core/compute/tf.ts';
import { describe, expect, it } from 'vitest';
import { currentBackend, initBackend, nativeBindingProblem } from '../core/compute/backend.ts';
import { requestedWasmThreads } from '../core/compute/wasm-threads.ts';
import { isFedsliceError } from '../core/errors.ts';

const nodeMissing = nativeBindingProblem('@tensorflow/tfjs-node') !== null && nativeBindingProblem('@tensorflow/tfjs-node-gpu') !== null;

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('initBackend', () => {
  it('auto picks tensorflow when it loads, else wasm with SIMD, and reports it', async () => {
    expect(currentBackend()).toBeNull();
    const info = await initBackend('auto');
    expect(currentBackend()).toEqual(info);
    expect(info.tfjsVersion).toBe(tf.version_core);
    if (nodeMissing) {
      expect(info.name).toBe('wasm');
      expect(tf.getBackend()).toBe('wasm');
      // alone in its process, it takes every core unless FEDSLICE_WASM_THREADS says otherwise
      const threads = requestedWasmThreads();
      expect(info.threads).toBe(threads);
      expect(info.detail).toBe(`simd, ${threads} thread${threads === 1 ? '' : 's'}`);
    } else {
      expect(info.name).toMatch(/^tensorflow/);
    }
    expect(await initBackend('auto')).toBe(info);
  });

  it.runIf(nodeMissing)('a forced tfjs-node backend that cannot load is a clear error', async () => {
    for (const name of ['tensorflow', 'tensorflow-gpu'] as const) {
      const e = await errorOf(initBackend(name));
      expect(isFedsliceError(e)).toBe(true);
      expect((e as Error).message).toContain(`backend '${name}' cannot load`);
      // installed without its native binding (install script not approved), or not installed at all
      expect((e as Error).message).toMatch(/tfjs_binding\.node|is not installed/);
      expect((e as Error).message).toContain('--backend');
    }
  });

  it('switches to a forced cpu backend and computes there', async () => {
    const info = await initBackend('cpu');
    expect(info.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const s = tf.sum(tf.tensor1d([1, 2, 3]));
    expect((await s.data())[0]).toBe(6);
    s.dispose();
  });

  it('prints the chosen backend once per process on stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedslice-backend-'));
    const script = join(dir, 'twice.mts');
    const url = new URL(`file://${resolve('core/compute/backend.ts')}`).href;
    writeFileSync(script, `import { initBackend } from '${url}';\nawait initBackend('wasm');\nawait initBackend('wasm');\nawait initBackend('auto');\nconsole.log('ok');\n`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', cwd: process.cwd() });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('ok');
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('fedslice: backend'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^fedslice: backend wasm \(simd, \d+ threads?/);
  });
});
