/** wasm BatchMatMul with explicit transposes matches the cpu backend for every transpose combination and frees its temporaries. */
import * as tf from '../core/compute/tf.ts';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { Rng } from '../core/rng.ts';

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
});
