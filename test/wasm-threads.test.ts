/** FEDSLICE_WASM_THREADS: a real two-thread wasm pool under Node, same results as one thread, no hang at exit, clear error on a bad value. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requestedWasmThreads } from '../core/compute/wasm-threads.ts';

/** A child process that trains nothing but runs a conv and a matMul and prints a checksum of the results. */
function runChild(threads: string): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fedslice-threads-'));
  const script = join(dir, 'threads.mts');
  const backend = new URL(`file://${resolve('core/compute/backend.ts')}`).href;
  const rng = new URL(`file://${resolve('core/rng.ts')}`).href;
  const tfjs = new URL(`file://${resolve('core/compute/tf.ts')}`).href;
  writeFileSync(
    script,
    `import * as tf from '${tfjs}';
import { initBackend } from '${backend}';
import { Rng } from '${rng}';
const info = await initBackend('wasm');
const r = new Rng(1);
const x = tf.tensor4d(Float32Array.from({ length: 8 * 16 * 16 * 8 }, () => r.normal()), [8, 16, 16, 8]);
const w = tf.tensor4d(Float32Array.from({ length: 3 * 3 * 8 * 16 }, () => r.normal()), [3, 3, 8, 16]);
const y = tf.conv2d(x, w, 1, 'same');
const z = tf.matMul(tf.reshape(y, [8, -1]), tf.reshape(y, [8, -1]), false, true);
const pthread = (tf.backend() as unknown as { wasm: { PThread?: { runningWorkers: unknown[]; unusedWorkers: unknown[] } } }).wasm.PThread;
const workers = pthread ? { running: pthread.runningWorkers.length, unused: pthread.unusedWorkers.length } : null;
console.log(JSON.stringify({ detail: info.detail, sum: Array.from(z.dataSync()).map((v) => v.toFixed(2)).join(','), workers }));
`,
  );
  // no explicit exit: the process must end on its own with the pool's threads idle
  return spawnSync(process.execPath, ['--import', 'tsx', script], {
    encoding: 'utf8',
    cwd: process.cwd(),
    env: { ...process.env, FEDSLICE_WASM_THREADS: threads },
    timeout: 60_000,
  });
}

describe('wasm threads', () => {
  it('parses FEDSLICE_WASM_THREADS', () => {
    // a role started by hand is alone on the machine: every core, up to 8
    expect(requestedWasmThreads({})).toBe(Math.min(8, availableParallelism()));
    expect(requestedWasmThreads({ FEDSLICE_WASM_THREADS: '1' })).toBe(1);
    expect(requestedWasmThreads({ FEDSLICE_WASM_THREADS: '2' })).toBe(2);
    expect(requestedWasmThreads({ FEDSLICE_WASM_THREADS: 'auto' })).toBeGreaterThanOrEqual(1);
    expect(requestedWasmThreads({ FEDSLICE_WASM_THREADS: 'two' })).toMatch(/FEDSLICE_WASM_THREADS must be "auto" or a whole number from 1 to 8, got 'two'/);
  });

  it('two threads start under Node, compute what one thread computes, and the process exits by itself', () => {
    const one = runChild('1');
    const two = runChild('2');
    expect(one.status, one.stderr).toBe(0);
    expect(two.status, two.stderr).toBe(0);
    type Child = { detail: string; sum: string; workers: { running: number; unused: number } | null };
    const a = JSON.parse(one.stdout) as Child;
    const b = JSON.parse(two.stdout) as Child;
    expect(a.detail).toBe('simd, 1 thread');
    expect(b.detail).toBe('simd, 2 threads');
    expect(b.sum).toBe(a.sum);
    // emscripten's pool is sized to the threads asked, not its built-in 8 (each a Node worker booted at start)
    expect(a.workers).toBeNull();
    expect(b.workers).toEqual({ running: 1, unused: 1 });
  }, 120_000);

  it('a bad FEDSLICE_WASM_THREADS is one clear error', () => {
    const r = runChild('lots');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/FEDSLICE_WASM_THREADS must be "auto" or a whole number from 1 to 8, got 'lots'/);
  });
});
