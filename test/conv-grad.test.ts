/**
 * The conv-gradient kernels (core/compute/conv-grad-kernels.ts) on wasm against the cpu backend's own
 * Conv2DBackpropFilter / Conv2DBackpropInput, over several shapes, and a whole-model gradient check;
 * the SIMD kernels (both gradients and the forward convolution, core/compute/conv-forward-kernel.ts)
 * against XNNPACK's bits.
 */
import * as tf from '../core/compute/tf.ts';
import { describe, expect, it, beforeAll } from 'vitest';
import { currentBackend, initBackend } from '../core/compute/backend.ts';
import { registerWasmConv2D, setThreadedConvForward, unregisterWasmConv2D, wasmConv2DRegistered } from '../core/compute/conv-forward-kernel.ts';
import { convGradKernelsRegistered, registerConvGradKernels, setFilterPixelMajor, setSimdConvFilter, setSimdConvInput, setThreadedConvKernels, unregisterConvGradKernels } from '../core/compute/conv-grad-kernels.ts';
import { filterHelpersReady, filterTilesAvailable } from '../core/compute/simd-conv-filter-module.ts';
import { inputHelpersReady, inputRowsAvailable } from '../core/compute/simd-conv-input-module.ts';
import { isFedsliceError } from '../core/errors.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { forward, nllLoss, paramTensors } from '../core/model/network.ts';
import { Rng } from '../core/rng.ts';
import { sameBits } from './helpers/bits.ts';
import { setSharedWork } from '../core/compute/wasm-helper-threads.ts';

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

/** dW of `c` by the Conv2DBackpropFilter kernel as registered now, for seeded x and dy (`values` makes their values). */
  function filterGradient(c: Case, seed: number, values: (n: number, rng: Rng) => Float32Array = randomArray): Float32Array {
    const rng = new Rng(seed);
    return tf.tidy(() => {
      const x = tf.tensor4d(values(c.batch * c.h * c.w * c.ci, rng), [c.batch, c.h, c.w, c.ci]);
      const filterShape: [number, number, number, number] = [c.k, c.k, c.ci, c.co];
      const yShape = tf.conv2d(x, tf.zeros(filterShape) as tf.Tensor4D, 1, c.pad).shape as [number, number, number, number];
      const dy = tf.tensor4d(values(yShape.reduce((a, b) => a * b, 1), rng), yShape);
      const attrs = { strides: [1, 1], pad: c.pad, dataFormat: 'NHWC', filterShape };
      return (tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync() as Float32Array;
    });
  }

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
      expect(filterTilesAvailable()).toBe(true);
      try {
        const simd = filterGradient(c, 300 + i);
        setSimdConvFilter(false);
        const transposed = filterGradient(c, 300 + i);
        expect(simd.length).toBe(c.k * c.k * c.ci * c.co);
        expect(sameBits(simd, transposed)).toBe(true);
      } finally {
        setSimdConvFilter(true);
      }
    });
  });

  // normals with zeros of both signs, infinities and NaN among them
  const awkward = (n: number, rng: Rng): Float32Array => {
    const special = [0, -0, Infinity, -Infinity, NaN, 1e-45, -1e-45];
    return Float32Array.from({ length: n }, (_, i) => (i % 13 === 3 ? special[Math.floor(i / 13) % special.length] : rng.normal()));
  };
  // odd sizes everywhere, a batch of 33, and the width-1/8 AlexNet's conv2 (threaded)
  const PIXEL_MAJOR_CASES: Case[] = [
    { batch: 4, h: 1, w: 1, ci: 2, co: 4, k: 1, pad: 0 },
    { batch: 3, h: 7, w: 9, ci: 5, co: 12, k: 3, pad: 1 },
    { batch: 5, h: 5, w: 3, ci: 7, co: 20, k: 5, pad: 'same' },
    { batch: 2, h: 6, w: 5, ci: 6, co: 8, k: 3, pad: 0 },
    { batch: 33, h: 9, w: 11, ci: 3, co: 12, k: 5, pad: 2 },
    { batch: 32, h: 32, w: 32, ci: 12, co: 32, k: 5, pad: 2 },
  ];
  PIXEL_MAJOR_CASES.forEach((c, i) => {
    it(`filter gradient over [H, W, B, C] copies, shared with the helper thread: the bits over NHWC on the main thread alone, with +-0, infinities and NaN, batch ${c.batch}, ${c.h}x${c.w}, ${c.ci}->${c.co}, k${c.k}, pad ${c.pad}`, async () => {
      if ((currentBackend()?.threads ?? 1) > 1) {
        filterGradient(PIXEL_MAJOR_CASES[PIXEL_MAJOR_CASES.length - 1], 1); // the first threaded job starts the helper
        for (let t = 0; t < 200 && filterHelpersReady() === 0; t++) await new Promise((r) => setTimeout(r, 50));
        expect(filterHelpersReady()).toBeGreaterThan(0);
      }
      try {
        const pixelMajor = filterGradient(c, 900 + i, awkward);
        setFilterPixelMajor(false);
        setThreadedConvKernels(false);
        const nhwc = filterGradient(c, 900 + i, awkward);
        expect(pixelMajor.length).toBe(c.k * c.k * c.ci * c.co);
        expect(pixelMajor.some((v) => v !== 0)).toBe(true);
        expect(sameBits(pixelMajor, nhwc)).toBe(true);
      } finally {
        setFilterPixelMajor(true);
        setThreadedConvKernels(true);
      }
    });
  });

