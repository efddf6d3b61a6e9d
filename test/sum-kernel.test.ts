/**
 * wasm Sum over every axis but the last (the bias gradients) against wasm's own kernel, bit for
 * bit, keepDims and negative axes included; other reductions still go to wasm's own kernel.
 */
import * as tf from '../core/compute/tf.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { wasmColSumKernel } from '../core/compute/simd-sum-module.ts';
import { registerWasmSum, unregisterWasmSum } from '../core/compute/sum-kernel.ts';
import { Rng } from '../core/rng.ts';

function sums(shape: number[], axis: number | number[], keepDims: boolean, own: boolean): { values: Float32Array; shape: number[] } {
  if (own) unregisterWasmSum();
  const rng = new Rng(5);
  const n = shape.reduce((p, d) => p * d, 1);
  // magnitudes over many octaves, so a different summation order would change the bits
  const data = Float32Array.from({ length: n }, () => rng.normal() * Math.exp(6 * rng.normal()));
  const out = tf.tidy(() => tf.sum(tf.tensor(data, shape), axis, keepDims));
  const result = { values: out.dataSync() as Float32Array, shape: out.shape };
  out.dispose();
  registerWasmSum();
  return result;
}

describe('wasm Sum over all but the last axis', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it.each([
    [[32, 8, 8, 12], [0, 1, 2], false],
    [[4, 5, 6, 16], [0, -3, 2], true],
    [[4, 5, 6, 16], [2, 0, 1], false], // unsorted: wasm's own kernel sums in another order, and takes it
    [[32, 100], 0, false],
    [[7, 3, 8], [0, 1], true],
  ] as Array<[number[], number | number[], boolean]>)('shape %j axis %j keepDims %s: same bits and shape as wasm’s own kernel', (shape, axis, keepDims) => {
    expect(wasmColSumKernel()).not.toBeNull();
    const ours = sums(shape, axis, keepDims, false);
    const theirs = sums(shape, axis, keepDims, true);
    expect(ours.shape).toEqual(theirs.shape);
    expect(Buffer.from(ours.values.buffer).equals(Buffer.from(theirs.values.buffer))).toBe(true);
  });

  it('leaves other reductions to wasm’s own kernel (same results)', () => {
    for (const [shape, axis] of [[[6, 10], 1], [[6, 10], [0, 1]], [[5, 6], 0]] as Array<[number[], number | number[]]>) {
      const ours = sums(shape, axis, false, false);
      const theirs = sums(shape, axis, false, true);
      expect(Array.from(ours.values)).toEqual(Array.from(theirs.values));
    }
  });

  it('the gradient of a broadcast bias add goes through it', () => {
    const rng = new Rng(6);
    const x = tf.tensor(Float32Array.from({ length: 2 * 3 * 3 * 8 }, () => rng.normal()), [2, 3, 3, 8]);
    const b = tf.zeros([8]);
    const g = tf.grad((bias: tf.Tensor) => tf.sum(tf.mul(tf.add(x, bias), x)))(b);
    const expected = tf.sum(x, [0, 1, 2]);
    expect(Array.from(g.dataSync())).toEqual(Array.from(expected.dataSync()));
    tf.dispose([x, b, g, expected]);
  });
});
