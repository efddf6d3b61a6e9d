/**
 * MaxPool as one SIMD pass on wasm (core/compute/maxpool-kernel.ts) gives the bits of wasm's own
 * (XNNPACK's) MaxPool: zeros of both signs in one window, infinities, NaN, and configurations it
 * leaves to wasm's own kernel.
 */
import * as tf from '../core/compute/tf.ts';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { registerWasmMaxPool, unregisterWasmMaxPool } from '../core/compute/maxpool-kernel.ts';
import { Rng } from '../core/rng.ts';
import { sameBits } from './helpers/bits.ts';

/** n values: normals, and in runs of four zeros of both signs, infinities, NaN. */
function values(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const special = [0, -0, Infinity, -Infinity, NaN, 1e-45, -1e-45];
  return Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? special[Math.floor(rng.next() * special.length)] : rng.normal()));
}

const SHAPES: Array<[number, number, number, number]> = [
  [1, 2, 2, 4], [2, 4, 6, 8], [3, 6, 10, 12], [1, 2, 2, 36], [32, 32, 32, 32], [32, 16, 16, 48], [32, 8, 8, 32],
  // left to wasm's own: channels not a multiple of 4, odd height
  [2, 4, 4, 3], [2, 5, 4, 4],
];

describe('SIMD MaxPool', () => {
  it("gives XNNPACK's bits on wasm, including zeros of both signs, infinities and NaN", async () => {
    await initBackend('wasm');
    const ours = tf.getKernel('MaxPool', 'wasm');
    const pool = () => SHAPES.map((shape, i) => tf.tidy(() => tf.maxPool(tf.tensor4d(values(shape.reduce((a, b) => a * b, 1), 20 + i), shape), 2, 2, 'valid').dataSync() as Float32Array));
    const simd = pool();
    unregisterWasmMaxPool();
    try {
      expect(tf.getKernel('MaxPool', 'wasm')).not.toBe(ours);
      const own = pool();
      SHAPES.forEach((shape, i) => {
        expect(simd[i].length).toBe(shape[0] * Math.floor(shape[1] / 2) * Math.floor(shape[2] / 2) * shape[3]);
        expect(sameBits(simd[i], own[i]), `shape [${shape}]`).toBe(true);
      });
      const all = Float32Array.from(simd.flatMap((a) => [...a]));
      // XNNPACK's output clamp turns a window's NaN maximum into -inf
      expect(all.some((v) => Object.is(v, -0)) && all.some((v) => v === -Infinity) && all.some((v) => v === Infinity)).toBe(true);
    } finally {
      registerWasmMaxPool();
    }
  });

  it('keeps its gradient: MaxPoolGrad of the SIMD pool matches the gradient through wasm own MaxPool', async () => {
    await initBackend('wasm');
    const shape: [number, number, number, number] = [4, 8, 8, 8];
    const x = values(4 * 8 * 8 * 8, 5).map((v) => (Number.isFinite(v) ? v : 1));
    const r = values(4 * 4 * 4 * 8, 6).map((v) => (Number.isFinite(v) ? v : 2));
    const grad = () => tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid'), tf.tensor4d(r, [4, 4, 4, 8]))))(tf.tensor4d(x, shape)).dataSync() as Float32Array);
    const simd = grad();
    unregisterWasmMaxPool();
    try {
      expect(sameBits(simd, grad())).toBe(true);
    } finally {
      registerWasmMaxPool();
    }
  });
});
