/**
 * The conv-gradient kernels (core/compute/conv-grad-kernels.ts) on wasm against the cpu backend's own
 * Conv2DBackpropFilter / Conv2DBackpropInput, over several shapes, and a whole-model gradient check.
 */
import * as tf from '../core/compute/tf.ts';
import { describe, expect, it, beforeAll } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { convGradKernelsRegistered, registerConvGradKernels, setSimdConvFilter, unregisterConvGradKernels } from '../core/compute/conv-grad-kernels.ts';
import { wasmFilterTileKernel } from '../core/compute/simd-conv-filter-module.ts';
import { isFedsliceError } from '../core/errors.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { forward, nllLoss, paramTensors } from '../core/model/network.ts';
import { Rng } from '../core/rng.ts';

function randomArray(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    ref += b[i] ** 2;
  }
  return Math.sqrt(diff) / Math.sqrt(ref);
}

interface Case {
  batch: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: number;
  pad: number | 'same' | 'valid';
}

const CASES: Case[] = [
  { batch: 2, h: 8, w: 8, ci: 3, co: 4, k: 5, pad: 2 },
  { batch: 3, h: 7, w: 9, ci: 5, co: 6, k: 3, pad: 1 },
  { batch: 1, h: 6, w: 6, ci: 4, co: 2, k: 3, pad: 0 },
  { batch: 4, h: 10, w: 10, ci: 8, co: 16, k: 5, pad: 2 },
  { batch: 2, h: 5, w: 7, ci: 2, co: 3, k: 3, pad: 2 },
  { batch: 2, h: 6, w: 6, ci: 3, co: 5, k: 4, pad: 'same' }, // asymmetric padding
  { batch: 32, h: 16, w: 16, ci: 12, co: 32, k: 5, pad: 2 },
];

/** dW and dx of sum(conv2d(x, W) * r) on the current backend. */
function convGradients(c: Case, seed: number): { dw: Float32Array; dx: Float32Array } {
  const rng = new Rng(seed);
  const xData = randomArray(c.batch * c.h * c.w * c.ci, rng);
  const wData = randomArray(c.k * c.k * c.ci * c.co, rng);
  return tf.tidy(() => {
    const x = tf.tensor4d(xData, [c.batch, c.h, c.w, c.ci]);
    const w = tf.tensor4d(wData, [c.k, c.k, c.ci, c.co]);
    const yShape = tf.conv2d(x, w, 1, c.pad).shape;
    const r = tf.tensor(randomArray(yShape.reduce((a, b) => a * b, 1), rng), yShape);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, c.pad), r)))([x, w]);
    return { dw: dw.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array };
  });
}

