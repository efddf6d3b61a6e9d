/** AlexNet spec, PyTorch-style init and the tfjs forward pass, full-width and slice-shaped. */
import * as tf from '../core/compute/tf.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { isFedsliceError } from '../core/errors.ts';
import { fanIn, initialWeights } from '../core/model/init.ts';
import { alexnetLayers, parameterCount, parameterSpecs, type LayerSpec } from '../core/model/spec.ts';
import { forward, paramTensors } from '../core/model/network.ts';
import { Rng } from '../core/rng.ts';
import type { NamedTensor, Weights } from '../core/model/tensor.ts';

/** Rank r of W's slice of one tensor along `axis` (the test's own cut, independent of core's planner). */
function cut(t: NamedTensor, axis: number, r: number, w: number): NamedTensor {
  const shape = [...t.shape];
  const n = shape[axis] / w;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const data = new Float32Array(outer * n * inner);
  for (let o = 0; o < outer; o++) {
    data.set(t.data.subarray((o * shape[axis] + r * n) * inner, (o * shape[axis] + (r + 1) * n) * inner), o * n * inner);
  }
  shape[axis] = n;
  return { name: t.name, shape, data };
}

function sliceFor(layers: LayerSpec[], weights: Weights, r: number, w: number): Weights {
  const byLayer = new Map(layers.map((l) => [l.name, l]));
  return weights.map((t) => {
    const [layerName, role] = t.name.split('.');
    const l = byLayer.get(layerName)!;
    const outAxis = t.shape.length - 1;
    if (l.split === 'out') return cut(t, outAxis, r, w);
    return role === 'weight' ? cut(t, l.kind === 'conv' ? 2 : 0, r, w) : t;
  });
}

function images(n: number, seed: number): tf.Tensor4D {
  const rng = new Rng(seed);
  const a = new Float32Array(n * 32 * 32 * 3);
  for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  return tf.tensor4d(a, [n, 32, 32, 3]);
}

function rowSums(logp: tf.Tensor2D): number[] {
  return tf.tidy(() => Array.from(tf.sum(tf.exp(logp), 1).dataSync()));
}

