/** wasm Multiply and Sub as one SIMD pass (core/compute/binary-kernel.ts) give wasm's own bits, and leave other shapes to it. */
import * as tf from '../core/compute/tf.ts';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { planOf, registerWasmMulSub, unregisterWasmMulSub } from '../core/compute/binary-kernel.ts';
import { Rng } from '../core/rng.ts';
import { sameBits } from './helpers/bits.ts';

/** Two quiet NaNs with different payloads and signs, so a result shows which operand's NaN it kept. */
const NAN_A = new Float32Array(new Uint32Array([0x7fc00001]).buffer)[0];
const NAN_B = new Float32Array(new Uint32Array([0xffc00002]).buffer)[0];

/**
 * n values: normals with zeros of both signs, infinities, NaNs, tiny and huge values among them, at
 * the same places for every seed (so two operands of one shape meet NaN with NaN); one value is a NaN.
 */
function values(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const nan = seed % 2 ? NAN_A : NAN_B;
  const special = [0, -0, Infinity, -Infinity, nan, 1e-45, -1e-45, 3.4e38, -3.4e38];
  if (n === 1) return Float32Array.of(nan);
  return Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? special[Math.floor(i / 3) % special.length] : rng.normal() * 1e3));
}

// columns (the loss's [32,1] against [32,100], both orders, CIFAR-10's 10 columns, widths not a
// multiple of 4), rows, one shape, one value, and shapes the pass leaves to wasm
const CASES: Array<[number[], number[]]> = [
  [[32, 1], [32, 100]],
  [[32, 100], [32, 1]],
  [[32, 10], [32, 1]],
  [[32, 1], [32, 10]],
  [[7, 3], [7, 1]],
  [[2, 5, 6], [2, 5, 1]],
  [[32, 512], [32, 512]],
  [[3, 7], [3, 7]],
  [[13], [13]],
  [[32, 100], [100]],
  [[6], [4, 6]],
  [[1, 1, 9], [5, 9]],
  [[1], [32]],
  [[32], []],
  [[], [5, 6]],
  [[], []],
  [[1], [1]],
  [[1, 1], [1]],
  [[3, 1], [1, 4]],
  [[2, 1, 4], [2, 3, 1]],
  [[4, 1, 6], [4, 5, 6]],
];

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

describe('SIMD Multiply and Sub', () => {
  it("give wasm's own bits for every case, either op, NaN payloads and zero signs included", async () => {
    await initBackend('wasm');
    const inputs = CASES.map(([as, bs], i) => [values(size(as), 2 * i), values(size(bs), 2 * i + 1)]);
    const run = () =>
      CASES.flatMap(([as, bs], i) =>
        [tf.mul, tf.sub].map((op) => tf.tidy(() => op(tf.tensor(inputs[i][0], as), tf.tensor(inputs[i][1], bs)).dataSync() as Float32Array)),
      );
    const before = tf.memory().numTensors;
    const simd = run();
    unregisterWasmMulSub();
    try {
      const own = run();
      const bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0].toString(16);
      const wrong = own.flatMap((expected, i) => {
        const label = `${i % 2 ? 'sub' : 'mul'} ${JSON.stringify(CASES[i >> 1])}`;
        if (simd[i].length !== expected.length) return [`${label}: ${simd[i].length} values, not ${expected.length}`];
        const at = expected.findIndex((v, j) => bits(v) !== bits(simd[i][j]));
        return at < 0 ? [] : [`${label} at ${at}: ${bits(simd[i][at])}, not ${bits(expected[at])}`];
      });
      expect(wrong).toEqual([]);
    } finally {
      registerWasmMulSub();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('take the loss\'s broadcasts and leave the shapes they do not cover to wasm', () => {
    expect(planOf([32, 100], [32, 1], 3200)).toEqual({ kind: 'vs', rows: 32, columns: 100, aRow: 100, bRow: 1 });
    expect(planOf([32, 1], [32, 100], 3200)).toEqual({ kind: 'sv', rows: 32, columns: 100, aRow: 1, bRow: 100 });
    expect(planOf([32, 100], [100], 3200)).toEqual({ kind: 'vv', rows: 32, columns: 100, aRow: 100, bRow: 0 });
    expect(planOf([], [5, 6], 30)).toEqual({ kind: 'sv', rows: 1, columns: 30, aRow: 0, bRow: 0 });
    expect(planOf([3, 1], [1, 4], 12)).toBeNull();
    expect(planOf([2, 1, 4], [2, 3, 1], 24)).toBeNull();
    expect(planOf([4, 1, 6], [4, 5, 6], 120)).toBeNull();
  });

  it('are the registered Multiply and Sub on wasm, and compute plain f32 products and differences', async () => {
    await initBackend('wasm');
    const ours = [tf.getKernel('Multiply', 'wasm'), tf.getKernel('Sub', 'wasm')];
    unregisterWasmMulSub();
    const own = [tf.getKernel('Multiply', 'wasm'), tf.getKernel('Sub', 'wasm')];
    registerWasmMulSub();
    expect(ours[0]).not.toBe(own[0]);
    expect(ours[1]).not.toBe(own[1]);
    const a = tf.tensor(values(6 * 10, 1), [6, 10]);
    const c = tf.tensor(values(6, 2), [6, 1]);
    const [p, d] = [tf.mul(c, a), tf.sub(a, c)];
    const [av, cv, pv, dv] = [a, c, p, d].map((t) => t.dataSync() as Float32Array);
    const f = (x: number) => Math.fround(x);
    expect(sameBits(pv.filter((v) => !Number.isNaN(v)), Float32Array.from(av, (v, i) => f(cv[Math.floor(i / 10)] * v)).filter((v) => !Number.isNaN(v)))).toBe(true);
    expect(sameBits(dv.filter((v) => !Number.isNaN(v)), Float32Array.from(av, (v, i) => f(v - cv[Math.floor(i / 10)])).filter((v) => !Number.isNaN(v)))).toBe(true);
    tf.dispose([a, c, p, d]);
  });
});
