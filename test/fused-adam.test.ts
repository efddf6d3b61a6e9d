/**
 * The fused Adam of the wasm backend (SIMD kernel, JS tail) against tfjs's own optimizer (the same
 * hyperparameters, decay added to the gradient with tfjs ops): weights bit for bit after several
 * steps, with and without weight decay, with gradients of widely spread magnitudes, on tensors
 * whose sizes leave tails of 0, 1 and 3 elements after the 4-lane kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { createAdam, setFusedAdam, type AdamHyper } from '../core/compute/fused-adam.ts';
import { Rng } from '../core/rng.ts';

const SHAPES = [[5, 5, 3, 4], [7], [33, 17]];
const STEPS = 4;

function values(rng: Rng, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale * Math.exp(4 * rng.normal()));
}

/** Weights after STEPS updates with the gradients `gradsAt(step, i)`, through either Adam. */
function train(h: AdamHyper, fused: boolean): Float32Array[] {
  setFusedAdam(fused);
  const rng = new Rng(3);
  const vars = SHAPES.map((s) => tf.tidy(() => tf.variable(tf.tensor(values(rng, s.reduce((p, d) => p * d), 0.1), s))));
  const adam = createAdam(h);
  expect(adam.kind).toBe(fused ? 'simd' : 'tfjs');
  for (let step = 0; step < STEPS; step++) {
    const grads = SHAPES.map((s) => tf.tensor(values(rng, s.reduce((p, d) => p * d), 1e-3), s));
    adam.apply(vars, grads);
    tf.dispose(grads);
  }
  adam.dispose();
  setFusedAdam(true);
  const out = vars.map((v) => v.dataSync() as Float32Array);
  tf.dispose(vars);
  return out;
}

describe('fused Adam on wasm', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  for (const weightDecay of [0, 1e-4]) {
    it(`updates weights bit for bit as tfjs's Adam does (weight decay ${weightDecay})`, () => {
      const h: AdamHyper = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay };
      const before = tf.memory().numTensors;
      const ours = train(h, true);
      const mid = tf.memory().numTensors;
      const theirs = train(h, false);
      expect([mid, tf.memory().numTensors]).toEqual([before, before]);
      ours.forEach((w, i) => {
        expect(w.length).toBe(theirs[i].length);
        expect(Buffer.from(w.buffer).equals(Buffer.from(theirs[i].buffer)), `tensor ${i}`).toBe(true);
      });
      // the update moved the weights (a no-op stepper would also match itself)
      const start = new Rng(3);
      expect(ours[1][0]).not.toBe(Math.fround(values(start, 5 * 5 * 3 * 4, 0.1)[0]));
    });
  }
});