/** dx of `c` by the Conv2DBackpropInput kernel as registered now, for seeded dy and W. */
  function inputGradient(c: Case, seed: number): Float32Array {
    const rng = new Rng(seed);
    return tf.tidy(() => {
      const filter = tf.tensor4d(randomArray(c.k * c.k * c.ci * c.co, rng), [c.k, c.k, c.ci, c.co]);
      const inputShape: [number, number, number, number] = [c.batch, c.h, c.w, c.ci];
      const yShape = tf.conv2d(tf.zeros(inputShape) as tf.Tensor4D, filter, 1, c.pad).shape as [number, number, number, number];
      const dy = tf.tensor4d(randomArray(yShape.reduce((a, b) => a * b, 1), rng), yShape);
      const attrs = { strides: [1, 1], pad: c.pad, dataFormat: 'NHWC', inputShape };
      return (tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync() as Float32Array;
    });
  }

  // every row shape (1-4 pixels at a row's end, 4 or 8 input channels), and the width-1/8 AlexNet's conv2 and conv4
  const INPUT_CASES: Case[] = [
    ...CASES.filter((c) => c.ci % 4 === 0),
    { batch: 2, h: 7, w: 9, ci: 8, co: 5, k: 3, pad: 1 },
    { batch: 3, h: 6, w: 6, ci: 4, co: 4, k: 3, pad: 0 },
    { batch: 2, h: 5, w: 6, ci: 12, co: 3, k: 4, pad: 'same' },
    { batch: 1, h: 5, w: 7, ci: 20, co: 6, k: 5, pad: 2 },
    { batch: 32, h: 32, w: 32, ci: 12, co: 32, k: 5, pad: 2 },
    { batch: 32, h: 16, w: 16, ci: 48, co: 48, k: 3, pad: 1 },
  ];
  INPUT_CASES.forEach((c, i) => {
    it(`input gradient: the SIMD rows give XNNPACK's bits, batch ${c.batch}, ${c.h}x${c.w}, ${c.ci}->${c.co}, k${c.k}, pad ${c.pad}`, () => {
      expect(inputRowsAvailable()).toBe(true);
      try {
        const simd = inputGradient(c, 500 + i);
        setSimdConvInput(false);
        const xnnpack = inputGradient(c, 500 + i);
        expect(simd.length).toBe(c.batch * c.h * c.w * c.ci);
        expect(sameBits(simd, xnnpack)).toBe(true);
      } finally {
        setSimdConvInput(true);
      }
    });
  });

/** conv2d(x, W) of `c` by the Conv2D kernel as registered now, for seeded x and W. */
  function forwardConv(c: Case, seed: number): Float32Array {
    const rng = new Rng(seed);
    return tf.tidy(() => {
      const x = tf.tensor4d(randomArray(c.batch * c.h * c.w * c.ci, rng), [c.batch, c.h, c.w, c.ci]);
      const filter = tf.tensor4d(randomArray(c.k * c.k * c.ci * c.co, rng), [c.k, c.k, c.ci, c.co]);
      const attrs = { strides: [1, 1], pad: c.pad, dataFormat: 'NHWC', dilations: [1, 1] };
      return (tf.engine().runKernel('Conv2D', { x, filter }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync() as Float32Array;
    });
  }

/** tf.fused.conv2d of `c` with a bias and `activation`, as inference runs it (the FusedConv2D kernel). */
  function fusedConv(c: Case, seed: number, activation: 'relu' | 'linear'): Float32Array {
    const rng = new Rng(seed);
    return tf.tidy(() => {
      const x = tf.tensor4d(randomArray(c.batch * c.h * c.w * c.ci, rng), [c.batch, c.h, c.w, c.ci]);
      const filter = tf.tensor4d(randomArray(c.k * c.k * c.ci * c.co, rng), [c.k, c.k, c.ci, c.co]);
      const bias = tf.tensor1d(randomArray(c.co, rng));
      return tf.fused.conv2d({ x, filter, bias, activation, strides: 1, pad: c.pad }).dataSync() as Float32Array;
    });
  }

  // every row shape (1-4 pixels at a row's end, 4 or 8 output channels), 1 to 48 input channels,
  // padding on all sides, none, asymmetric, wider than the kernel's reach, and the width-1/8
  // AlexNet's five convolutions; output channels not a multiple of 4 go to XNNPACK itself
  const FORWARD_CASES: Case[] = [
    ...CASES,
    { batch: 2, h: 7, w: 9, ci: 5, co: 8, k: 3, pad: 1 },
    { batch: 3, h: 6, w: 6, ci: 4, co: 4, k: 3, pad: 'valid' },
    { batch: 2, h: 5, w: 6, ci: 3, co: 12, k: 4, pad: 'same' },
    { batch: 1, h: 5, w: 7, ci: 1, co: 20, k: 5, pad: 2 },
    { batch: 2, h: 4, w: 5, ci: 6, co: 8, k: 1, pad: 0 },
    { batch: 1, h: 3, w: 3, ci: 2, co: 4, k: 3, pad: 3 },
    { batch: 32, h: 32, w: 32, ci: 3, co: 12, k: 5, pad: 2 },
    { batch: 32, h: 32, w: 32, ci: 12, co: 32, k: 5, pad: 2 },
    { batch: 32, h: 16, w: 16, ci: 32, co: 48, k: 3, pad: 1 },
    { batch: 32, h: 16, w: 16, ci: 48, co: 48, k: 3, pad: 1 },
    { batch: 32, h: 8, w: 8, ci: 48, co: 32, k: 3, pad: 1 },
  ];
  FORWARD_CASES.forEach((c, i) => {
    it(`forward conv (alone, and fused with a bias and a ReLU or none): the SIMD rows give XNNPACK's bits, batch ${c.batch}, ${c.h}x${c.w}, ${c.ci}->${c.co}, k${c.k}, pad ${c.pad}`, () => {
      expect(inputRowsAvailable()).toBe(true);
      expect(wasmConv2DRegistered()).toBe(true);
      try {
        const run = () => [forwardConv(c, 700 + i), fusedConv(c, 750 + i, 'relu'), fusedConv(c, 750 + i, 'linear')];
        const simd = run();
        unregisterWasmConv2D();
        const xnnpack = run();
        simd.forEach((ours, j) => {
          expect(ours.length).toBe(xnnpack[j].length);
          expect(ours.length).toBeGreaterThan(0);
          expect(sameBits(ours, xnnpack[j]), ['Conv2D', 'FusedConv2D relu', 'FusedConv2D linear'][j]).toBe(true);
        });
        expect(simd[1].some((v) => v === 0) && simd[1].every((v) => v >= 0)).toBe(true); // the ReLU clamped
      } finally {
        registerWasmConv2D();
      }
    });
  });

  // conv2 at width 1/8 (315 M multiply-adds) for each kernel
  const THREADED = [
    { kernel: 'filter gradient', run: filterGradient, helpersReady: filterHelpersReady, threaded: setThreadedConvKernels, c: SIMD_CASES[SIMD_CASES.length - 2], seed: 400 },
    { kernel: 'input gradient', run: inputGradient, helpersReady: inputHelpersReady, threaded: setThreadedConvKernels, c: INPUT_CASES[INPUT_CASES.length - 2], seed: 600 },
    { kernel: 'forward conv', run: forwardConv, helpersReady: inputHelpersReady, threaded: setThreadedConvForward, c: FORWARD_CASES[FORWARD_CASES.length - 4], seed: 800 },
  ];
  THREADED.forEach(({ kernel, run, helpersReady, threaded, c, seed }) => {
    it(`${kernel}: shared with a helper thread, in chunks from a shared counter or in fixed halves, the same bits as on the main thread alone`, async (ctx) => {
      if ((currentBackend()?.threads ?? 1) < 2) ctx.skip('one wasm thread here: no helper threads to test');
      run(c, 1); // the first threaded job starts the helper
      for (let i = 0; i < 200 && helpersReady() === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(helpersReady()).toBeGreaterThan(0);
      try {
        const chunks = [run(c, seed), run(c, seed)];
        setSharedWork(false);
        const halves = run(c, seed);
        setSharedWork(true);
        threaded(false);
        const alone = run(c, seed);
        for (const shared of [...chunks, halves]) expect(sameBits(shared, alone)).toBe(true);
      } finally {
        threaded(true);
        setSharedWork(true);
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
