/**
 * wasm BatchMatMul with explicit transposes matches the cpu backend for every transpose combination
 * and frees its temporaries; its products on the SIMD rows give XNNPACK's bits, and so does
 * _FusedMatMul (a bias and a linear or ReLU activation) on them.
 */
import * as tf from '../core/compute/tf.ts';
import { describe, expect, it } from 'vitest';
import { currentBackend, initBackend } from '../core/compute/backend.ts';
import { setSimdFusedMatMul, setSimdMatMul } from '../core/compute/matmul-kernel.ts';
import { inputHelpersReady, inputRowsAvailable } from '../core/compute/simd-conv-input-module.ts';
import { Rng } from '../core/rng.ts';
import { sameBits, sameBitsOrNaN } from './helpers/bits.ts';

type Case = [number[], number[], boolean, boolean];
const CASES: Case[] = [
  [[32, 64], [64, 48], false, false],
  [[32, 64], [48, 64], false, true], // a b^T, b the larger: (b a^T)^T
  [[64, 8], [64, 8], false, true], // a b^T, b the smaller: a (T b)
  [[64, 32], [64, 48], true, false],
  [[70, 32], [20, 70], true, true],
  [[1, 32, 50], [1, 60, 50], false, true],
  [[1, 5, 32], [5, 60], true, false],
  [[3, 5, 4], [3, 6, 5], true, true], // batched: the backend's own kernel
];

