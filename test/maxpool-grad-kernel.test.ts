/**
 * wasm MaxPoolGrad over the heap (2x2, stride 2): the cpu backend's gradient bit for bit, ties
 * included (the first maximum of a window takes its gradient), and wasm's own kernel on what the
 * AlexNet pools: ReLU outputs. wasm's own kernel differs elsewhere (it drops the gradient of some
 * windows whose maximum is <= 0 and gives ties to the last maximum); after a ReLU such a window
 * is all zeros, whose gradient the ReLU's own gradient zeroes, so training is the same.
 */
import * as tf from '../core/compute/tf.ts';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { registerWasmMaxPoolGrad, setSimdMaxPoolGrad, unregisterWasmMaxPoolGrad } from '../core/compute/maxpool-grad-kernel.ts';
import { wasmMaxPoolGradKernel } from '../core/compute/simd-maxpool-module.ts';
import { Rng } from '../core/rng.ts';

type Shape = [number, number, number, number];
const SHAPE: Shape = [3, 8, 6, 5];
/** Channels a multiple of 4: the SIMD function's case. */
const SIMD_SHAPE: Shape = [2, 6, 8, 12];

/**
 * General: normals, and every other value a small integer (often tied, zero or negative).
 * ReLU-like: positive and unique, as after the AlexNet's ReLUs wherever a gradient survives.
 */
function inputs(general = true, shape: Shape = SHAPE): { x: Float32Array; dy: Float32Array } {
  const rng = new Rng(4);
  const n = shape.reduce((p, d) => p * d);
  const x = Float32Array.from({ length: n }, (_, i) => (general ? (i % 2 ? rng.int(4) - 2 : rng.normal()) : 0.01 + Math.abs(rng.normal())));
  const dy = Float32Array.from({ length: n / 4 }, () => rng.normal());
  return { x, dy };
}

function poolGrad(x: Float32Array, dy: Float32Array, pad: 'valid' | 'same' = 'valid', stride = 2, shape: Shape = SHAPE): Float32Array {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, shape);
    const [, h, w, c] = shape;
    const dyShape: [number, number, number, number] = [shape[0], Math.ceil((pad === 'same' ? h : h - 1) / stride), Math.ceil((pad === 'same' ? w : w - 1) / stride), c];
    const dyt = stride === 2 && pad === 'valid' ? tf.tensor4d(dy, dyShape) : tf.ones(dyShape);
    return tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, 2, stride, pad))(xt, dyt as tf.Tensor4D);
  }).dataSync() as Float32Array;
}

describe('wasm MaxPoolGrad for 2x2 stride-2 pooling', () => {
  it('matches the cpu backend exactly, ties and negatives included, and wasm’s own kernel on ReLU outputs', async () => {
    const { x, dy } = inputs();
    const unique = inputs(false);
    await initBackend('cpu');
    const cpu = poolGrad(x, dy);
    await initBackend('wasm');
    const ours = poolGrad(x, dy);
    const oursUnique = poolGrad(unique.x, unique.dy);
    unregisterWasmMaxPoolGrad();
    const wasmOwnUnique = poolGrad(unique.x, unique.dy);
    registerWasmMaxPoolGrad();
    expect(Array.from(ours)).toEqual(Array.from(cpu));
    expect(Array.from(oursUnique)).toEqual(Array.from(wasmOwnUnique));
  });

  it('leaves other pooling configurations to wasm’s own kernel', async () => {
    const { x, dy } = inputs(false);
    await initBackend('cpu');
    const cpu = poolGrad(x, dy, 'same', 1);
    await initBackend('wasm');
    expect(Array.from(poolGrad(x, dy, 'same', 1))).toEqual(Array.from(cpu));
  });

  it('runs as the SIMD function where channels are a multiple of 4, bit for bit the cpu backend and the JS loop', async () => {
    const { x, dy } = inputs(true, SIMD_SHAPE);
    await initBackend('cpu');
    const cpu = poolGrad(x, dy, 'valid', 2, SIMD_SHAPE);
    await initBackend('wasm');
    expect(wasmMaxPoolGradKernel()).not.toBeNull();
    const simd = poolGrad(x, dy, 'valid', 2, SIMD_SHAPE);
    setSimdMaxPoolGrad(false);
    const js = poolGrad(x, dy, 'valid', 2, SIMD_SHAPE);
    setSimdMaxPoolGrad(true);
    expect(Buffer.from(simd.buffer).equals(Buffer.from(cpu.buffer))).toBe(true);
    expect(Buffer.from(simd.buffer).equals(Buffer.from(js.buffer))).toBe(true);
    // ties and negatives occur in this input, and some windows pass gradient
    expect(simd.some((v) => v !== 0)).toBe(true);
  });
});