describe('conv-gradient kernels', () => {
  const reference: Array<{ dw: Float32Array; dx: Float32Array }> = [];

  beforeAll(async () => {
    await initBackend('cpu');
    expect(convGradKernelsRegistered('cpu')).toBe(false);
    CASES.forEach((c, i) => reference.push(convGradients(c, 100 + i)));
    await initBackend('wasm');
  }, 300_000); // the pure-JS reference gradients take a minute on a busy 2-core machine

  it('are registered on wasm by initBackend', () => {
    expect(tf.getBackend()).toBe('wasm');
    expect(convGradKernelsRegistered('wasm')).toBe(true);
  });

  CASES.forEach((c, i) => {
    it(`match the cpu backend's gradients: batch ${c.batch}, ${c.h}x${c.w}, ${c.ci}->${c.co}, k${c.k}, pad ${c.pad}`, () => {
      const ours = convGradients(c, 100 + i);
      expect(ours.dw.length).toBe(reference[i].dw.length);
      expect(ours.dx.length).toBe(reference[i].dx.length);
      expect(relativeError(ours.dw, reference[i].dw)).toBeLessThan(1e-4);
      expect(relativeError(ours.dx, reference[i].dx)).toBeLessThan(1e-4);
    });
  });

  // every tile shape (1-4 input channels, 4 or 8 output channels), padding on all sides or none,
  // and the width-1/8 AlexNet's conv2 and conv3
  const SIMD_CASES: Case[] = [
    ...CASES.filter((c) => c.co % 4 === 0),
    { batch: 3, h: 7, w: 9, ci: 5, co: 12, k: 3, pad: 1 },
    { batch: 2, h: 6, w: 5, ci: 6, co: 8, k: 3, pad: 0 },
    { batch: 2, h: 5, w: 6, ci: 7, co: 20, k: 5, pad: 'same' },
    { batch: 1, h: 4, w: 4, ci: 9, co: 4, k: 3, pad: 2 },
    { batch: 32, h: 32, w: 32, ci: 12, co: 32, k: 5, pad: 2 },
    { batch: 32, h: 16, w: 16, ci: 32, co: 48, k: 3, pad: 1 },
  ];
  SIMD_CASES.forEach((c, i) => {
    it(`filter gradient: the SIMD tiles give the transposed convolution's bits, batch ${c.batch}, ${c.h}x${c.w}, ${c.ci}->${c.co}, k${c.k}, pad ${c.pad}`, () => {
      expect(wasmFilterTileKernel(4, 2)).not.toBeNull();
      const rng = new Rng(300 + i);
      const x = tf.tensor4d(randomArray(c.batch * c.h * c.w * c.ci, rng), [c.batch, c.h, c.w, c.ci]);
      const filterShape: [number, number, number, number] = [c.k, c.k, c.ci, c.co];
      const yShape = tf.conv2d(x, tf.zeros(filterShape) as tf.Tensor4D, 1, c.pad).shape;
      const dy = tf.tensor4d(randomArray(yShape.reduce((a, b) => a * b, 1), rng), yShape as [number, number, number, number]);
      const dw = (simd: boolean) => {
        setSimdConvFilter(simd);
        const attrs = { strides: [1, 1], pad: c.pad, dataFormat: 'NHWC', filterShape };
        const g = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
        const out = g.dataSync() as Float32Array;
        g.dispose();
        return out;
      };
      try {
        const simd = dw(true);
        const transposed = dw(false);
        expect(simd.length).toBe(c.k * c.k * c.ci * c.co);
        expect(Buffer.from(simd.buffer, simd.byteOffset, simd.byteLength).equals(Buffer.from(transposed.buffer, transposed.byteOffset, transposed.byteLength))).toBe(true);
      } finally {
        setSimdConvFilter(true);
        tf.dispose([x, dy]);
      }
    });
  });

  it('on cpu (opt-in) also match the cpu backend own kernels', async () => {
    await initBackend('cpu');
    registerConvGradKernels('cpu');
    try {
      CASES.slice(0, 4).forEach((c, i) => {
        const ours = convGradients(c, 100 + i);
        expect(relativeError(ours.dw, reference[i].dw)).toBeLessThan(1e-4);
        expect(relativeError(ours.dx, reference[i].dx)).toBeLessThan(1e-4);
      });
    } finally {
      unregisterConvGradKernels('cpu');
      await initBackend('wasm');
    }
  });

  it('strided convolutions: input gradient falls back to the backend kernel, filter gradient fails clearly', () => {
    const rng = new Rng(7);
    const x = tf.tensor4d(randomArray(2 * 8 * 8 * 3, rng), [2, 8, 8, 3]);
    const w = tf.tensor4d(randomArray(3 * 3 * 3 * 4, rng), [3, 3, 3, 4]);
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'));
    const dx = tf.grad((a: tf.Tensor) => f(a, w))(x);
    expect(dx.shape).toEqual([2, 8, 8, 3]);
    let caught: unknown;
    try {
      tf.grad((b: tf.Tensor) => f(x, b))(w);
    } catch (e) {
      caught = e;
    }
    expect(isFedsliceError(caught)).toBe(true);
    expect(String((caught as Error).message)).toMatch(/stride-1/);
    tf.dispose([x, w, dx]);
  });

  it('give whole-model gradients (conv, pool, fused ReLU, dense) that match the cpu backend', async () => {
    const layers = alexnetLayers({ width: 1 / 16, numClasses: 10 });
    const weights = initialWeights(layers, 3);
    const rng = new Rng(11);
    const images = randomArray(4 * 32 * 32 * 3, rng);
    const labels = new Int32Array([1, 5, 9, 0]);
    const gradsOn = async (backend: 'cpu' | 'wasm') => {
      await initBackend(backend);
      const params = paramTensors(weights);
      const names = [...params.keys()];
      const out = tf.tidy(() => {
        const x = tf.tensor4d(images, [4, 32, 32, 3]);
        const y = tf.tensor1d(labels, 'int32');
        const g = tf.grads((...ps: tf.Tensor[]) => nllLoss(forward(layers, new Map(names.map((n, i) => [n, ps[i]])), x, { dropout: null }), y))(
          names.map((n) => params.get(n)!),
        );
        return g.map((t) => t.dataSync() as Float32Array);
      });
      tf.dispose([...params.values()]);
      return out;
    };
    const cpu = await gradsOn('cpu');
    const wasm = await gradsOn('wasm');
    cpu.forEach((g, i) => expect(relativeError(wasm[i], g)).toBeLessThan(1e-4));
  });
});