function values(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

describe('wasm BatchMatMul with explicit transposes', () => {
  it('matches the cpu backend for every combination of transposes', async () => {
    const inputs = CASES.map(([as, bs], i) => [values(as.reduce((p, d) => p * d), 2 * i), values(bs.reduce((p, d) => p * d), 2 * i + 1)]);
    const run = () => CASES.map(([as, bs, ta, tb], i) => tf.tidy(() => tf.matMul(tf.tensor(inputs[i][0], as), tf.tensor(inputs[i][1], bs), ta, tb)));
    await initBackend('cpu');
    const ref = run().map((t) => ({ shape: t.shape, data: t.dataSync() }));
    await initBackend('wasm');
    const dataIds = () => tf.engine().backend.numDataIds();
    const before = dataIds();
    const ours = run();
    ours.forEach((t, i) => {
      expect(t.shape, `case ${i}`).toEqual(ref[i].shape);
      const got = t.dataSync();
      for (let j = 0; j < got.length; j++) expect(Math.abs(got[j] - ref[i].data[j]), `case ${i} [${j}]`).toBeLessThan(1e-4 * Math.sqrt(CASES[i][0].at(-1)! * 4));
    });
    tf.dispose(ours);
    expect(dataIds()).toBe(before); // the transposed copies are released
  });

  // rows of 16, of 4 and of M pixels; N a multiple of 4 (the SIMD rows) or not (XNNPACK itself);
  // the width-1/8 AlexNet's dense products and their gradients' (fc1, fc3)
  const SIMD_CASES: Case[] = [
    [[32, 64], [64, 48], false, false],
    [[12, 7], [7, 20], false, false],
    [[5, 33], [33, 8], false, false],
    [[1, 16], [16, 4], false, false],
    [[48, 9], [9, 6], false, false],
    [[64, 32], [64, 48], true, false],
    [[32, 64], [48, 64], false, true],
    [[32, 512], [512, 512], false, false],
    [[32, 512], [512, 512], false, true],
    [[32, 512], [32, 512], true, false],
    [[32, 512], [512, 100], false, false],
    [[32, 100], [512, 100], false, true],
    [[32, 512], [32, 100], true, false],
  ];

  it("products on the SIMD rows give XNNPACK's bits", async () => {
    await initBackend('wasm');
    expect(inputRowsAvailable()).toBe(true);
    const inputs = SIMD_CASES.map(([as, bs], i) => [values(as.reduce((p, d) => p * d), 50 + 2 * i), values(bs.reduce((p, d) => p * d), 51 + 2 * i)]);
    const run = () => SIMD_CASES.map(([as, bs, ta, tb], i) => tf.tidy(() => tf.matMul(tf.tensor(inputs[i][0], as), tf.tensor(inputs[i][1], bs), ta, tb).dataSync() as Float32Array));
    try {
      const simd = run();
      setSimdMatMul(false);
      const xnnpack = run();
      SIMD_CASES.forEach((c, i) => {
        expect(simd[i].length, `case ${i}`).toBe(c[0][c[2] ? 1 : 0] * c[1][c[3] ? 0 : 1]);
        expect(sameBits(simd[i], xnnpack[i]), `case ${i}: ${JSON.stringify(c)}`).toBe(true);
      });
    } finally {
      setSimdMatMul(true);
    }
  });

  it("a product shared with a helper thread gives XNNPACK's bits", async (ctx) => {
    await initBackend('wasm');
    if ((currentBackend()?.threads ?? 1) < 2) ctx.skip('one wasm thread here: no helper threads to test');
    const a = values(64 * 512, 7);
    const b = values(512 * 512, 8);
    const product = () => tf.tidy(() => tf.matMul(tf.tensor2d(a, [64, 512]), tf.tensor2d(b, [512, 512])).dataSync() as Float32Array);
    product(); // the first threaded job starts the helper
    for (let i = 0; i < 200 && inputHelpersReady() === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(inputHelpersReady()).toBeGreaterThan(0);
    const shared = product();
    setSimdMatMul(false);
    try {
      expect(sameBits(shared, product())).toBe(true);
    } finally {
      setSimdMatMul(true);
    }
  });

  // normals with zeros of both signs, infinities and NaN among them
  const awkward = (n: number, seed: number): Float32Array => {
    const rng = new Rng(seed);
    const special = [0, -0, Infinity, -Infinity, NaN, 1e-45, -1e-45];
    return Float32Array.from({ length: n }, (_, i) => (i % 29 === 5 ? special[Math.floor(i / 29) % special.length] : rng.normal()));
  };
  // [M, K] x [K, N]: rows of 16, of 4 and of M pixels; the last dense layer at width 1/8; one shared with the helper thread
  const FUSED: Array<[number, number, number]> = [[1, 1, 4], [3, 7, 8], [5, 33, 12], [12, 9, 20], [32, 512, 100], [64, 512, 512]];

  it("_FusedMatMul with a bias, linear or ReLU, on the SIMD rows gives XNNPACK's bits, with +-0, infinities and NaN (any NaN for a NaN)", async () => {
    await initBackend('wasm');
    if ((currentBackend()?.threads ?? 1) > 1) {
      for (let i = 0; i < 200 && inputHelpersReady() === 0; i++) {
        tf.tidy(() => tf.matMul(tf.ones([64, 512]), tf.ones([512, 512])).dataSync());
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(inputHelpersReady()).toBeGreaterThan(0);
    }
    const run = () =>
      FUSED.flatMap(([m, k, n], i) =>
        (['linear', 'relu'] as const).map((activation) =>
          tf.tidy(() => {
            const a = tf.tensor2d(awkward(m * k, 10 + i), [m, k]);
            const b = tf.tensor2d(awkward(k * n, 20 + i), [k, n]);
            const bias = tf.tensor1d(awkward(n, 30 + i));
            return tf.fused.matMul({ a, b, bias, activation }).dataSync() as Float32Array;
          }),
        ),
      );
    const simd = run();
    setSimdFusedMatMul(false);
    try {
      const xnnpack = run();
      simd.forEach((got, j) => {
        const [m, , n] = FUSED[j >> 1];
        expect(got.length).toBe(m * n);
        expect(sameBitsOrNaN(got, xnnpack[j]), `case ${JSON.stringify(FUSED[j >> 1])} ${j & 1 ? 'relu' : 'linear'}`).toBe(true);
      });
      const all = simd.flatMap((a) => [...a]);
      expect(all.some((v) => Number.isNaN(v)) && all.some((v) => Number.isFinite(v) && v !== 0)).toBe(true);
    } finally {
      setSimdFusedMatMul(true);
    }
  });
});
