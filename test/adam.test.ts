/**
 * The in-place Adam step computes exactly what tfjs's Adam computes on the decayed gradient, bit for
 * bit (on wasm through the SIMD kernel, which is the default there), and the SIMD kernel exactly what
 * the JS loop computes.
 */
import * as tf from '../core/compute/tf.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { floatView } from '../core/compute/tensor-views.ts';
import { wasmAdamKernel } from '../core/compute/simd-adam-module.ts';
import { ADAM, AdamState, setSimdAdam, type AdamSlot } from '../core/training/adam.ts';
import { Rng } from '../core/rng.ts';

function randomArray(n: number, rng: Rng, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < a.length; i++) a[i] = (rng.next() * 2 - 1) * scale;
  return a;
}

/** Three steps of tfjs's Adam and of ours on the same weights and gradients; the weights after each. */
function both(backend: string, weightDecay: number): { ours: Float32Array[]; theirs: Float32Array[]; inPlace: boolean } {
  const rng = Rng.derive(7, `adam/${backend}`);
  const shapes = [[3, 5], [7], [2, 2, 3, 4]];
  const start = shapes.map((s) => randomArray(s.reduce((a, b) => a * b, 1), rng, 0.5));
  const gradSteps = [0, 1, 2].map(() => shapes.map((s) => randomArray(s.reduce((a, b) => a * b, 1), rng, 2)));
  const hyper = { learningRate: 1e-3, weightDecay };

  const variable = (d: Float32Array | null, shape: number[], trainable = true) => tf.tidy(() => tf.variable(d ? tf.tensor(d, shape) : tf.zeros(shape), trainable));
  const theirVars = start.map((d, i) => variable(d, shapes[i]));
  const opt = tf.train.adam(hyper.learningRate, ADAM.beta1, ADAM.beta2, ADAM.epsilon);
  const slots: AdamSlot[] = start.map((d, i) => ({ weight: variable(d, shapes[i]), m: variable(null, shapes[i], false), v: variable(null, shapes[i], false) }));
  const adam = new AdamState();
  let inPlace = true;
  for (const grads of gradSteps) {
    tf.tidy(() => {
      const gs = grads.map((g, i) => tf.tensor(g, shapes[i]));
      opt.applyGradients(theirVars.map((v, i) => ({ name: v.name, tensor: weightDecay > 0 ? tf.add(gs[i], tf.mul(v, weightDecay)) : gs[i] })));
      inPlace &&= floatView(slots[0].weight) !== null;
      adam.step(slots, gs, hyper);
    });
  }
  const theirs = theirVars.map((v) => new Float32Array(v.dataSync()));
  const ours = slots.map((s) => new Float32Array(s.weight.dataSync()));
  opt.dispose();
  tf.dispose([...theirVars, ...slots.flatMap((s) => [s.weight, s.m, s.v])]);
  return { ours, theirs, inPlace };
}

describe.each(['wasm', 'cpu'] as const)('Adam in place on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });
  afterAll(async () => {
    await initBackend('wasm');
  });

  it.each([0, 1e-4])('gives tfjs Adam weights bit for bit (weight decay %s)', (decay) => {
    const before = tf.memory().numTensors;
    const { ours, theirs, inPlace } = both(backend, decay);
    expect(inPlace).toBe(true);
    ours.forEach((o, i) => expect(Buffer.from(o.buffer).equals(Buffer.from(theirs[i].buffer)), `tensor ${i}`).toBe(true));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('Adam on wasm: the SIMD kernel', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });
  afterAll(() => setSimdAdam(true));

  /** Weights after four steps on tensors whose sizes leave tails of 0, 1 and 3 after the 4 lanes. */
  function run(simd: boolean, weightDecay: number): Float32Array[] {
    setSimdAdam(simd);
    const rng = Rng.derive(11, 'adam/simd');
    // magnitudes spread over many octaves, so rounding differences would show
    const spread = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale * Math.exp(8 * (rng.next() - 0.5)));
    const shapes = [[5, 5, 3, 4], [33, 17], [7]];
    const variable = (d: Float32Array | null, shape: number[], trainable = true) => tf.tidy(() => tf.variable(d ? tf.tensor(d, shape) : tf.zeros(shape), trainable));
    const slots: AdamSlot[] = shapes.map((s) => {
      const n = s.reduce((a, b) => a * b, 1);
      return { weight: variable(spread(n, 0.1), s), m: variable(null, s, false), v: variable(null, s, false) };
    });
    const adam = new AdamState();
    for (let step = 0; step < 4; step++) {
      tf.tidy(() => adam.step(slots, shapes.map((s) => tf.tensor(spread(s.reduce((a, b) => a * b, 1), 1e-3), s)), { learningRate: 1e-3, weightDecay }));
    }
    const out = slots.map((s) => new Float32Array(s.weight.dataSync()));
    tf.dispose(slots.flatMap((s) => [s.weight, s.m, s.v]));
    return out;
  }

  it('is available on this engine', () => {
    expect(wasmAdamKernel()).not.toBeNull();
  });

  it.each([0, 1e-4])('gives the JS loop’s weights bit for bit (weight decay %s)', (decay) => {
    const simd = run(true, decay);
    const js = run(false, decay);
    simd.forEach((w, i) => expect(Buffer.from(w.buffer).equals(Buffer.from(js[i].buffer)), `tensor ${i}`).toBe(true));
  });
});
