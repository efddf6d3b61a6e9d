/** wasm Add as one SIMD pass (core/compute/binary-kernel.ts) gives wasm's own bits, and leaves other shapes to it. */
import * as tf from '../core/compute/tf.ts';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { registerWasmAdd, unregisterWasmAdd } from '../core/compute/binary-kernel.ts';
import { Rng } from '../core/rng.ts';
import { sameBits } from './helpers/bits.ts';

/** n values: normals with zeros of both signs, infinities and tiny values among them. */
function values(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const special = [0, -0, Infinity, -Infinity, 1e-45, -1e-45, 3.4e38];
  return Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? special[(i / 7) % special.length] : rng.normal()));
}

// bias adds either way round, one shape, and shapes the pass leaves to wasm (broadcasts of other
// kinds, a last axis not a multiple of 4, scalars)
const CASES: Array<[number[], number[]]> = [
  [[32, 32, 32, 12], [12]],
  [[32, 16, 16, 48], [48]],
  [[32, 512], [512]],
  [[4], [4, 8, 4]],
  [[32, 100], [100]],
  [[2, 3, 4], [2, 3, 4]],
  [[512, 512], [512, 512]],
  [[5, 6], [6]],
  [[3, 4], [3, 1]],
  [[7], [7]],
  [[2, 4], [1]],
  [[], []],
];

describe('SIMD Add', () => {
  it("gives wasm's own bits for every case", async () => {
    await initBackend('wasm');
    const inputs = CASES.map(([as, bs], i) => [values(as.reduce((p, d) => p * d, 1), 2 * i), values(bs.reduce((p, d) => p * d, 1), 2 * i + 1)]);
    const run = () => CASES.map(([as, bs], i) => tf.tidy(() => tf.add(tf.tensor(inputs[i][0], as), tf.tensor(inputs[i][1], bs)).dataSync() as Float32Array));
    const before = tf.memory().numTensors;
    const simd = run();
    unregisterWasmAdd();
    try {
      const own = run();
      CASES.forEach((c, i) => {
        expect(simd[i].length, JSON.stringify(c)).toBeGreaterThan(0);
        expect(sameBits(simd[i], own[i]), JSON.stringify(c)).toBe(true);
      });
    } finally {
      registerWasmAdd();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is the registered Add on wasm, and adds as plain f32 sums', async () => {
    await initBackend('wasm');
    const ours = tf.getKernel('Add', 'wasm');
    unregisterWasmAdd();
    const own = tf.getKernel('Add', 'wasm');
    registerWasmAdd();
    expect(ours).not.toBe(own);
    const a = tf.tensor(values(8 * 12, 1), [8, 12]);
    const b = tf.tensor(values(12, 2), [12]);
    const y = tf.add(a, b);
    const yy = tf.add(y, a);
    const [av, bv, yv, yyv] = [a, b, y, yy].map((t) => t.dataSync() as Float32Array);
    expect(sameBits(yv, Float32Array.from(av, (v, i) => v + bv[i % 12]))).toBe(true);
    expect(sameBits(yyv, Float32Array.from(yv, (v, i) => v + av[i]))).toBe(true);
    tf.dispose([a, b, y, yy]);
  });
});