describe('model', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('has 55,063,268 parameters at width 1 with 100 classes', () => {
    expect(parameterCount(alexnetLayers({ width: 1, numClasses: 100 }))).toBe(55_063_268);
  });

  it('initialises like PyTorch: uniform within 1/sqrt(fan_in), deterministic per seed', () => {
    const layers = alexnetLayers({ width: 1 / 8, numClasses: 10 });
    const a = initialWeights(layers, 42);
    const b = initialWeights(layers, 42);
    const c = initialWeights(layers, 43);
    expect(a.map((t) => t.name)).toEqual(parameterSpecs(layers).map((p) => p.name));
    expect(a.reduce((n, t) => n + t.data.length, 0)).toBe(parameterCount(layers));
    a.forEach((t, i) => {
      expect(t.data).toBeInstanceOf(Float32Array);
      expect(t.shape).toEqual(parameterSpecs(layers)[i].shape);
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(b[i].data.buffer))).toBe(true);
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(c[i].data.buffer))).toBe(false);
      const bound = 1 / Math.sqrt(fanIn(layers.find((l) => t.name.startsWith(`${l.name}.`))!));
      let max = 0;
      let sum = 0;
      for (const v of t.data) {
        max = Math.max(max, Math.abs(v));
        sum += v;
      }
      expect(max).toBeLessThanOrEqual(bound);
      if (t.data.length > 1000) {
        expect(max).toBeGreaterThan(0.95 * bound); // spread over the whole range
        expect(Math.abs(sum / t.data.length)).toBeLessThan(0.1 * bound);
      }
    });
  });

  it("'kaiming' gives He-uniform weights where a ReLU follows, PyTorch's bound on the output layer, zero biases, and the same seed the same values", () => {
    const layers = alexnetLayers({ width: 1 / 8, numClasses: 10 });
    const k = initialWeights(layers, 42, 'kaiming');
    expect(k.map((t) => [t.name, t.shape])).toEqual(initialWeights(layers, 42).map((t) => [t.name, t.shape]));
    initialWeights(layers, 42, 'kaiming').forEach((t, i) => expect(Buffer.from(t.data.buffer).equals(Buffer.from(k[i].data.buffer))).toBe(true));
    const last = layers[layers.length - 1];
    for (const t of k) {
      const layer = layers.find((l) => t.name.startsWith(`${l.name}.`))!;
      const max = t.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      if (t.name.endsWith('.bias')) {
        expect(max).toBe(0);
        continue;
      }
      const bound = layer === last ? 1 / Math.sqrt(fanIn(layer)) : Math.sqrt(6 / fanIn(layer));
      expect(layer.reluAfter).toBe(layer !== last);
      expect(max).toBeLessThanOrEqual(bound);
      expect(max).toBeGreaterThan(0.9 * bound);
    }
  });

  it('forward gives [batch, classes] log-probabilities at full width', () => {
    const layers = alexnetLayers({ width: 1, numClasses: 100 });
    const params = paramTensors(initialWeights(layers, 1));
    const x = images(2, 1);
    const logp = forward(layers, params, x, { dropout: null });
    expect(logp.shape).toEqual([2, 100]);
    for (const s of rowSums(logp)) expect(s).toBeCloseTo(1, 4);
    tf.dispose([x, logp, ...params.values()]);
  });

  it('runs slice-shaped parameters of every rank (W = 2 and 4) through the same forward', () => {
    const layers = alexnetLayers({ width: 1 / 4, numClasses: 10 });
    const full = initialWeights(layers, 9);
    const x = images(3, 2);
    for (const w of [2, 4]) {
      for (let r = 0; r < w; r++) {
        const slice = sliceFor(layers, full, r, w);
        expect(slice.find((t) => t.name === 'conv2.weight')!.shape).toEqual([5, 5, 24 / w, 64]);
        const params = paramTensors(slice);
        const logp = forward(layers, params, x, { dropout: null });
        expect(logp.shape).toEqual([3, 10]);
        for (const s of rowSums(logp)) expect(s).toBeCloseTo(1, 4);
        tf.dispose([logp, ...params.values()]);
      }
    }
    x.dispose();
  });

  it('dropout in training mode is seeded and changes the output; inference is deterministic', () => {
    const layers = alexnetLayers({ width: 1 / 8, numClasses: 10 });
    const params = paramTensors(initialWeights(layers, 4));
    const x = images(4, 3);
    const run = (dropout: Rng | null) => tf.tidy(() => forward(layers, params, x, { dropout }).dataSync() as Float32Array);
    const a = run(new Rng(5));
    const b = run(new Rng(5));
    const c = run(new Rng(6));
    const inf1 = run(null);
    const inf2 = run(null);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).not.toEqual(inf1);
    expect(inf1).toEqual(inf2);
    tf.dispose([x, ...params.values()]);
  });

  it('rejects parameters that do not fit together with a clear error', () => {
    const layers = alexnetLayers({ width: 1 / 8, numClasses: 10 });
    const w = initialWeights(layers, 1);
    const bad = w.map((t) => (t.name === 'conv3.weight' ? { ...t, shape: [3, 3, 16, 96], data: new Float32Array(3 * 3 * 16 * 96) } : t));
    const params = paramTensors(bad);
    const x = images(1, 1);
    let caught: unknown;
    try {
      forward(layers, params, x, { dropout: null });
    } catch (e) {
      caught = e;
    }
    expect(isFedsliceError(caught)).toBe(true);
    expect((caught as Error).message).toMatch(/^conv3: weight \[3,3,16,96\]/);
    const missing = paramTensors(w.filter((t) => t.name !== 'fc2.bias'));
    expect(() => forward(layers, missing, x, { dropout: null })).toThrow(/fc2.bias is missing/);
    tf.dispose([x, ...params.values(), ...missing.values()]);
  });
});
