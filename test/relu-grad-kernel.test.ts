/**
 * Relu's gradient as one SIMD pass on wasm (core/compute/relu-grad-kernel.ts) gives the bits of tfjs's
 * dy * cast(step(x)); Relu itself as one pass (core/compute/relu-kernel.ts) gives wasm's own bits.
 */
import * as tf from '../core/compute/tf.ts';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { setSimdReluGrad } from '../core/compute/relu-grad-kernel.ts';
import { registerWasmRelu, unregisterWasmRelu } from '../core/compute/relu-kernel.ts';
import { Rng } from '../core/rng.ts';
import { sameBits } from './helpers/bits.ts';

/** n values: normals with zeros of both signs, infinities and NaN among them. */
function values(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const special = [0, -0, Infinity, -Infinity, NaN, 1e-45, -1e-45];
  return Float32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? special[(i / 5) % special.length] : rng.normal()));
}

/** The gradient of sum(relu(x) * r) with respect to x, through the registered Relu gradient. */
function reluGrad(x: Float32Array, r: Float32Array, shape: number[]): Float32Array {
  return tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.relu(a), tf.tensor(r, shape))))(tf.tensor(x, shape)).dataSync() as Float32Array);
}

describe('SIMD ReLU gradient', () => {
  const SHAPES = [[1], [3], [4], [7], [2, 9], [32, 32, 32, 12], [32, 16, 16, 48], [32, 512], [5, 3, 3, 1]];

  it("gives tfjs's bits on wasm, including zeros of both signs, infinities and NaN", async () => {
    await initBackend('wasm');
    SHAPES.forEach((shape, i) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = values(n, 10 + i);
      const r = values(n, 40 + i);
      const simd = reluGrad(x, r, shape);
      setSimdReluGrad(false);
      try {
        const tfjs = reluGrad(x, r, shape);
        expect(simd.length).toBe(n);
        expect(sameBits(simd, tfjs), `shape [${shape}]`).toBe(true);
      } finally {
        setSimdReluGrad(true);
      }
    });
  });

  it("Relu itself gives wasm's own bits, including zeros of both signs, infinities and NaN", async () => {
    await initBackend('wasm');
    const ours = tf.getKernel('Relu', 'wasm');
    const relu = () => SHAPES.map((shape, i) => tf.tidy(() => tf.relu(tf.tensor(values(shape.reduce((a, b) => a * b, 1), 70 + i), shape)).dataSync() as Float32Array));
    const simd = relu();
    unregisterWasmRelu();
    try {
      expect(tf.getKernel('Relu', 'wasm')).not.toBe(ours);
      const own = relu();
      SHAPES.forEach((shape, i) => expect(sameBits(simd[i], own[i]), `shape [${shape}]`).toBe(true));
    } finally {
      registerWasmRelu();
    }
  });

  it('runs as one kernel instead of Step, Cast and Multiply, and leaks no tensor', async () => {
    await initBackend('wasm');
    const x = tf.tensor(values(64, 1), [8, 8]);
    const before = tf.memory().numTensors;
    const profile = await tf.profile(() => {
      const g = tf.grad((a: tf.Tensor) => tf.sum(tf.relu(a)))(x);
      g.dispose();
      return [];
    });
    const names = profile.kernels.map((k) => k.name);
    expect(names).toContain('FedsliceReluGrad');
    expect(names).not.toContain('Step');
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it("leaves the cpu backend on tfjs's formula", async () => {
    await initBackend('cpu');
    try {
      const x = values(40, 3);
      const r = values(40, 4);
      const cpu = reluGrad(x, r, [40]);
      const formula = tf.tidy(() => tf.mul(tf.tensor(r), tf.cast(tf.step(tf.tensor(x)), 'float32')).dataSync() as Float32Array);
      expect(sameBits(cpu, formula)).toBe(true);
    } finally {
      await initBackend('wasm');
    }
  });
});
