/**
 * wasm Identity as a shared reference: a clone (what the gradient tape keeps of every op's inputs)
 * allocates nothing on the heap, reads the same values, and outlives its source (and the source
 * its clone) by the reference count; gradients through a training step are the same bits as with
 * wasm's own copying Identity.
 */
import * as tf from '../core/compute/tf.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { registerWasmIdentity, unregisterWasmIdentity } from '../core/compute/identity-kernel.ts';
import { Rng } from '../core/rng.ts';

const dataIds = () => tf.backend().numDataIds();

/** The gradients of a small conv + dense + log-softmax loss w.r.t. its three weights, as bytes. */
function gradientBytes(): Buffer[] {
  const rng = new Rng(11);
  const normal = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  return tf.tidy(() => {
    const x = tf.tensor4d(normal(4 * 6 * 6 * 3), [4, 6, 6, 3]);
    const f = tf.variable(tf.tensor4d(normal(3 * 3 * 3 * 8), [3, 3, 3, 8]));
    const w = tf.variable(tf.tensor2d(normal(8 * 9 * 5), [8 * 9, 5]));
    const b = tf.variable(tf.tensor1d(normal(5)));
    const loss = () => {
      const h = tf.maxPool(tf.relu(tf.conv2d(x, f, 1, 'same')), 2, 2, 'valid');
      return tf.neg(tf.mean(tf.logSoftmax(tf.add(tf.matMul(tf.reshape(h, [4, -1]), w), b)))).asScalar();
    };
    const { grads } = tf.variableGrads(loss, [f, w, b]);
    const out = [f, w, b].map((v) => Buffer.from((grads[v.name].dataSync() as Float32Array).slice().buffer));
    tf.dispose([f, w, b]);
    return out;
  });
}

describe('wasm Identity', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('a clone shares the storage: no new buffer, same values, each outlives the other', () => {
    const a = tf.tensor1d([1, 2, 3, 4]);
    const before = dataIds();
    const c = tf.clone(a);
    expect(dataIds()).toBe(before);
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3, 4]);
    a.dispose();
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3, 4]);
    const d = tf.clone(c);
    c.dispose();
    expect(Array.from(d.dataSync())).toEqual([1, 2, 3, 4]);
    d.dispose();
    expect(dataIds()).toBe(before - 1);
  });

  it('with wasm’s own kernel a clone is a copy (what the shared reference saves)', () => {
    unregisterWasmIdentity();
    try {
      const a = tf.tensor1d([1, 2]);
      const before = dataIds();
      const c = tf.clone(a);
      expect(dataIds()).toBe(before + 1);
      tf.dispose([a, c]);
    } finally {
      registerWasmIdentity();
    }
  });

  it('gradients are the same bits as with wasm’s own Identity, and the step leaks no buffer', () => {
    const before = dataIds();
    const ours = gradientBytes();
    expect(dataIds()).toBe(before);
    unregisterWasmIdentity();
    let theirs: Buffer[];
    try {
      theirs = gradientBytes();
    } finally {
      registerWasmIdentity();
    }
    ours.forEach((g, i) => expect(g.equals(theirs[i])).toBe(true));
  });
});
