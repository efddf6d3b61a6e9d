/**
 * A training step that applies the dense weights' gradients during the backward pass (and frees
 * them there) gives the same weights, bit for bit, as the plain way: every gradient from the tape,
 * then Adam over all parameters; no tensor outlives a step. On wasm, the trainers' backend (the
 * cpu backend's own convolution gradients take minutes for the same steps).
 */
import * as tf from '../core/compute/tf.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { initialWeights } from '../core/model/init.ts';
import { forward, nllLoss, ownWeightGrads } from '../core/model/network.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { cloneWeights } from '../core/model/tensor.ts';
import { Rng } from '../core/rng.ts';
import { LocalModel } from '../core/training/local-model.ts';
import { trainStep } from '../core/training/train.ts';

const layers = alexnetLayers({ width: 1 / 16, numClasses: 10 });
const hyper = { learningRate: 1e-3, weightDecay: 1e-4 };
const STEPS = 3;

function batch(): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const rng = new Rng(4);
  const x = tf.tensor4d(Float32Array.from({ length: 8 * 32 * 32 * 3 }, () => rng.normal()), [8, 32, 32, 3]);
  const y = tf.tensor1d(Int32Array.from({ length: 8 }, (_, i) => (i * 3) % 10), 'int32');
  return { x, y };
}

/** The weights after STEPS steps, as bytes per parameter. */
function train(handOver: boolean): Buffer[] {
  const model = new LocalModel();
  model.load(cloneWeights(initialWeights(layers, 3)));
  const { x, y } = batch();
  const dropout = Rng.derive(5, 'dropout');
  for (let s = 0; s < STEPS; s++) {
    if (handOver) {
      trainStep(model, layers, x, y, hyper, dropout).dispose();
      continue;
    }
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => nllLoss(forward(layers, model.params(), x, { dropout }), y), model.variables);
      const adam = model.beginStep(hyper);
      for (const [name, v] of model.named()) adam.update(name, grads[v.name]);
      adam.end();
    });
  }
  const out = model.weights().map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  tf.dispose([x, y]);
  model.dispose();
  return out;
}

describe('training step on wasm', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('dense weight gradients applied during the backward pass: the same weights bit for bit', () => {
    expect(ownWeightGrads(layers)).toEqual(['fc1.weight', 'fc2.weight', 'fc3.weight']);
    const before = tf.memory().numTensors;
    const ours = train(true);
    expect(tf.memory().numTensors).toBe(before);
    const plain = train(false);
    expect(ours).toHaveLength(plain.length);
    ours.forEach((w, i) => expect(w.equals(plain[i]), `parameter ${i}`).toBe(true));
  }, 120_000);

  it('a step that misses a parameter is refused', () => {
    const model = new LocalModel();
    model.load(initialWeights(layers, 3));
    const adam = model.beginStep(hyper);
    expect(() => adam.end()).toThrow(/no gradient for conv1\.weight/);
    model.dispose();
  });
});
